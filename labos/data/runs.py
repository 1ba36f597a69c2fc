"""The Bluesky runs of a campaign, in tiled: written by bluesky's ``TiledWriter``, read back with tiled's client.

Every document of every run (failed and aborted runs included) goes through
:class:`bluesky.callbacks.tiled_writer.TiledWriter` into a tiled catalog, and the
export, recovery and the analysis of a run made by another process read runs back through tiled's client
(``bluesky-tiled-plugins`` gives a run its ``documents()``). Where the catalog is:

- by default an *embedded* catalog per campaign, ``<data_dir>/tiled/<campaign id>/``
  (``catalog.db``: tiled's SQLite catalog; ``tables.duckdb``: the runs' event tables).
  A running campaign serves it from a child process on 127.0.0.1
  (:mod:`labos.data.serve`) and talks to it with tiled's HTTP client (so does its
  recovery on resume); ``labos export`` opens it in-process. ``labos data serve
  CAMPAIGN`` serves the same directory over HTTP for tiled's own client;
- with ``LABOS_TILED_URL`` (and ``LABOS_TILED_API_KEY``) a tiled server, each campaign
  a container of it, for a facility that runs one.

Every document is first appended to the run's journal (:class:`RunWriter`), the durable
record; tiled receives it behind the experiment. The lifecycle stays in the campaign
store (:mod:`labos.data.store`): an attempt is ``running`` there before its run starts,
so a run left open by a killed process is always found and closed by
:meth:`RunCatalog.close_run` on resume, and the journals it left are imported then.
"""

from __future__ import annotations

