"""The embedded tiled catalog: created from a template once per data directory, and the app that serves it."""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import shutil
import threading
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


@functools.cache
def _template(where: Path) -> Path:
    """An empty, initialised tiled catalog, made once per data directory with tiled's own ``catalog init`` steps.

    It is kept beside the campaigns' catalogs, named by tiled's version (a new tiled
    makes a new one), and new campaigns get a copy. Written beside and renamed into
    place, so a process killed half-way leaves no half-made template.

    The steps are those of ``tiled catalog init`` (create the tables, stamp alembic's
    head), run in this process: the command costs a second Python that imports tiled
    again (about 8 s on two cores), the steps themselves about 0.2 s.
    """
    from importlib.metadata import version

    template = where / f".catalog-template-tiled-{version('tiled')}.db"
    if template.exists():
        return template
    where.mkdir(parents=True, exist_ok=True)
    staged = template.with_name(f"{template.name}.{os.getpid()}.new")
    staged.unlink(missing_ok=True)
    failure: list[BaseException] = []
    # asyncio.run needs a thread without a running event loop (a caller may have one), and
    # SQLite's async driver wants its engine made, used and disposed in one thread.
    worker = threading.Thread(target=_init_database, args=(staged, failure), name="labos-tiled-init")
    worker.start()
    worker.join()
    if failure:
        staged.unlink(missing_ok=True)
        exc = failure[0]
        raise RunStoreError(f"could not create a tiled catalog: {type(exc).__name__}: {exc}") from exc
    os.replace(staged, template)
    return template


def _init_database(path: Path, failure: list[BaseException]) -> None:
    """``tiled catalog init sqlite:///path``: tables created, alembic's revision stamped (errors into ``failure``)."""
    try:
        from sqlalchemy.ext.asyncio import create_async_engine
        from tiled.alembic_utils import stamp_head
        from tiled.catalog.alembic_constants import ALEMBIC_DIR, ALEMBIC_INI_TEMPLATE_PATH
        from tiled.catalog.core import initialize_database

        uri = f"sqlite+aiosqlite:///{path}"

        async def create() -> None:
            engine = create_async_engine(uri)
            try:
                await initialize_database(engine)
            finally:
                await engine.dispose()

        with quiet():  # alembic 1.17 warns about tiled's alembic.ini (no path_separator)
            asyncio.run(create())
            stamp_head(ALEMBIC_INI_TEMPLATE_PATH, ALEMBIC_DIR, uri)
    except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
        failure.append(exc)


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
        _init_catalog(directory)
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
