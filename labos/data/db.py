"""The database under the store: SQLAlchemy engines for SQLite (default) and PostgreSQL.

SQL is written once, with ``?`` placeholders, and runs on both: :class:`Database`
turns the placeholders into SQLAlchemy bind parameters. SQLite files are opened in WAL
mode with ``synchronous=FULL`` and foreign keys on, and every write transaction starts
with ``BEGIN IMMEDIATE`` (the write lock is taken first, so two writers queue instead
of failing half-way); PostgreSQL transactions lock the rows they change
(:attr:`Database.for_update`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from labos.core.errors import StoreError

_QMARK = re.compile(r"\?")
BUSY_TIMEOUT_S = 30.0


class Row(tuple[Any, ...]):
    """A result row readable by position and by column name (like ``sqlite3.Row``)."""

    _keys: dict[str, int]

    def __new__(cls, values: Sequence[Any], keys: dict[str, int]) -> Row:
        """A row of ``values`` whose columns are named by ``keys`` (name -> position)."""
        row = super().__new__(cls, values)
        row._keys = keys
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._keys[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """Column names."""
        return list(self._keys)


class Result:
    """The rows of one statement (``fetchone``/``fetchall``, as sqlite3 cursors have)."""

    def __init__(self, result: sa.CursorResult[Any]) -> None:
        self._rows: list[Row] = []
        self.rowcount = result.rowcount
        if result.returns_rows:
            keys = {k: i for i, k in enumerate(result.keys())}
            self._rows = [Row(tuple(r), keys) for r in result.fetchall()]

    def fetchone(self) -> Row | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one(self) -> Row:
        """The first row; a :class:`StoreError` if there is none."""
        if not self._rows:
            raise StoreError("expected a row, found none")
        return self._rows[0]

    def fetchall(self) -> list[Row]:
        """Every row."""
        return list(self._rows)


class Tx:
    """One open transaction: ``execute(sql, args)`` with ``?`` placeholders."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Result:
        """Run one statement."""
        return Result(self.conn.execute(*bind(sql, args)))


def bind(sql: str, args: Sequence[Any]) -> tuple[sa.TextClause, dict[str, Any]]:
    """``sql`` with ``?`` placeholders as a SQLAlchemy text clause and its parameters."""
    names = iter(range(len(args) + 1))
    text = _QMARK.sub(lambda _: f":p{next(names)}", sql)
    return sa.text(text), {f"p{i}": v for i, v in enumerate(args)}


def is_url(target: str | Path) -> bool:
    """Whether ``target`` is a database URL rather than a path."""
    return isinstance(target, str) and "://" in target


def make_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for ``url`` with labos's settings for its dialect (``read_only``: SQLite pragmas left alone)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(
                url,
                connect_args={"timeout": BUSY_TIMEOUT_S, "isolation_level": None, "check_same_thread": False},
            )

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi: Any, _record: Any) -> None:
                if read_only:
                    return
                cur = dbapi.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:  # reads share the file; writes take the lock first
                conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("labos_read") else "BEGIN IMMEDIATE")

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use the store URL {redact(url)}: {exc}") from None


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class Database:
    """An engine plus the SQL helpers the store and the registry use (thread-safe).

    Parameters
    ----------
    url
        ``sqlite:///path`` or ``postgresql://user:password@host:port/db``.
    where
        How to name the database in messages (a path, or the URL without its password).
    read_only
        Opened only to read (an SQLite URL then names a read-only or immutable file).
    """

    def __init__(self, url: str, where: str, read_only: bool = False) -> None:
        self.url = url
        self.where = where
        self.engine = make_engine(url, read_only)
        self.dialect = self.engine.dialect.name
        self.for_update = " FOR UPDATE" if self.dialect == "postgresql" else ""
        """Appended to a SELECT that reads a row the transaction is about to change."""
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One write transaction: committed durably at the end (SQLite ``synchronous=FULL``), or rolled back."""
        with self._lock:
            try:
                with self.engine.connect() as conn, conn.begin():
                    yield Tx(conn)
            except sa.exc.OperationalError as exc:
                raise StoreError(f"writing to {self.where} failed: {exc.orig}") from exc
            except sa.exc.DBAPIError as exc:
                raise StoreError(f"writing to {self.where} failed: {exc.orig}") from exc

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """The rows of one read query."""
        try:
            with self.engine.connect().execution_options(labos_read=True) as conn:
                out = Result(conn.execute(*bind(sql, args))).fetchall()
                conn.rollback()
                return out
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"reading {self.where} failed: {exc.orig}") from exc

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()
