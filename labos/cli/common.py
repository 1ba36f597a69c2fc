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


_routed: list[Any] = []
"""The file handler :func:`route_logs` installed last (replaced by the next call)."""


def route_logs(log_file: Path) -> None:
    """Send library logs (Prefect, bluesky, ophyd, labos's own loggers) to ``log_file`` from now on.

    The terminal keeps labos's own lines: a fault, a stop or a shutdown that labos
    handles and records is not a third-party traceback on the screen. Console handlers
    (plain stream handlers and Prefect's, on the root logger and on loggers that do not
    propagate) are replaced by one file handler, which stays until the process ends
    (Prefect still logs while it shuts down) or the next call replaces it.
    """
    import logging

    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for lg in loggers:
        replaced = False
        for h in list(lg.handlers):
            console = type(h) is logging.StreamHandler or (
                type(h).__module__.startswith("prefect.") and isinstance(h, logging.StreamHandler)
            )
            if h in _routed or (console and not isinstance(h, logging.FileHandler)):
                lg.removeHandler(h)
                replaced = True
        if replaced or lg is root:
            lg.addHandler(handler)
    for old in _routed:
        old.close()
    _routed[:] = [handler]
    logging.captureWarnings(True)


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
