"""The drill's raw-writer probe: sequence numbers pushed to a list straight through the
VIP's Redis port (no API), one RPUSH at a time at a steady rate, on a fresh connection
after every error. A write counts as acknowledged when Redis replied and, with
``wait_replicas`` (the drill's), WAIT confirmed that a replica has it: the API's contract
for contacts. Without it a write the primary alone confirmed is lost when a replica that
did not have it yet is promoted (a second failover right after the first did that to
about a second of writes). Afterwards the list is read back: every acknowledged number
must be there.

It runs in a thread of its own with redis-py and no retries inside the client, so every
error is seen and counted here; it is bounded in time and talks only to the lab's VIP.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab.ha import HATopology
from lab.processes import wait_until

from .figures import Attempt, Sent

TIMEOUT_S = 0.5  # per write: a failover is seen as errors, not as slow writes
WAIT_MS = 400  # WAIT's own deadline, inside the write's
MAX_ERRORS_KEPT = 20


class RedisWriter:
    """Writes to list ``key`` through the VIP of ``topo``, ``rate`` writes a second."""

    def __init__(self, topo: HATopology, key: str, rate: float = 200.0, *,
                 wait_replicas: bool = False, max_s: float = 900.0) -> None:
        self.topo = topo
        self.key = key
        self.rate = rate
        self.wait_replicas = wait_replicas
        self.max_s = max_s
        self.attempts: list[Attempt] = []
        self.sent: list[Sent] = []
        self.errors: list[str] = []  # the first few, with their time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="lab-drill-writer",
                                        daemon=True)

    def _client(self) -> redis.Redis:
        return self.topo.client(socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                                retry=Retry(NoBackoff(), 0))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _write(self) -> None:
        client = self._client()
        started = time.monotonic()
        next_at, seq = started, 0
        try:
            while not self._stop.is_set() and time.monotonic() - started < self.max_s:
                seq += 1
                sent = Sent(str(seq), time.monotonic())
                self.sent.append(sent)
                try:
                    self._push(client, seq)
                except (redis.RedisError, OSError) as exc:
                    self.attempts.append(Attempt(sent.first_try, time.monotonic(), True,
                                                 type(exc).__name__))
                    if len(self.errors) < MAX_ERRORS_KEPT:
                        self.errors.append(f"{time.monotonic() - started:.2f}s "
                                           f"{type(exc).__name__}: {exc}")
                    client.close()
                    client = self._client()
                else:
                    sent.acked_at = time.monotonic()
                    self.attempts.append(Attempt(sent.first_try, sent.acked_at, False, "ok"))
                # after a slow error, go on at the rate: no burst to catch up
                next_at = max(next_at + 1.0 / self.rate, time.monotonic())
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            client.close()

    def _push(self, client: redis.Redis, seq: int) -> None:
        if not self.wait_replicas:
            client.rpush(self.key, seq)
            return
        # RPUSH and WAIT on one connection (one pipeline): WAIT counts the replicas that
        # have what this connection wrote; alone on another connection it checks nothing.
        with client.pipeline(transaction=False) as pipe:
            pipe.rpush(self.key, seq)
            pipe.execute_command("WAIT", 1, WAIT_MS)  # type: ignore[no-untyped-call]
            _, acked = pipe.execute()
        if int(acked) < 1:
            raise redis.RedisError("WAIT: no replica confirmed the write in time")

    def kept(self, timeout: float = 15.0) -> set[str]:
        """The numbers in the list now (read through the VIP); the list is deleted."""
        found: set[str] = set()

        def read() -> bool:
            with self._client() as client:
                found.update(str(n) for n in client.lrange(self.key, 0, -1))
                client.delete(self.key)
            return True

        wait_until(read, timeout, f"the list {self.key} read back through the VIP",
                   interval=0.25)
        return found