import logging
import os
import queue
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
log = logging.getLogger("labos.runs")


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
    def open(cls, data_dir: str | Path, campaign_id: str, create: bool = True, served: bool = False) -> RunCatalog:
        """The runs of ``campaign_id``: on ``LABOS_TILED_URL`` if set, else in the embedded catalog.

        The embedded catalog is served in-process, or with ``served`` by a child process
        over HTTP on 127.0.0.1 (:func:`labos.data.serve.start_server`): what a running
        campaign uses, so that tiled's server work is not done under its interpreter lock.

        Raises
        ------
        RunStoreError
            If the catalog cannot be opened (or does not exist and ``create`` is false).
        """
        from labos.core.settings import Settings

        settings = Settings()
        if settings.tiled_url:
            return cls._remote(settings.tiled_url, settings.tiled_api_key, campaign_id, create)
        directory = catalog_dir(data_dir, campaign_id)
        if served:
            return cls._served(directory, create)
        with quiet():
            from tiled.client import Context, from_context

            adapter = catalog_adapter(directory, create)
            context = Context.from_app(build_catalog_app(adapter))
            try:
                node = from_context(context)
            except BaseException:
                context.close()
                raise
        return cls(node, str(directory), context.close)

    # The HTTP clients below are opened outside quiet(): warnings.catch_warnings is process-wide and
    # not thread-safe, and a campaign opens its catalog on a thread of its own while planners run theirs
    # (tiled's client is imported, quietly, before: see labos.data.tiled_app.import_array_libraries).
    @classmethod
    def _remote(cls, url: str, api_key: str | None, campaign_id: str, create: bool) -> RunCatalog:
        from tiled.client import from_uri

        try:
            root = from_uri(url, api_key=api_key)
            if campaign_id in root:
                node = root[campaign_id]
            elif create:
                node = root.create_container(key=campaign_id, metadata={"labos_campaign": campaign_id})
            else:
                raise RunStoreError(f"tiled server {url} has no campaign {campaign_id}")
        except RunStoreError:
            raise
        except Exception as exc:
            raise RunStoreError(f"tiled server {url}: {exc}") from exc
        return cls(node, f"{url} ({campaign_id})", root.context.close)

    @classmethod
    def _served(cls, directory: Path, create: bool) -> RunCatalog:
        from tiled.client import from_uri

        from labos.data.serve import start_server

        if not create and not (directory / "catalog.db").exists():
            raise RunStoreError(f"no tiled catalog in {directory}")
        server = start_server(directory, nice=10)  # the campaign's writes trail its experiments
        try:
            root = from_uri(server.url, api_key=server.api_key)
        except Exception as exc:
            server.stop()
            raise RunStoreError(f"the tiled server of {directory} at {server.url}: {exc}") from exc

        def closer() -> None:
            try:
                root.context.close()
            finally:
                server.stop()

        return cls(root, f"{directory} (served at {server.url})", closer)

    def close(self) -> None:
        """Close the client (and the server, in-process or a child); idempotent."""
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
    """RunEngine callback: every document journaled at once, and written to tiled behind the experiment.

    Takes interleaved runs: several RunEngines (one per lane) may be subscribed to one
    writer, their documents arriving on their own threads; :class:`event_model.RunRouter`
    routes each document to its run.

    **The journal is the durable record.** Each run's documents go to
    ``<journal_dir>/<run uid>.jsonl`` as they are emitted (one line per document,
    flushed, synced at the run's stop), so the experiment goes on as soon as its
    documents are on disk. A thread of its own (the *shipper*) writes them to tiled
    through bluesky's ``TiledWriter``, in order, as soon as the catalog is open (it
    opens in the background: tiled takes seconds to import), and removes a run's
    journal once its stop is in tiled. Tiled's work (about 0.25 s per run of the demo)
    is thus off the experiments' critical path; :meth:`flush` waits for it.

    A process killed before its runs reached tiled leaves their journals, and
    :func:`labos.data.recovery.recover_campaign` imports them on resume (replacing a
    partial copy). If tiled cannot be opened or a write fails, shipping stops: the error
    is logged once, the runs stay journaled (nothing is lost and the campaign goes on),
    :meth:`flush` raises it, and the journals are imported by the next resume or export.
    A journal that cannot be written (a full disk) raises :class:`RunStoreError` in the
    RunEngine, which aborts the run.
    """

    def __init__(self, catalog: Future[RunCatalog], journal_dir: Path) -> None:
        from event_model import RunRouter

        self.catalog = catalog
        self.journal_dir = journal_dir
        self.error: str | None = None
        """Why shipping to tiled stopped, if it did."""
        self._lock = threading.Lock()  # the RunEngines' threads write
        self._router = RunRouter([self._factory])
        self._queue: queue.SimpleQueue[tuple[str, str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._unshipped = 0  # documents queued and not yet written to tiled (or given up)
        self._done = threading.Condition()
        self._shipper: threading.Thread | None = None

    def _factory(
        self, name: str, start: dict[str, Any]
    ) -> tuple[list[Callable[[str, dict[str, Any]], None]], list[Any]]:
        return [_RunJournal(self, str(start["uid"]))], []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Journal one document (of any run) and hand it to the shipper."""
        with self._lock:
            self._router(name, doc)

    def _ship_later(self, uid: str, name: str, doc: dict[str, Any]) -> None:
        with self._done:
            self._unshipped += 1
            if self._shipper is None:
                self._shipper = threading.Thread(target=self._ship, name="labos-runs-to-tiled", daemon=True)
                self._shipper.start()
        self._queue.put((uid, name, doc))

    def _ship(self) -> None:
        from bluesky.callbacks.tiled_writer import TiledWriter

        writer: Any = None
        while True:
            item = self._queue.get()
            if item is None:
                return
            uid, name, doc = item
            try:
                if self.error is None:
                    if writer is None:
                        writer = TiledWriter(self.catalog.result().node, batch_size=1)
                    writer(name, doc)  # not in quiet(): see RunCatalog._remote
                    if name == "stop":
                        (self.journal_dir / f"{uid}.jsonl").unlink(missing_ok=True)
            except Exception as exc:  # noqa: BLE001 - the runs stay journaled; flush() raises it
                where = self.catalog.result().where if self.catalog.done() and not self.catalog.exception() else "tiled"
                self.error = f"could not write the Bluesky runs to tiled ({where}): {type(exc).__name__}: {exc}"
                log.warning("%s; they stay in %s and are imported on resume", self.error, self.journal_dir)
            finally:
                with self._done:
                    self._unshipped -= 1
                    self._done.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every document so far is in tiled.

        Raises
        ------
        RunStoreError
            If shipping stopped (the runs are in the journal), or ``timeout`` passed.
        """
        with self._done:
            if not self._done.wait_for(lambda: self._unshipped == 0, timeout):
                raise RunStoreError(f"the Bluesky runs did not reach tiled within {timeout} s")
        if self.error is not None:
            raise RunStoreError(f"{self.error}; the runs are kept in {self.journal_dir}")

    def close(self, timeout: float | None = None) -> None:
        """Ship what is queued (see :meth:`flush`) and end the shipper."""
        try:
            self.flush(timeout)
        finally:
            if self._shipper is not None:
                self._queue.put(None)


class _RunJournal:
    """One run's journal file: every document appended and flushed, synced at the stop."""

    def __init__(self, owner: RunWriter, uid: str) -> None:
        self.owner = owner
        self.uid = uid
        self.path = owner.journal_dir / f"{uid}.jsonl"
        self.fh: Any = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        try:
            if self.fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.fh = self.path.open("a", encoding="utf-8")
            self.fh.write(dumps([name, doc]) + "\n")
            self.fh.flush()
            if name == "stop":
                os.fsync(self.fh.fileno())
                self.fh.close()
        except OSError as exc:
            raise RunStoreError(f"could not journal the Bluesky run {self.uid} in {self.path}: {exc}") from exc
        self.owner._ship_later(self.uid, name, doc)
