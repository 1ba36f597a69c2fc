"""A new Prefect home starts from the machine's migrated database (Prefect's migrations cost about 20 s)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flows import settings

START = (
    "import sys; from flows.settings import configure_prefect, wait_for_api; "
    "configure_prefect(sys.argv[1]); wait_for_api()"
)


def _serve(home: Path, cache: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    for var in ("PREFECT_API_URL", "PREFECT_HOME"):
        env.pop(var, None)
    subprocess.run([sys.executable, "-c", START, str(home)], env=env, check=True, timeout=180)


def _revision(db: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT version_num FROM alembic_version").fetchall()


@pytest.mark.e2e
def test_the_first_home_makes_the_template_and_the_next_starts_from_it(tmp_path):
    cache = tmp_path / "cache"
    _serve(tmp_path / "first", cache)
    (template,) = cache.glob("labos/prefect-*/prefect.db")
    assert _revision(template) == _revision(tmp_path / "first" / "prefect.db")
    assert not list(template.parent.glob("*.new"))
    _serve(tmp_path / "second", cache)  # seeded, migrated already: Prefect's server accepts it and answers
    assert _revision(tmp_path / "second" / "prefect.db") == _revision(template)


def test_seeding_copies_the_database_and_leaves_an_existing_home_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    template = settings._template_dir()
    assert template is not None
    template.mkdir(parents=True)
    (template / "prefect.db").write_bytes(b"migrated")
    (template / "memo_store.toml").write_text("block_auto_registration = 'x'\n")
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    (old / "prefect.db").write_bytes(b"the user's runs")
    settings._seed_database(new)
    settings._seed_database(old)
    assert (new / "prefect.db").read_bytes() == b"migrated"
    assert (new / "memo_store.toml").exists()
    assert (old / "prefect.db").read_bytes() == b"the user's runs"
    assert not (old / "memo_store.toml").exists()
    assert settings._snapshot is None  # a seeded home is not saved back


def test_no_template_is_made_for_a_database_of_the_users_own(monkeypatch):
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://u@127.0.0.1/prefect")
    assert settings._template_dir() is None


ATTACH = (
    "import json, os, sys, time; from flows.settings import configure_prefect, wait_for_api; "
    "configure_prefect(sys.argv[1], keep_alive=float(sys.argv[2])); wait_for_api(); "
    "print(os.environ['PREFECT_API_URL'], flush=True); time.sleep(float(sys.argv[3]))"
)


@pytest.mark.e2e
def test_a_kept_alive_server_is_reused_then_stops_once_its_last_user_is_gone(tmp_path):
    """kill -9 included: the kernel drops the dead process's lease, and the idle server ends."""
    import json
    import signal
    import time

    from flows.settings import _alive

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    home = tmp_path / "prefect"

    def attach(sleep: float) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", ATTACH, str(home), "3", str(sleep)]
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)

    first = attach(0)
    url, _ = first.communicate(timeout=120)
    url = url.strip()
    assert first.returncode == 0
    server = json.loads((home / "server.json").read_text())
    assert server["url"] == url and _alive(server["pid"])  # kept alive after its starter ended
    second = attach(600)
    try:
        t0 = time.monotonic()
        assert second.stdout is not None and second.stdout.readline().strip() == url  # the same, found running
        assert time.monotonic() - t0 < 20
        time.sleep(4)  # past the keep-alive: still up, the second process holds the lease
        assert _alive(server["pid"])
    finally:
        second.send_signal(signal.SIGKILL)
        second.communicate()
    deadline = time.monotonic() + 30
    while _alive(server["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(server["pid"])
    assert not (home / "server.json").exists()


@pytest.mark.e2e
def test_a_kept_alive_server_of_another_prefect_version_is_named_not_used(tmp_path):
    """After a Prefect upgrade, a server the old version left running gets one error line naming it and its pid."""
    import json

    data = tmp_path / "data"
    (data / "prefect").mkdir(parents=True)
    old = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands for the old server
    try:
        (data / "prefect" / "server.json").write_text(
            json.dumps({"pid": old.pid, "url": "http://127.0.0.1:9/api", "prefect": "0.0.1"})
        )
        env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
        root = Path(__file__).resolve().parent.parent
        proc = subprocess.run(
            [sys.executable, "-m", "labos.cli", "run", str(root / "examples" / "demo.yaml"), "--data-dir", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        old.kill()
        old.wait()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"a Prefect 0.0.1 API server (process {old.pid})" in proc.stderr
    assert f"kill {old.pid}" in proc.stderr
