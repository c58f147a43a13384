"""A throw-away Redis with AOF under a chosen fsync policy that a benchmark or a test
kills with SIGKILL and restarts on the same data: what lab.bench.durability measures.

``machine`` crashes are modelled, not made: a kill -9 of the process loses nothing the
kernel already holds (Redis write()s the AOF before it replies, with either policy), so
what a machine crash loses is what was not yet fsynced. :meth:`DurableRedis.truncate`
cuts the AOF back to the size it had at an earlier moment (everysec: about a second
before the crash, its documented bound), mid-command as a power cut may leave it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from lab.embedded import EmbeddedRedis
from lab.processes import pid_alive, wait_until

FSYNC_POLICIES = ("everysec", "always")


class DurableRedis(EmbeddedRedis):
    """The embedded Redis with ``appendfsync`` set to ``fsync``."""

    def __init__(self, run_dir: Path, port: int, fsync: str) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {fsync!r}: must be one of {FSYNC_POLICIES}")
        super().__init__(run_dir, port, name=f"redis-{fsync}")
        self.fsync = fsync
        # A later option wins on redis-server's command line.
        self.argv = [*self.argv, "--appendfsync", fsync]

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no AOF flush; returns once it is gone."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"{self.name} is not running; see {self.log_file}")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10, f"{self.name} (pid {pid}) to die")

    def incr_aof(self) -> Path:
        """The AOF file Redis appends to now: the manifest's last incremental file."""
        folder = self.data_dir / "appendonlydir"
        manifests = sorted(folder.glob("*.manifest"))
        if not manifests:
            raise FileNotFoundError(f"no AOF manifest in {folder}")
        incr = []
        for line in manifests[-1].read_text().splitlines():
            # "file <name> seq <n> type <b|h|i> [startoffset <n> ...]": key-value pairs
            words = line.split()
            fields = dict(zip(words[::2], words[1::2], strict=False))
            if fields.get("type") == "i":
                incr.append(fields["file"])
        if not incr:
            raise FileNotFoundError(f"{manifests[-1]} names no incremental AOF file")
        return folder / incr[-1]

    def aof_size(self) -> int:
        return self.incr_aof().stat().st_size

    def truncate(self, size: int) -> int:
        """Cut the current AOF file back to ``size`` bytes (Redis must be stopped);
        returns how many bytes were dropped."""
        if self.running():
            raise RuntimeError(f"{self.name} is running: kill it before cutting its AOF")
        path = self.incr_aof()
        dropped = max(0, path.stat().st_size - size)
        if dropped:
            os.truncate(path, size)
        return dropped

    def rewrite(self, timeout: float = 30.0) -> None:
        """BGREWRITEAOF, and wait for it: the new AOF is written from memory, which holds
        no half transaction. After a restart that cut a torn AOF tail, the file may end
        in a MULTI without EXEC, which the next restart would apply with the next
        transaction's commands (README, Reliability); rewriting removes it."""
        with self.client() as r:
            r.bgrewriteaof()

            def done() -> bool:
                info = r.info("persistence")
                return not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"])
            wait_until(done, timeout, f"{self.name}'s AOF rewrite")

    def log_count(self, message: str) -> int:
        """How many times the server's log says ``message`` (over every restart): "Revert
        incomplete MULTI" is a restart dropping a transaction its crash had cut short."""
        if not self.log_file.exists():
            return 0
        return self.log_file.read_text(errors="replace").count(message)
