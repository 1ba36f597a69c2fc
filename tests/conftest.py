"""Shared fixtures. Prefect is pointed at a throwaway home before anything imports it."""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

_PREFECT_HOME = tempfile.mkdtemp(prefix="labos-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
# the machine's cache (a migrated Prefect database for new homes): one per test session, not the user's
os.environ["XDG_CACHE_HOME"] = os.path.join(_PREFECT_HOME, "cache")
os.environ.setdefault("LABOS_THREADS", "1")
os.environ.setdefault("LABOS_PREFECT_KEEP_ALIVE", "0")  # a test's server stops with it (test_prefect_home keeps one)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from flows.settings import configure_prefect  # noqa: E402

configure_prefect(_PREFECT_HOME, serve=False)  # in-process flows: Prefect's ephemeral server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test not marked ``e2e`` or ``slow`` is a ``unit`` test (``pytest -m unit``: the fast loop).

    ``fuzz_long`` tests run only when asked for (``pytest -m fuzz_long``).
    """
    long_fuzz = "fuzz_long" in (config.getoption("markexpr") or "")
    for item in items:
        if not long_fuzz and any(item.iter_markers("fuzz_long")):
            item.add_marker(pytest.mark.skip(reason="the long fuzz runs with -m fuzz_long"))
        if not any(item.iter_markers("e2e")) and not any(item.iter_markers("slow")):
            item.add_marker(pytest.mark.unit)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect API server on 127.0.0.1 for the session (``prefect server start``); its API URL."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _pg_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (initdb in a temp dir, pg_ctl); its base URL.

    Needs Debian's ``postgresql`` (``make test`` installs it). Run as the ``postgres``
    user when the tests run as root, since PostgreSQL refuses to run as root.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail("PostgreSQL is not installed (make test installs Debian's postgresql package)")
    base = Path(tempfile.mkdtemp(prefix="labos-test-pg-"))  # pytest's own temp dirs are root-only
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True, timeout=120)
    run([*prefix, initdb, "-D", str(data), "-U", "labos", "--auth=trust", "-E", "UTF8", "--no-sync"])
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "server.log"), "-w", "start"])
    try:
        yield f"postgresql://labos@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database on the test server."""
    import sqlalchemy as sa

    name = f"t{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(f"postgresql+psycopg://{postgres_server.removeprefix('postgresql://')}/postgres")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return f"{postgres_server}/{name}"


@pytest.fixture(scope="session")
def demo_spec_master() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "demo.yaml").read_text())


@pytest.fixture
def demo_spec(demo_spec_master: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The demo campaign as a dict, never sleeping, writing under tmp_path."""
    spec = copy.deepcopy(demo_spec_master)
    spec["simulation"]["acceleration"] = float("inf")
    spec["data_dir"] = str(tmp_path / "data")
    return spec


@pytest.fixture
def small_spec(demo_spec: dict[str, Any]) -> dict[str, Any]:
    """A 3-D variant of the demo: halide composition and temperature; time and ligand fixed."""
    spec = copy.deepcopy(demo_spec)
    del spec["space"]["reaction_time"]
    del spec["space"]["ligand"]
    spec["workflow"]["steps"][0]["options"] = {"reaction_time": 60.0, "ligand": "oleylamine"}
    return spec


@pytest.fixture
def write_yaml(tmp_path: Path) -> Iterator[Any]:
    def write(data: Any, name: str = "campaign.yaml") -> Path:
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return p

    return write
