"""The Prefect API server of one Prefect home, shared by the labos processes using it, ended when idle.

Run as ``python -m flows.prefect_server HOME PORT KEEP_ALIVE`` by
:func:`flows.settings.configure_prefect`; not meant to be started by hand.

It serves Prefect's API app (what Prefect's own ephemeral mode serves) with uvicorn on
127.0.0.1:PORT. Every process using it holds a shared ``flock`` on ``HOME/server.lease``,
which the kernel releases when that process ends, however it ends (``kill -9`` included).
A watchdog thread tests the lease twice a second; once nobody has held it for
KEEP_ALIVE seconds the server removes ``HOME/server.json`` (under ``HOME/server.lock``,
the lock a process takes to find or start a server, so none can attach meanwhile) and
shuts down.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

POLL_S = 0.5
STARTUP_GRACE_S = 30.0
"""A new server waits at least this long for its first user (the one that started it takes its lease at once)."""

SERVER_JSON = "server.json"
SERVER_LOCK = "server.lock"
SERVER_LEASE = "server.lease"


def idle(lease: Path) -> bool:
    """Whether no process holds a shared lock on ``lease`` now."""
    fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock, if it was taken
    return True


def watch(home: Path, keep_alive: float, server: Any) -> None:
    """Stop ``server`` (a ``uvicorn.Server``) once ``home``'s lease has been free for ``keep_alive`` seconds."""
    lease = home / SERVER_LEASE
    busy_until = time.monotonic() + max(keep_alive, STARTUP_GRACE_S)
    while not server.should_exit:
        time.sleep(POLL_S)
        now = time.monotonic()
        if not idle(lease):
            busy_until = now + keep_alive
            continue
        if now < busy_until:
            continue
        fd = os.open(home / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # no process is finding or starting a server now
            if not idle(lease):
                busy_until = time.monotonic() + keep_alive
                continue
            forget(home)
            server.should_exit = True
        finally:
            os.close(fd)


def forget(home: Path) -> None:
    """Remove ``home``'s ``server.json`` if it names this process."""
    path = home / SERVER_JSON
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def main(argv: list[str]) -> None:
    """Serve Prefect's API for the home, port and keep-alive in ``argv`` until idle."""
    home, port, keep_alive = Path(argv[0]), int(argv[1]), float(argv[2])
    import uvicorn

    config = uvicorn.Config(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    threading.Thread(target=watch, args=(home, keep_alive, server), name="labos-idle-watch", daemon=True).start()
    try:
        server.run()
    finally:  # stopped by a signal (SIGTERM, SIGINT): not found by the next process either
        forget(home)


if __name__ == "__main__":
    main(sys.argv[1:])
