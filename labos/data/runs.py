"""The Bluesky runs of a campaign, in tiled: written by bluesky's ``TiledWriter``, read back with tiled's client.

Every document of every run (failed and aborted runs included) goes through
:class:`bluesky.callbacks.tiled_writer.TiledWriter` into a tiled catalog, and the
export, recovery and the analysis of a run made by another process read runs back through tiled's client
(``bluesky-tiled-plugins`` gives a run its ``documents()``). Where the catalog is:

- by default an *embedded* catalog per campaign, ``<data_dir>/tiled/<campaign id>/``
  (``catalog.db``: tiled's SQLite catalog; ``tables.duckdb``: the runs' event tables),
  served in-process (no server to start). ``labos data serve CAMPAIGN`` serves the
  same directory over HTTP for tiled's own client;
- with ``LABOS_TILED_URL`` (and ``LABOS_TILED_API_KEY``) a tiled server, each campaign
  a container of it, for a facility that runs one.

The lifecycle stays in the campaign store (:mod:`labos.data.store`): an attempt is
``running`` there before its run starts, so a run left open by a killed process is
always found and closed by :meth:`RunCatalog.close_run` on resume. A run that started
before the catalog had opened is journaled until it has (:class:`RunWriter`), and a
journal left by a killed process is imported on resume.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labos.core.errors import RunStoreError
from labos.data.jsonutil import dumps
from labos.data.tiled_app import build_catalog_app, catalog_adapter, quiet

if TYPE_CHECKING:
    from concurrent.futures import Future

TILED_DIRNAME = "tiled"


def journal_dir(data_dir: str | Path, campaign_id: str) -> Path:
    """Where a campaign's runs wait for its catalog (see :class:`RunWriter`)."""
    return Path(data_dir) / TILED_DIRNAME / "journal" / campaign_id


