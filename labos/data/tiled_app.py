"""The embedded tiled catalog: created from a template made once per data directory, and the app that serves it."""

from __future__ import annotations

import atexit
import copy
import fcntl
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labos.core.errors import RunStoreError


@contextmanager
def quiet() -> Iterator[None]:
    """Silence tiled's start-up chatter (version banner, deprecation notes) on the user's terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
        yield


def import_array_libraries() -> None:
    """Import the array libraries that tiled brings in and that other code finds in ``sys.modules``.

    ``array_api_compat`` (inside scipy and scikit-learn) asks whether an array is a
    ``dask.array.Array`` or a ``sparse.SparseArray`` by looking those modules up in
    ``sys.modules`` without importing them. While another thread is importing one, it is
    there half-initialised, and the lookup fails (``AttributeError: partially initialized
    module 'dask.array' has no attribute 'Array'``). The thread that opens a catalog imports
    these first and the campaign's own work waits for that (about 1 s), not for the catalog.

    It imports tiled's client and bluesky's ``TiledWriter`` too, inside :func:`quiet`, so
    that nothing later needs ``warnings.catch_warnings`` (process-wide and not
    thread-safe) while planners, which use it, run on other threads.
    """
    import contextlib
    import importlib

    for name in ("dask.array", "sparse"):
        with contextlib.suppress(ImportError):  # tiled works without them
            importlib.import_module(name)
    with quiet():
        import bluesky.callbacks.tiled_writer  # noqa: F401
        import tiled.client  # noqa: F401


@functools.cache
def _template(where: Path) -> Path:
    """An empty, initialised tiled catalog (tiled's own ``catalog init``, ~4 s), made once per data directory.

    It is kept beside the campaigns' catalogs, named by tiled's version (a new tiled
    makes a new one), and new campaigns get a copy: only the first campaign of a data
    directory pays for the init. Written beside and renamed into place, so a process
    killed half-way leaves no half-made template.
    """
    from importlib.metadata import version

    template = where / f".catalog-template-tiled-{version('tiled')}.db"
    if template.exists():
        return template
    tmp = Path(tempfile.mkdtemp(prefix="labos-tiled-"))
    atexit.register(shutil.rmtree, tmp, True)
    cmd = [sys.executable, "-m", "tiled", "catalog", "init", f"sqlite:///{tmp / 'catalog.db'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        raise RunStoreError(f"could not create a tiled catalog: {' '.join(tail) or 'tiled catalog init failed'}")
    where.mkdir(parents=True, exist_ok=True)
    staged = template.with_name(f"{template.name}.{os.getpid()}.new")
    shutil.copyfile(tmp / "catalog.db", staged)
    os.replace(staged, template)
    return template


def _init_catalog(directory: Path) -> None:
    """Create an empty catalog at ``directory`` atomically: built beside it, then renamed into place.

    A process killed half-way leaves only ``<directory>.new``, which the next call replaces.
    """
    tmp = directory.with_name(directory.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    shutil.copyfile(_template(directory.parent), tmp / "catalog.db")
    os.replace(tmp, directory)


def catalog_adapter(directory: Path, create: bool) -> Any:
    """Tiled's catalog adapter for the embedded catalog in ``directory`` (created if ``create``).

    Raises
    ------
    RunStoreError
        If there is no catalog and ``create`` is false, or it cannot be opened.
    """
    from tiled.catalog import from_uri

    directory = directory.resolve()
    if not (directory / "catalog.db").exists():
        if not create:
            raise RunStoreError(f"no tiled catalog in {directory}")
        directory.parent.mkdir(parents=True, exist_ok=True)
        # one creator at a time (a campaign's server, an export, a recovery); a killed one lets go
        fd = os.open(directory.with_name(directory.name + ".create.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not (directory / "catalog.db").exists():
                _init_catalog(directory)
        finally:
            os.close(fd)
    try:
        return from_uri(
            f"sqlite:///{directory / 'catalog.db'}",
            writable_storage=[str(directory / "data"), f"duckdb:///{directory / 'tables.duckdb'}"],
        )
    except Exception as exc:
        raise RunStoreError(f"could not open the tiled catalog in {directory}: {exc}") from exc


def build_catalog_app(adapter: Any, api_key: str | None = None) -> Any:
    """A tiled app serving ``adapter``, able to replay runs as documents (JSON-seq, bluesky-tiled-plugins).

    Without ``api_key`` the app accepts anonymous clients (used in-process only).
    """
    from bluesky_tiled_plugins.exporters import json_seq_exporter
    from tiled.config import Authentication
    from tiled.media_type_registration import default_serialization_registry
    from tiled.server.app import build_app

    logging.getLogger("tiled.server.app").setLevel(logging.WARNING)  # set INFO on import: "Tiled version ..."
    registry = copy.deepcopy(default_serialization_registry)
    registry.register("BlueskyRun", "application/json-seq", json_seq_exporter)
    auth = Authentication(single_user_api_key=api_key) if api_key else None
    return build_app(adapter, authentication=auth, serialization_registry=registry)
