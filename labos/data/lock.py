"""One process at a time per campaign: an advisory file lock the kernel releases when the process dies."""

from __future__ import annotations

import fcntl
import os
import platform
from pathlib import Path

from labos.core.errors import LabosError


class CampaignBusy(LabosError, RuntimeError):
    """Another live process is running this campaign."""


class CampaignLock:
    """An exclusive ``flock`` on ``<data dir>/campaigns/<id>/lock``.

    Held while a process runs a campaign; released by :meth:`release` or, if the process
    is killed, by the kernel. So a lock that can be taken means nobody is running the
    campaign, whatever its stored status says.

    Parameters
    ----------
    data_dir
        The directory of the store.
    campaign_id
        The campaign.
    """

    def __init__(self, data_dir: Path, campaign_id: str) -> None:
        self.path = Path(data_dir) / "campaigns" / campaign_id / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`CampaignBusy` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CampaignBusy(
                f"campaign {self.path.parent.name} is already running ({holder}); "
                "stop that process first, or wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {platform.node()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def held_elsewhere(self) -> bool:
        """Whether some other process holds the lock now (without taking it)."""
        if self._fd is not None or not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
