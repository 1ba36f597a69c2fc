"""Prefect configuration for labos: a local API server per Prefect home, shared, ended when idle.

Call :func:`configure_prefect` before Prefect is imported: Prefect reads its settings
once, at import.

Prefect's own ephemeral mode starts an API server per process, as a plain child that
outlives a parent killed with SIGKILL, and two campaigns in one data directory would get
two servers on one SQLite database. labos serves the same app
(:mod:`flows.prefect_server`) once per Prefect home instead, on 127.0.0.1: a process
finds it through ``<home>/server.json`` or starts it, and holds a shared lock on
``<home>/server.lease`` while it uses it. The kernel drops that lock when the process
ends, however it ends; the server stops once nobody has held it for its keep-alive
(``LABOS_PREFECT_KEEP_ALIVE``, set by the process that started it). A server kept
alive between runs saves the next run its start-up: about 7 s on two cores.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from labos.core.errors import LabosError

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


_server: subprocess.Popen[bytes] | None = None
"""The API server this process started (it may outlive the process: see the module's docstring)."""
_server_pid: int | None = None
"""The API server this process uses, started here or found running."""
_lease: int | None = None
"""The file descriptor holding this process's shared lock on the server's lease."""
_started_keep_alive: float | None = None
"""The keep-alive of the server this process started (0: it stops when this process lets go)."""
_snapshot: tuple[Path, Path] | None = None
"""(home, template): a new Prefect home whose migrated database becomes the machine's template once it answers."""


def configure_prefect(home: str | Path, serve: bool = True, keep_alive: float = 0.0) -> Path:
    """Point Prefect at ``home`` and set quiet, offline-friendly defaults.

    Variables the user already set win: an existing ``PREFECT_HOME`` is kept, and with
    ``PREFECT_API_URL`` set flows report to that server. Otherwise, with ``serve``,
    the home's API server on 127.0.0.1 is found or started (see the module's docstring;
    one started here stops ``keep_alive`` seconds after its last user ends) and
    :func:`wait_for_api` waits until it answers; without ``serve``
    (or when Prefect was imported already, too late to point it elsewhere) Prefect
    starts its own ephemeral server. Returns the Prefect home in effect.
    """
    home = Path(home).resolve()
    os.environ.setdefault("PREFECT_HOME", str(home))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    effective = Path(os.environ["PREFECT_HOME"])
    effective.mkdir(parents=True, exist_ok=True)
    if serve and "PREFECT_API_URL" not in os.environ and "prefect" not in sys.modules and _server_pid is None:
        _start_server(effective, keep_alive)
    return effective


def _start_server(home: Path, keep_alive: float) -> None:
    """Find ``home``'s API server or start one; hold its lease; set ``PREFECT_API_URL``."""
    global _server, _server_pid, _lease, _started_keep_alive
    from flows.prefect_server import SERVER_JSON, SERVER_LEASE, SERVER_LOCK

    if importlib.util.find_spec("prefect") is None:
        return  # no Prefect: nothing to serve
    from importlib.metadata import version

    prefect_version = version("prefect")
    lock = os.open(home / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process at a time finds or starts the server
        info = _read_json(home / SERVER_JSON)
        if info is not None and _alive(info.get("pid")):
            if info.get("prefect") != prefect_version:
                raise LabosError(
                    f"a Prefect {info.get('prefect')} API server (process {info['pid']}) serves {home}, and this is "
                    f"Prefect {prefect_version}; it stops once its campaigns end and it has been idle for its "
                    f"keep-alive (or stop it: kill {info['pid']})"
                )
            url, _server_pid = str(info["url"]), int(info["pid"])
        else:
            _seed_database(home)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            log = (home / "api-server.log").open("ab")
            _server = subprocess.Popen(
                [sys.executable, "-m", "flows.prefect_server", str(home), str(port), f"{keep_alive:g}"],
                env={
                    **os.environ,
                    "PREFECT_UI_ENABLED": "0",
                    "PREFECT__SERVER_EPHEMERAL": "1",
                    "PREFECT__SERVER_FINAL": "1",
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # not the terminal's Ctrl-C: it ends by its lease
            )
            log.close()
            url, _server_pid, _started_keep_alive = f"http://127.0.0.1:{port}/api", _server.pid, keep_alive
            staged = home / f"{SERVER_JSON}.{os.getpid()}.new"
            staged.write_text(json.dumps({"pid": _server.pid, "url": url, "prefect": prefect_version}))
            os.replace(staged, home / SERVER_JSON)
        _lease = os.open(home / SERVER_LEASE, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(_lease, fcntl.LOCK_SH)  # held until this process ends or calls stop_server()
    finally:
        os.close(lock)
    os.environ["PREFECT_API_URL"] = url
    atexit.register(stop_server)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: object) -> bool:
    """Whether process ``pid`` is running (a zombie is not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust the signal
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def wait_for_api(timeout: float = 90.0) -> None:
    """Wait until the API server found or started by :func:`configure_prefect` answers (nothing if there is none).

    Raises
    ------
    LabosError
        If it exits or does not answer within ``timeout`` seconds (its log is in the Prefect home).
    """
    if _server_pid is None:
        return
    url = os.environ["PREFECT_API_URL"] + "/health"
    deadline = time.monotonic() + timeout
    while True:
        if (_server.poll() is not None) if _server is not None else not _alive(_server_pid):
            code = f" with code {_server.returncode}" if _server is not None else ""
            raise LabosError(
                f"the Prefect API server exited{code}; see {Path(os.environ['PREFECT_HOME']) / 'api-server.log'}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:  # 127.0.0.1: our own server
                if reply.status == 200:
                    _save_template()
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise LabosError(f"the Prefect API server did not answer on {url} within {timeout:g} s")
        time.sleep(0.1)


_DB_FILES = ("prefect.db", "memo_store.toml")
"""What a migrated Prefect home holds: its database, and the hash of the block types registered in it."""


def _template_dir() -> Path | None:
    """Where this machine keeps a migrated Prefect database for new homes (None: a database URL is set)."""
    if any(k in os.environ for k in ("PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_SERVER_DATABASE_CONNECTION_URL")):
        return None  # the user's database (PostgreSQL, ...): nothing to seed
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "labos" / f"prefect-{version('prefect')}"


def _seed_database(home: Path) -> None:
    """Give a new Prefect home a copy of the machine's migrated database, if there is one.

    Prefect's server creates and migrates a new database on start: about 20 s on two
    cores, against 7 s for a migrated one. The first new home of a machine (per Prefect
    version) pays for it, and :func:`wait_for_api` keeps its database, as soon as the
    server answers and before any flow runs, as the template for the next ones. A cache
    that cannot be read or written is skipped: Prefect migrates as it would anyway.
    """
    global _snapshot
    template = _template_dir()
    if template is None or (home / "prefect.db").exists():
        return
    try:
        if (template / "prefect.db").exists():
            for name in _DB_FILES:
                if (template / name).exists():
                    staged = home / f"{name}.{os.getpid()}.new"
                    shutil.copyfile(template / name, staged)
                    os.replace(staged, home / name)
            return
    except OSError:
        pass
    _snapshot = (home, template)


def _save_template() -> None:
    """Keep the new home's freshly migrated database as the machine's template (see :func:`_seed_database`)."""
    global _snapshot
    if _snapshot is None:
        return
    (home, template), _snapshot = _snapshot, None
    try:
        template.mkdir(parents=True, exist_ok=True)
        staged = template / f"prefect.db.{os.getpid()}.new"
        with closing(sqlite3.connect(home / "prefect.db")) as src, closing(sqlite3.connect(staged)) as dst:
            src.backup(dst)  # a consistent copy while the server writes
        if (home / "memo_store.toml").exists():
            shutil.copyfile(home / "memo_store.toml", template / "memo_store.toml")
        os.replace(staged, template / "prefect.db")
    except (OSError, sqlite3.Error):
        pass  # a cache: the next new home migrates again


def stop_server() -> None:
    """Let go of the API server (at exit; safe to call twice).

    The lease is released; a server with no other user stops after its keep-alive. One
    this process started is waited for (10 s at most) when it stops at once (keep-alive 0).
    """
    global _server, _server_pid, _lease
    if _lease is not None:
        os.close(_lease)  # drops the shared lock
    proc, _server, _server_pid, _lease = _server, None, None, None
    if proc is not None and _started_keep_alive == 0:  # started here with no keep-alive: it stops now
        with contextlib.suppress(subprocess.TimeoutExpired):  # unless another process still uses it
            proc.wait(timeout=10)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate a child process; kill it if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_routed: list[Any] = []
"""The file handler :func:`route_logs` installed last (replaced by the next call)."""


def route_logs(log_file: Path, streams: bool = True) -> None:
    """Send library logs (Prefect, bluesky, ophyd, labos's own loggers) to ``log_file`` from now on.

    The terminal keeps labos's own lines: a fault, a stop or a shutdown that labos
    handles and records is not a third-party traceback on the screen. Console handlers
    (Prefect's, and with ``streams`` plain stream handlers too, on the root logger and on
    loggers that do not propagate) are replaced by one file handler, which stays until
    the process ends (Prefect still logs while it shuts down) or the next call replaces
    it. From Python (a notebook), ``streams=False`` leaves the user's own handlers alone.
    """
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for lg in loggers:
        replaced = False
        for h in list(lg.handlers):
            console = (streams and type(h) is logging.StreamHandler) or (
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
    if streams:  # a library thread that dies (the RunEngine's loop after a double Ctrl-C) is logged, not printed
        threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """:data:`threading.excepthook` of the command line: an uncaught exception in a thread goes to the log."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    logging.getLogger("labos.threads").error("uncaught exception in %s", name, exc_info=args.exc_value)
