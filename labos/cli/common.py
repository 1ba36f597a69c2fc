"""Helpers every ``labos`` command shares: consoles, formatting, data directories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import LabosError
from labos.core.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # not a terminal (a pipe, a log file): wide enough that tables keep one row per line
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def examples_dir() -> Path:
    """The example campaigns shipped with labos."""
    return Path(__file__).resolve().parents[2] / "examples"


def _data_dir(path: str | Path) -> Path:
    data_dir = Path(path)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabosError(f"cannot create the data directory {data_dir}: {exc.strerror}") from None
    return data_dir


def _stored_data_dir(args: argparse.Namespace) -> Path:
    """The data directory a command on stored campaigns reads: ``--data-dir``, ``LABOS_DATA_DIR``, or labos-data."""
    return Path(args.data_dir or Settings().data_dir or "labos-data")


def _status(rec: Any, data_dir: Path) -> str:
    """A campaign's status; ``running`` only while a process holds its lock (else ``interrupted``)."""
    from labos.data.lock import CampaignLock

    if rec.status != "running":
        return str(rec.status)
    lock = CampaignLock(data_dir, rec.id)
    if lock.path.exists():  # written by this labos: the kernel's lock says whether its process lives
        return "running" if lock.held_elsewhere() else "interrupted"
    return str(rec.effective_status)  # an older store: fall back to the recorded pid
