"""A campaign's embedded catalog over HTTP (uvicorn, API key): ``labos data serve``, and a campaign's own server.

A running campaign serves its catalog from a child process (:func:`start_server`):
tiled's server work (its SQLite catalog, the DuckDB event tables, about 0.25 s of CPU
per run) then runs beside the campaign's Python, not under its interpreter lock, and
the campaign writes and reads its runs with tiled's HTTP client, as it does a
facility's server (``LABOS_TILED_URL``). The child ends when the campaign closes its
stdin, which the kernel does when the campaign process dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labos.core.errors import RunStoreError
from labos.data.tiled_app import build_catalog_app, catalog_adapter, quiet

_KEY_VARIABLE = "LABOS_RUNS_SERVER_KEY"
_NICE_VARIABLE = "LABOS_RUNS_SERVER_NICE"


def make_server(
    directory: Path,
    host: str,
    port: int,
    api_key: str,
    ready: Callable[[str], None] | None = None,
    create: bool = False,
) -> Any:
    """A uvicorn server for the embedded catalog in ``directory`` (see :func:`serve`), not started."""
    import uvicorn

    with quiet():
        app = build_catalog_app(catalog_adapter(directory, create=create), api_key)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if ready is not None:
        startup = server.startup

        async def announce(*args: Any, **kwargs: Any) -> None:
            await startup(*args, **kwargs)
            ready(f"http://{host}:{port}/api/v1")

        server.startup = announce  # type: ignore[method-assign]
    return server


def serve(directory: Path, host: str, port: int, api_key: str, ready: Callable[[str], None] | None = None) -> None:
    """Serve the embedded catalog in ``directory`` over HTTP until interrupted (uvicorn).

    Clients authenticate with ``api_key`` (``tiled.client.from_uri(url, api_key=...)``);
    ``ready(url)`` is called once the server answers.
    """
    server = make_server(directory, host, port, api_key, ready)
    with quiet():
        server.run()


@dataclass
class ServerProcess:
    """A campaign's catalog served by a child process (see :func:`start_server`)."""

    url: str
    api_key: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 15.0) -> None:
        """End the server: stdin closed (it finishes the request in hand), then SIGTERM, then SIGKILL."""
        proc = self.process
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def start_server(directory: Path, timeout: float = 120.0, nice: int = 0) -> ServerProcess:
    """Serve the embedded catalog in ``directory`` (created if need be) from a child process on 127.0.0.1.

    The child picks a free port and a fresh API key is made for it, and runs ``nice``
    (a campaign's server runs at a lower CPU priority than the campaign: its writes trail
    the experiments). Its output goes to ``<directory>.server.log``.

    Raises
    ------
    RunStoreError
        If the server did not come up within ``timeout`` seconds (the log's last lines say why).
    """
    directory = Path(directory).resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    log = directory.with_name(directory.name + ".server.log")  # beside it: the catalog is created whole, by a rename
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labos.data.serve", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, _KEY_VARIABLE: key, _NICE_VARIABLE: str(nice)},
            start_new_session=True,  # a Ctrl-C at the terminal is the campaign's to handle, not the server's
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0.0))
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            ServerProcess("", key, proc).stop(timeout=1.0)
            tail = " ".join(log.read_text(errors="replace").splitlines()[-3:]) if log.exists() else ""
            why = "did not start in time" if left <= 0 or not ready else "exited"
            raise RunStoreError(f"the tiled server of {directory} {why}: {tail or 'no output'} (see {log})")
        line += chunk
    return ServerProcess(line.decode().strip(), key, proc)


def _main(directory: Path) -> None:
    """The child: wait for a previous server of this catalog to end, serve on a free port, end when stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server: Any = None

    def watch_stdin() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        if server is None:  # the campaign ended (or died) before the server was up
            os._exit(0)
        server.should_exit = True  # the campaign closed it, or died
        time.sleep(10.0)
        os._exit(0)  # did not stop in time

    threading.Thread(target=watch_stdin, name="labos-stdin", daemon=True).start()
    if os.environ.get(_NICE_VARIABLE):
        os.nice(int(os.environ[_NICE_VARIABLE]))  # trailing work: the experiments' critical path goes first
    lock = os.open(directory.with_name(directory.name + ".server.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + 30.0  # the server of a process just killed is still closing its tables
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RunStoreError(f"another process is serving the catalog in {directory}") from None
            time.sleep(0.1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]

    def ready(url: str) -> None:
        os.write(1, (url + "\n").encode())

    server = make_server(directory, "127.0.0.1", port, os.environ[_KEY_VARIABLE], ready, create=True)
    with quiet():
        server.run(sockets=[sock])


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
