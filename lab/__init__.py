"""The lab environment: which one is up, at which URLs, and starting or stopping it.

    >>> import lab
    >>> lab.info()            # from .env: environment, REDIS_URL, API_URL, JUPYTER_URL...
    >>> lab.api_key()         # the REST API key clients send (ACD_API_KEY)
    >>> lab.status()          # embedded components and their pids (None: stopped)
    >>> lab.start(); lab.stop()

start.sh and stop.sh call the same code through ``python -m lab``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabInfo:
    environment: str  # embedded | ha | enterprise | none
    redis_url: str | None
    api_url: str | None
    jupyter_url: str | None
    api_key: str | None = None  # the REST API's admin key (lab.apikeys)


def info() -> LabInfo:
    """What ``.env`` says is up; ``environment`` is 'none' before the first start."""
    from lab.envfile import read_env
    from lab.stack import LabConfig

    env = read_env(LabConfig.from_environment().env_file)
    return LabInfo(environment=env.get("ACD_ENV", "none"), redis_url=env.get("REDIS_URL"),
                   api_url=env.get("API_URL"), jupyter_url=env.get("JUPYTER_URL"),
                   api_key=env.get("ACD_API_KEY"))


def api_key() -> str:
    """The REST API key a lab client sends: ACD_API_KEY from the environment (the lab's
    JupyterLab kernels get it), else from the lab's .env (LAB_ENV_FILE: a test's lab),
    else from the repository's .env (settings.acd_api_key). See lab.apikeys."""
    import os

    from acd.settings import get_settings

    return os.environ.get("ACD_API_KEY") or info().api_key or get_settings().acd_api_key


def status() -> dict[str, int | None]:
    """Pid of each embedded component, None for those not running."""
    from lab.stack import EmbeddedLab

    return EmbeddedLab().status()


def start() -> None:
    """Start the embedded lab (what ./start.sh does); harmless when it runs already."""
    from lab.stack import EmbeddedLab

    EmbeddedLab().start()


def stop(purge: bool = False) -> None:
    """Stop what start() started; ``purge`` deletes the data too."""
    from lab.stack import EmbeddedLab

    EmbeddedLab().stop(purge=purge)
