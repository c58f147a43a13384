"""Center names whose hash tags land on chosen primaries of the test cluster."""

from __future__ import annotations

import uuid

from lab.cluster import LocalCluster, slot


def center_names(cluster: LocalCluster, per_primary: int = 1) -> list[str]:
    """Fresh center names, ``per_primary`` whose keys live on each primary, all in
    different hash slots, ordered by primary."""
    run = uuid.uuid4().hex[:6]
    wanted: dict[int, list[str]] = {node.port: [] for node in cluster.nodes}
    slots: set[int] = set()
    i = 0
    while any(len(names) < per_primary for names in wanted.values()):
        name = f"shard-{run}-{i}"
        i += 1
        tag_slot = slot("{acd:" + name + "}")
        owner = cluster.node_for("{acd:" + name + "}").port
        if len(wanted[owner]) < per_primary and tag_slot not in slots:
            wanted[owner].append(name)
            slots.add(tag_slot)
    return [name for node in cluster.nodes for name in wanted[node.port]]
