"""What the store hands back: campaigns, experiments and attempts as plain records."""

from __future__ import annotations

import getpass
import os
import platform
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as stored."""

    id: str
    campaign_id: str
    seq: int
    planner: str
    params: dict[str, Any]
    status: str
    proposed: float
    started: float | None
    finished: float | None
    attempts: int
    run_uids: list[str]
    metrics: dict[str, float] | None
    objectives: dict[str, float] | None
    error: str | None
    instrument_time_s: float | None
    cause: str | None = None
    told: bool = False
    retry_at: float | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt of an experiment."""

    experiment_id: str
    n: int
    status: str
    started: float
    finished: float | None
    run_uid: str | None
    error: str | None
    cause: str | None


@dataclass(frozen=True)
class CampaignRecord:
    """One campaign as stored."""

    id: str
    name: str
    status: str
    created: float
    finished: float | None
    spec: dict[str, Any]
    source: str | None
    provenance: dict[str, Any]
    message: str | None
    planner_state: dict[str, Any] | None = None
    stop_request: str | None = None

    @property
    def effective_status(self) -> str:
        """``status``, except that a ``running`` campaign whose process is gone is ``interrupted``.

        Only decidable on the host that ran it; elsewhere ``running`` is reported as is.
        """
        if self.status != "running" or self.provenance.get("host") != platform.node():
            return self.status
        pid = self.provenance.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return self.status
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "interrupted"
        except PermissionError:  # alive, owned by someone else
            return self.status
        return self.status


def provenance() -> dict[str, Any]:
    """Where and with what a campaign ran."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("labos", "bluesky", "ophyd", "scikit-optimize", "prefect", "numpy", "torch", "botorch"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    return {
        "host": platform.node(),
        "user": user,
        "python": platform.python_version(),
        "pid": os.getpid(),
        "versions": versions,
    }