def read_journal(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The ``(name, doc)`` pairs of a journal file; a last line cut by a crash is dropped."""
    import json

    docs: list[tuple[str, dict[str, Any]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            name, doc = json.loads(line)
        except ValueError:
            break  # written up to here
        docs.append((str(name), dict(doc)))
    return docs


def catalog_dir(data_dir: str | Path, campaign_id: str) -> Path:
    """Where the embedded catalog of ``campaign_id`` lives inside ``data_dir``."""
    return Path(data_dir) / TILED_DIRNAME / campaign_id


class RunCatalog:
    """The Bluesky runs of one campaign, as a tiled container.

    Open one with :meth:`open`; close it with :meth:`close`.

    Parameters
    ----------
    node
        The tiled client container whose children are the campaign's runs (by run uid).
    where
        Where it is, for messages.
    closer
        Called by :meth:`close` (the in-process server's context).
    """

    def __init__(self, node: Any, where: str, closer: Callable[[], None] | None = None) -> None:
        self.node = node
        self.where = where
        self._closer = closer

    @classmethod
    def open(cls, data_dir: str | Path, campaign_id: str, create: bool = True) -> RunCatalog:
        """The runs of ``campaign_id``: on ``LABOS_TILED_URL`` if set, else in the embedded catalog.

        Raises
        ------
        RunStoreError
            If the catalog cannot be opened (or does not exist and ``create`` is false).
        """
        from labos.core.settings import Settings

        settings = Settings()
        with quiet():
            from tiled.client import Context, from_context, from_uri

            if settings.tiled_url:
                try:
                    root = from_uri(settings.tiled_url, api_key=settings.tiled_api_key)
                    if campaign_id in root:
                        node = root[campaign_id]
                    elif create:
                        node = root.create_container(key=campaign_id, metadata={"labos_campaign": campaign_id})
                    else:
                        raise RunStoreError(f"tiled server {settings.tiled_url} has no campaign {campaign_id}")
                except RunStoreError:
                    raise
                except Exception as exc:
                    raise RunStoreError(f"tiled server {settings.tiled_url}: {exc}") from exc
                return cls(node, f"{settings.tiled_url} ({campaign_id})", root.context.close)
            directory = catalog_dir(data_dir, campaign_id)
            adapter = catalog_adapter(directory, create)
            context = Context.from_app(build_catalog_app(adapter))
            try:
                node = from_context(context)
            except BaseException:
                context.close()
                raise
        return cls(node, str(directory), context.close)

    def close(self) -> None:
        """Close the client (and the in-process server); idempotent."""
        closer, self._closer = self._closer, None
        if closer is not None:
            with quiet():
                closer()

    def __enter__(self) -> RunCatalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- writing
    def close_run(self, run_uid: str, reason: str, now: float | None = None) -> dict[str, Any]:
        """Close a run left open by a dead process: its stop document, ``exit_status="abort"``.

        ``num_events`` counts the events that reached tiled, by stream. Returns the stop document.
        """
        from event_model import DocumentNames, schema_validators

        run = self.node[run_uid]
        counts: Counter[str] = Counter()
        streams: dict[str, str] = {}
        for name, doc in self._documents(run):
            if name == "descriptor":
                streams[doc["uid"]] = doc.get("name", "primary")
                counts.setdefault(streams[doc["uid"]], 0)
            elif name == "event" and doc.get("descriptor") in streams:
                counts[streams[doc["descriptor"]]] += 1
            elif name == "event_page" and doc.get("descriptor") in streams:
                counts[streams[doc["descriptor"]]] += len(doc.get("seq_num", []))
        stop = {
            "run_start": run_uid,
            "time": time.time() if now is None else now,
            "uid": str(uuid.uuid4()),
            "exit_status": "abort",
            "reason": reason,
            "num_events": dict(counts),
        }
        schema_validators[DocumentNames.stop].validate(stop)
        run.update_metadata(metadata={**dict(run.metadata), "stop": stop}, drop_revision=True)
        return stop

    def import_run(self, documents: list[tuple[str, dict[str, Any]]]) -> str:
        """Write one run's ``(name, doc)`` pairs through ``TiledWriter`` (a partial earlier copy is replaced)."""
        from bluesky.callbacks.tiled_writer import TiledWriter

        uid = str(documents[0][1]["uid"])
        if uid in self.node:
            self.node[uid].delete(recursive=True, external_only=False)
        writer = TiledWriter(self.node, batch_size=1)
        with quiet():
            for name, doc in documents:
                writer(name, doc)
        return uid

    # -------------------------------------------------------------- reading
    def runs(self) -> list[tuple[str, dict[str, Any]]]:
        """``(uid, metadata)`` of every run, in the order they started."""
        items = [(k, dict(v.metadata)) for k, v in self.node.items()]
        items.sort(key=lambda kv: kv[1].get("start", {}).get("time", 0.0))
        return items

    def open_runs(self) -> list[tuple[str, dict[str, Any]]]:
        """``(uid, start document)`` of every run without a stop document."""
        return [(k, md.get("start", {})) for k, md in self.runs() if not md.get("stop")]

    def documents(self, run_uid: str) -> list[tuple[str, dict[str, Any]]]:
        """The ``(name, doc)`` pairs of one run, replayed by tiled (start, descriptors, events, stop).

        Raises
        ------
        RunStoreError
            If the run is not in the catalog.
        """
        try:
            run = self.node[run_uid]
        except KeyError:
            raise RunStoreError(f"Bluesky run {run_uid} is not in the tiled catalog {self.where}") from None
        return list(self._documents(run))

    @staticmethod
    def _documents(run: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        with quiet():
            for name, doc in run.documents():
                yield name, dict(doc)


class RunWriter:
    """RunEngine callback: bluesky's ``TiledWriter`` (one request per document), journaled until tiled is open.

    Takes interleaved runs: several RunEngines (one per lane) may be subscribed to one
    writer, their documents arriving on their own threads. Documents are routed to
    their run by :class:`event_model.RunRouter` (descriptors, events and the stop find
    their start), each run keeps its own journal, backup and failure, and the writes are
    serialised; the ``TiledWriter`` routes by run too.

    The catalog opens in the background (``catalog``: a future; tiled takes seconds to
    import), so an experiment need not wait for it to start. Until it is open, each run's
    documents go to a journal, ``<journal_dir>/<run uid>.jsonl``: one line per document,
    flushed as it is emitted and synced at the run's stop. As soon as the catalog is
    there (at the next document, or when :meth:`attach` is called), the journaled runs
    are written to it in order and their journals removed. A process killed before that
    leaves the journals; :func:`labos.data.recovery.recover_campaign` imports them.

    ``TiledWriter``'s own backup swallows a failed write; here the run's documents so
    far are written to ``<backup_dir>/<run uid>.jsonl`` and a :class:`RunStoreError`
    is raised, so the RunEngine aborts the run and the campaign stops on a store
    failure instead of analysing data that is not there. Later documents of that
    run go to the backup file only.
    """

    def __init__(self, catalog: Future[RunCatalog], backup_dir: Path, journal_dir: Path) -> None:
        from event_model import RunRouter

        self.catalog = catalog
        self.backup_dir = backup_dir
        self.journal_dir = journal_dir
        self._writer: Any = None  # the TiledWriter, once the catalog is open
        self._journaled: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # runs waiting for the catalog
        self._open: dict[str, _RunRecord] = {}  # runs in progress, by uid
        self._lock = threading.RLock()  # the RunEngines' threads write; attach() may come from another
        self._router = RunRouter([self._factory])

    def _factory(
        self, name: str, start: dict[str, Any]
    ) -> tuple[list[Callable[[str, dict[str, Any]], None]], list[Any]]:
        run = _RunRecord(self, str(start["uid"]))
        self._open[run.uid] = run
        return [run], []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Write one document (of any run)."""
        with self._lock:
            self._router(name, doc)

    def attach(self) -> None:
        """Wait for the catalog and write the journaled runs to it.

        Raises
        ------
        RunStoreError
            If the catalog could not be opened or the journaled runs not written (they stay journaled).
        """
        self.catalog.result()
        with self._lock:
            if self._writer is None:
                self._attach()

    def _attach(self) -> None:
        from bluesky.callbacks.tiled_writer import TiledWriter

        catalog = self.catalog.result()
        writer = TiledWriter(catalog.node, batch_size=1)
        with quiet():
            for uid, docs in list(self._journaled.items()):
                if uid in self._open:  # a run still going on: written document by document from now on
                    for name, doc in docs:
                        writer(name, doc)
                else:
                    catalog.import_run(docs)
                (self.journal_dir / f"{uid}.jsonl").unlink(missing_ok=True)
                del self._journaled[uid]
        self._writer = writer


class _RunRecord:
    """One run's documents on their way to tiled (a journal until the catalog is open; a backup if a write fails)."""

    def __init__(self, owner: RunWriter, uid: str) -> None:
        self.owner = owner
        self.uid = uid
        self.docs: list[tuple[str, dict[str, Any]]] = []
        self.failed: Path | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        try:
            self._write(name, doc)
        finally:
            if name == "stop":  # ended only once its stop is written (attach treats an open run as in progress)
                self.owner._open.pop(self.uid, None)

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        owner = self.owner
        self.docs.append((name, doc))
        if self.failed is not None:
            self._backup()
            return
        try:
            if owner._writer is None and owner.catalog.done():
                owner._attach()
            if owner._writer is None:
                self._journal(name, doc)
                return
            with quiet():
                owner._writer(name, doc)
        except Exception as exc:
            self.failed = self._backup()
            where = owner.catalog.result().where if owner._writer is not None else "the run catalog"
            raise RunStoreError(
                f"could not write the Bluesky run to tiled ({where}): {type(exc).__name__}: {exc}; "
                f"its documents are kept in {self.failed}"
            ) from exc

    def _journal(self, name: str, doc: dict[str, Any]) -> None:
        self.owner._journaled.setdefault(self.uid, []).append((name, doc))
        journal = self.owner.journal_dir
        journal.mkdir(parents=True, exist_ok=True)
        with (journal / f"{self.uid}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(dumps([name, doc]) + "\n")
            fh.flush()
            if name == "stop":
                os.fsync(fh.fileno())

    def _backup(self) -> Path:
        backup = self.owner.backup_dir
        backup.mkdir(parents=True, exist_ok=True)
        path = backup / f"{self.uid}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(dumps([n, d]) + "\n" for n, d in self.docs))
        os.replace(tmp, path)
        return path
