"""One settings object for every component, read from the environment and ``.env``.

The lab's start.sh writes ``.env`` at the repository root with the same keys in every
environment (embedded, HA, Enterprise), so notebooks, the API, the dispatchers and the
simulator find Redis the same way.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=REPO_ROOT / ".env", extra="ignore")

    # The Redis user of this process's role (lab/redis_users.py): .env's REDIS_URL is the
    # learner's; the lab's launchers give the API, the dispatchers and the deployer their
    # own in their environment (REDIS_API_URL, ... in .env), which wins over .env.
    redis_url: str = "redis://127.0.0.1:6379/0"
    api_url: str = "http://127.0.0.1:8000"
    jupyter_url: str = "http://127.0.0.1:8888/lab"
    acd_env: str = "embedded"
    acd_center: str = "default"
    # Every network call has a deadline: no client hangs on a dead server.
    # A connection cut silently (a VIP moving) fails after this long, not later.
    redis_socket_timeout: float = 2.0
    redis_connect_timeout: float = 2.0
    # A process opens at most this many connections; a burst beyond it waits in line for a
    # free one (up to redis_pool_timeout seconds) instead of failing.
    redis_max_connections: int = 100
    redis_pool_timeout: float = 5.0
    # Replicas that must acknowledge a new contact before it is confirmed (WAIT): 0 for the
    # embedded lab, 1 in the HA lab so that a confirmed contact survives a failover.
    acd_wait_replicas: int = 0
    acd_wait_timeout_ms: int = 1000
    # A center refuses a new contact (Overloaded, HTTP 429) while this many wait; 0: no cap.
    acd_max_queued: int = 100_000
    # Bulk operations (open/close, skill delete, center delete) change at most this many
    # agents or contacts per Redis call, so no call holds Redis for long (acd/bulk.py).
    acd_bulk_batch: int = Field(default=8, ge=1, le=1000)
    # How long a completed or abandoned contact stays readable.
    contact_keep_seconds: int = 3600
    # The REST API's key every client sends (acd/api/apikeys.py); start.sh creates the
    # lab's admin key once and writes it to .env.
    acd_api_key: str = ""
    # Host names the API answers to besides 127.0.0.1, localhost and API_URL's host
    # (acd/api/auth.py): TRUSTED_HOSTS=acd.example.org,*.lab.example.org
    trusted_hosts: Annotated[list[str], NoDecode] = []

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
