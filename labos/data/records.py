"""What the store hands back: campaigns, experiments and attempts as plain records."""

from __future__ import annotations

import getpass
import os
import platform
import time
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
    instruments: list[str] | None = None
    """The instruments the attempt ran on, where recorded (schema 5 on)."""


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
    owner: str | None = None
    """The process running it (``pid N on HOST``) while its lease lasts (see :mod:`labos.data.reservations`)."""
    owner_expires: float | None = None

    @property
    def effective_status(self) -> str:
        """``status``, except that a ``running`` campaign whose process is gone is ``interrupted``.

        Gone: its ownership lease has lapsed (any host), or, on the host that ran it, its
        process no longer exists.
        """
        if self.status != "running":
            return self.status
        if self.owner_expires is not None and self.owner_expires < time.time():
            return "interrupted"
        pid = self.provenance.get("pid")
        if isinstance(pid, int) and process_gone(str(self.provenance.get("host")), pid):
            return "interrupted"
        return self.status


def process_gone(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` is known to have ended: only decidable on that host.

    Elsewhere, or for this very process, or a live process of another user, ``False``.
    """
    if host != platform.node() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


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
