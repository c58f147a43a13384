"""What a notebook imports: ``from lab.notebook import setup``, or ``from lab import notebook``.

One module per job, everything re-exported here:

- ``session``: ``lab = await setup("nb02")`` connects, checks the server (RedisJSON) and
  gives the notebook its own emptied center; ``use_connection`` (workshop mode);
- ``versions``: the packages the notebooks rely on, and the widget pair that must match;
- ``lua``: the Lua of acd/lua/, shown (``show_lua``) or run (``lua_chunk``) from
  the library itself;
- ``services``: the lab's REST API (``api_client``) and its dispatchers (``assigned``);
- ``cluster``: hash slots and a real one-node Redis Cluster (``cluster_node``);
- ``recorded``: results committed under notebooks/data/;
- ``exercises``: the exercises' checks and hints (``from lab.notebook import exercises``).
"""

from __future__ import annotations

from lab.notebook import exercises
from lab.notebook.cluster import SLOTS, cluster_node, shard_of, slot
from lab.notebook.lua import lua_chunk, lua_source, show_lua
from lab.notebook.recorded import DATA, REPO, recorded
from lab.notebook.services import api_client, assigned, in_kernel, live_api_url
from lab.notebook.session import (
    JSON_FIX,
    Lab,
    LabSetupError,
    apply_connection,
    environment,
    has_json,
    learner,
    lesson_center,
    masked_url,
    setup,
    use_connection,
)
from lab.notebook.versions import check_widget_versions, versions

__all__ = [
    "DATA",
    "JSON_FIX",
    "REPO",
    "SLOTS",
    "Lab",
    "LabSetupError",
    "api_client",
    "apply_connection",
    "assigned",
    "check_widget_versions",
    "cluster_node",
    "environment",
    "exercises",
    "has_json",
    "in_kernel",
    "learner",
    "lesson_center",
    "live_api_url",
    "lua_chunk",
    "lua_source",
    "masked_url",
    "recorded",
    "setup",
    "shard_of",
    "show_lua",
    "slot",
    "use_connection",
    "versions",
]

# A workshop learner's connection file (use_connection) is this kernel's from the first
# import on: every setting the kernel reads next (the simulator's too) is the learner's.
apply_connection()
