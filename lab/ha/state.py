"""The HA lab's run dir and state file.

Everything the lab writes (configs, pid files, logs, data, the state file) lives under the
run dir. The state file records the topology and what ``start()`` created (the bridge, the
hosts, every process), so that ``stop()`` removes exactly that and every helper finds the
running lab.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.stack import LabConfig

from . import net
from .layout import HATopology

State = dict[str, Any]  # the state file's JSON: topology, bridge, hosts, processes

_active_run_dir: Path | None = None


def state_path(run_dir: Path) -> Path:
    return run_dir / "state.json"


def resolve_run_dir(run_dir: Path | str | None = None) -> Path:
    """``run_dir``; else the one this process started; else $LAB_HA_DIR; else
    ``<lab home>/ha``, where ./start.sh --ha puts it (``$LAB_HOME/ha``, by default
    ``<repo>/.lab/ha``)."""
    if run_dir is not None:
        return Path(run_dir).resolve()
    if _active_run_dir is not None:
        return _active_run_dir
    if os.environ.get("LAB_HA_DIR"):
        return Path(os.environ["LAB_HA_DIR"]).resolve()
    return (LabConfig.from_environment().home / "ha").resolve()


def load_state(run_dir: Path) -> State | None:
    path = state_path(run_dir)
    if not path.exists():
        return None
    state: State = json.loads(path.read_text())
    return state


def save_state(run_dir: Path, state: State) -> None:
    path = state_path(run_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.chmod(tmp, 0o600)  # it holds the password
    tmp.replace(path)


def require_state(run_dir: Path | str | None = None) -> tuple[Path, State, HATopology]:
    """The run dir, its state and topology; LabError when the lab is not running."""
    rd = resolve_run_dir(run_dir)
    state = load_state(rd)
    if state is None:
        raise LabError(
            f"the HA lab is not running (no {state_path(rd)}): run `python -m lab.ha start`"
        )
    return rd, state, HATopology.from_dict(state["topology"])


def running_topology(run_dir: Path | str | None = None) -> HATopology | None:
    """The topology when the lab is up (its state file and bridge exist), else None."""
    state = load_state(resolve_run_dir(run_dir))
    if state is None:
        return None
    topo = HATopology.from_dict(state["topology"])
    return topo if net.link_exists(topo.bridge) else None


def set_active(run_dir: Path) -> None:
    """Make ``run_dir`` the default of every helper called without one (this process)."""
    global _active_run_dir
    _active_run_dir = run_dir


def clear_active(run_dir: Path) -> None:
    global _active_run_dir
    if _active_run_dir == run_dir:
        _active_run_dir = None


def topology(run_dir: Path | str | None = None) -> HATopology:
    """The topology of the running lab."""
    return require_state(run_dir)[2]
