"""The drill's raw-writer probe: sequence numbers pushed to a list straight through the
VIP's Redis port (no API), one RPUSH at a time at a steady rate, on a fresh connection
after every error. A write counts as acknowledged when Redis replied (``wait_replicas``:
only once WAIT also confirmed a replica). Afterwards the list is read back: every
acknowledged number must be there.

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
                    client.rpush(self.key, seq)
                    if self.wait_replicas and client.execute_command("WAIT", 1, 500) < 1:  # type: ignore[no-untyped-call]
                        raise redis.RedisError("WAIT: no replica confirmed")
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
