"""The simulated world shared by the simulated instruments of one lab.

It holds the clock, the ground-truth landscape, the physical samples made so far (with
where each one is) and an injected random state, so that a synthesizer, a robot, a
furnace and a diffractometer see the same samples, and a seeded campaign is
reproducible.

Samples live in a :class:`SampleBook`: in memory for one process, or in an SQLite file
(``simulation.world``) when instruments run in several processes — an instrument
server, an EPICS IOC and the campaign then share one physical world, as real
instruments share one lab.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labos.core.errors import DeviceFault, OptionError
from simulators.clock import SimClock
from simulators.landscapes import Landscape, get_landscape


@dataclass
class SimSample:
    """One physical sample: how it was made, what happened to it, and where it is."""

    id: str
    landscape: str
    state: dict[str, Any]
    """The landscape's description of the material (recipe, thermal history, ...)."""
    location: str | None = None
    """``station/slot``, ``gripper:<robot>``, or ``None`` (in a liquid handler's flow line)."""
    history: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ActionRecord:
    """One action as the instrument itself logged it: what, on which sample, for whom, and when.

    ``holder`` is whom the action was done for: the campaign's experiment and attempt
    the sample belongs to (sample ids are ``<experiment id>-a<attempt>``). Times are
    simulated (``sim_*``) and wall-clock (``wall_*``) seconds since the epoch; an action
    still running has the times it has reached so far.
    """

    instrument: str
    action: str
    sample: str | None
    holder: str | None
    sim_start: float
    sim_end: float
    wall_start: float
    wall_end: float


RESERVATION_TTL_S = 3600.0
"""Wall-clock seconds a slot reservation lasts unless renewed: one a crashed process left behind lapses."""


class SampleBook:
    """Where every sample is, in memory or in an SQLite file shared by processes.

    Every method is one transaction, so two processes never see half a move.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        try:
            if self.path is not None:
                if self.path.is_dir():
                    raise OptionError(f"{self.path} is a directory, not a sample database", path="simulation.world")
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                str(self.path) if self.path else ":memory:", check_same_thread=False, timeout=30.0, isolation_level=None
            )
            with self._tx() as c:
                c.execute("CREATE TABLE IF NOT EXISTS samples (id TEXT PRIMARY KEY, location TEXT, data TEXT NOT NULL)")
                c.execute("CREATE UNIQUE INDEX IF NOT EXISTS samples_location ON samples(location)")
                c.execute(
                    "CREATE TABLE IF NOT EXISTS reservations "
                    "(location TEXT PRIMARY KEY, sample TEXT NOT NULL, holder TEXT NOT NULL, expires REAL NOT NULL)"
                )
                c.execute("CREATE TABLE IF NOT EXISTS sample_times (sample TEXT PRIMARY KEY, t REAL NOT NULL)")
                c.execute(
                    "CREATE TABLE IF NOT EXISTS actions (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "instrument TEXT NOT NULL, action TEXT NOT NULL, sample TEXT, holder TEXT, "
                    "sim_start REAL NOT NULL, sim_end REAL NOT NULL, wall_start REAL NOT NULL, "
                    "wall_end REAL NOT NULL, pid INTEGER NOT NULL)"
                )
        except OptionError:
            raise
        except (sqlite3.Error, OSError) as exc:
            if hasattr(self, "_db"):
                self._db.close()
            reason = getattr(exc, "strerror", None) or exc
            raise OptionError(
                f"cannot use {self.path} as the sample database: {reason}", path="simulation.world"
            ) from None

    @staticmethod
    def check(path: str | Path) -> None:
        """Check that ``path`` can be a sample database, creating and writing nothing.

        Raises
        ------
        OptionError
            If it is a directory, or an existing file that is not a sample database.
        """
        p = Path(path)
        if p.is_dir():
            raise OptionError(f"{p} is a directory, not a sample database", path="simulation.world")
        if not p.exists():
            return
        try:
            db = sqlite3.connect(f"file:{p.resolve()}?immutable=1", uri=True)
            try:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OptionError(f"cannot use {p} as the sample database: {exc}", path="simulation.world") from None
        if tables and "samples" not in tables:
            msg = f"{p} is a database, but not of samples (tables: {', '.join(sorted(tables))})"
            raise OptionError(msg, path="simulation.world")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, sample: SimSample) -> None:
        """Record a new sample; its location must be free."""
        with self._tx() as c:
            if sample.location is not None:
                self._require_free(c, sample.location)
            c.execute(
                "INSERT OR REPLACE INTO samples (id, location, data) VALUES (?,?,?)",
                (sample.id, sample.location, json.dumps(asdict(sample))),
            )

    def get(self, sample_id: str) -> SimSample | None:
        """The sample, or ``None`` if it was never made."""
        with self._lock:
            row = self._db.execute("SELECT data FROM samples WHERE id=?", (sample_id,)).fetchone()
        return SimSample(**json.loads(row[0])) if row else None

    def at(self, location: str) -> str | None:
        """The id of the sample at ``location``, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT id FROM samples WHERE location=?", (location,)).fetchone()
        return str(row[0]) if row else None

    def occupied(self, prefix: str) -> dict[str, str]:
        """``{location: sample id}`` for every location starting with ``prefix``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT location, id FROM samples WHERE location LIKE ? ESCAPE '\\'",
                (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def reserve(self, candidates: Sequence[str], sample_id: str, holder: str, ttl_s: float = RESERVATION_TTL_S) -> str:
        """Reserve the first of ``candidates`` that is free for ``sample_id``, in one transaction; that location.

        A location is free for a sample when no other sample is in it and no other
        sample holds an unexpired reservation of it (reserving again for the same sample
        renews it). Until the sample arrives (:meth:`move` clears the reservation) or
        :meth:`release`, no other sample can be reserved into or moved into it: the
        check and the claim are one step, so two arms cannot both find it free.

        Raises
        ------
        ValueError
            If no candidate is free, naming what holds each one (up to three).
        """
        now = time.time()
        with self._tx() as c:
            c.execute("DELETE FROM reservations WHERE expires < ?", (now,))
            reasons: list[str] = []
            for location in candidates:
                problem = self._blocked(c, location, sample_id)
                if problem is None:
                    c.execute(
                        "INSERT OR REPLACE INTO reservations (location, sample, holder, expires) VALUES (?,?,?,?)",
                        (location, sample_id, holder, now + ttl_s),
                    )
                    return location
                reasons.append(problem)
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        raise ValueError(shown or "no location to reserve")

    def release(self, location: str, sample_id: str) -> None:
        """Give up ``sample_id``'s reservation of ``location`` (nothing if it holds none)."""
        with self._tx() as c:
            c.execute("DELETE FROM reservations WHERE location=? AND sample=?", (location, sample_id))

    def reserved(self, location: str) -> str | None:
        """The sample holding an unexpired reservation of ``location``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT sample FROM reservations WHERE location=? AND expires >= ?", (location, time.time())
            ).fetchone()
        return str(row[0]) if row else None

    def move(self, sample_id: str, to: str | None, note: str) -> SimSample:
        """Move a sample to ``to`` (which must be free for it: empty, and reserved for no other sample)."""
        with self._tx() as c:
            sample = self._load(c, sample_id)
            if to is not None:
                if (problem := self._blocked(c, to, sample_id)) is not None:
                    raise ValueError(problem)
                c.execute("DELETE FROM reservations WHERE location=?", (to,))
            sample.location = to
            sample.history.append(note)
            self._save(c, sample)
        return sample

    def update(self, sample_id: str, state: Mapping[str, Any], note: str) -> SimSample:
        """Replace a sample's material state (after an anneal, say)."""
        with self._tx() as c:
            sample = self._load(c, sample_id)
            sample.state = dict(state)
            sample.history.append(note)
            self._save(c, sample)
        return sample

    def _load(self, c: sqlite3.Connection, sample_id: str) -> SimSample:
        row = c.execute("SELECT data FROM samples WHERE id=?", (sample_id,)).fetchone()
        if row is None:
            raise KeyError(sample_id)
        return SimSample(**json.loads(row[0]))

    def _save(self, c: sqlite3.Connection, sample: SimSample) -> None:
        c.execute(
            "UPDATE samples SET location=?, data=? WHERE id=?",
            (sample.location, json.dumps(asdict(sample)), sample.id),
        )

    @staticmethod
    def _blocked(c: sqlite3.Connection, location: str, sample_id: str) -> str | None:
        """Why ``sample_id`` cannot go to ``location`` now, or ``None``."""
        row = c.execute("SELECT id FROM samples WHERE location=?", (location,)).fetchone()
        if row is not None and row[0] != sample_id:
            return f"{location} holds sample {row[0]}"
        row = c.execute(
            "SELECT sample, holder FROM reservations WHERE location=? AND expires >= ?", (location, time.time())
        ).fetchone()
        if row is not None and row[0] != sample_id:
            return f"{location} is reserved for sample {row[0]} by {row[1]}"
        return None

    @staticmethod
    def _require_free(c: sqlite3.Connection, location: str) -> None:
        row = c.execute("SELECT id FROM samples WHERE location=?", (location,)).fetchone()
        if row is not None:
            raise ValueError(f"{location} is occupied by sample {row[0]}")

    # ------------------------------------------------------------ time and the instruments' own logs
    def time_of(self, sample_id: str | None) -> float | None:
        """Simulated time at which the last action on ``sample_id`` ended (``None``: none yet)."""
        if sample_id is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT t FROM sample_times WHERE sample=?", (sample_id,)).fetchone()
        return float(row[0]) if row else None

    def log_action(self, row: ActionRecord) -> int:
        """Record an action an instrument has started (see :class:`ActionRecord`); its row id."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO actions (instrument, action, sample, holder, sim_start, sim_end, wall_start, wall_end, "
                "pid) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    row.instrument,
                    row.action,
                    row.sample,
                    row.holder,
                    row.sim_start,
                    row.sim_end,
                    row.wall_start,
                    row.wall_end,
                    os.getpid(),
                ),
            )
            if row.sample is not None:
                c.execute("INSERT OR REPLACE INTO sample_times (sample, t) VALUES (?,?)", (row.sample, row.sim_end))
            return int(cur.lastrowid or 0)

    def progress(self, row_id: int, sample: str | None, sim_end: float, wall_end: float) -> None:
        """An action has reached ``sim_end`` (at wall-clock ``wall_end``); so has its sample."""
        with self._tx() as c:
            c.execute("UPDATE actions SET sim_end=?, wall_end=? WHERE id=?", (sim_end, wall_end, row_id))
            if sample is not None:
                c.execute("INSERT OR REPLACE INTO sample_times (sample, t) VALUES (?,?)", (sample, sim_end))

    def actions(self, instrument: str | None = None) -> list[ActionRecord]:
        """Every action the instruments logged (of one ``instrument``), in the order they started."""
        sql = "SELECT instrument, action, sample, holder, sim_start, sim_end, wall_start, wall_end FROM actions"
        args: tuple[str, ...] = ()
        if instrument is not None:
            sql, args = sql + " WHERE instrument=?", (instrument,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY wall_start, id", args).fetchall()
        return [ActionRecord(*r) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _stable(text: str) -> int:
    """A hash of ``text`` that is the same in every process (``hash`` of a str is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@dataclass
class SimWorld:
    """Everything simulated instruments share."""

    landscape: Landscape
    clock: SimClock
    seed: int
    book: SampleBook
    noise: float = 1.0
    fault_rate: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    run_key: str | None = None
    """Prefix of the sample ids of one campaign (its id), left out of the noise keys."""
    _draws: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @classmethod
    def from_simulation(
        cls, simulation: Mapping[str, Any], seed: int, run_key: str | None = None, check_only: bool = False
    ) -> SimWorld:
        """Build a world from a campaign's ``simulation`` section.

        ``check_only``: a world only to check a campaign against; a shared ``world`` file
        is checked (read-only, if it exists) but the samples are kept in memory, so
        nothing is created or written.
        """
        world = simulation.get("world")
        landscape = get_landscape(str(simulation.get("landscape", "perovskite-nanocrystal")))
        if check_only and world is not None:
            SampleBook.check(world)
            world = None
        return cls(
            landscape=landscape,
            clock=SimClock(float(simulation.get("acceleration", 1000.0))),
            seed=seed,
            book=SampleBook(world),
            noise=float(simulation.get("noise", 1.0)),
            fault_rate=float(simulation.get("fault_rate", 0.0)),
            run_key=run_key,
        )

    def rng_for(self, instrument: str, sample_id: str | None, action: str) -> np.random.Generator:
        """The random stream of one action of ``instrument`` on a sample.

        Keyed by (seed, instrument, sample, action, how often this action was done to the
        sample), not drawn from a running generator: the same experiment and attempt
        (a sample is ``<experiment>-a<attempt>``) sees the same noise and faults whatever
        ran before it, so a resumed campaign measures what an uninterrupted one would have.
        The campaign prefix (``run_key``) is left out of the key, so two campaigns with
        the same seed see the same noise too.
        """
        sample = sample_id or ""
        if self.run_key and sample.startswith(self.run_key):
            sample = sample[len(self.run_key) :]
        with self.lock:
            k = self._draws.get((instrument, sample, action), 0)
            self._draws[(instrument, sample, action)] = k + 1
        words = [_stable(instrument), _stable(sample), _stable(action), k]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *words]))

    def sample(self, device: str, sample_id: str) -> SimSample:
        """The sample called ``sample_id``; a fault if no such sample exists."""
        s = self.book.get(sample_id)
        if s is None:
            raise DeviceFault(device, f"sample {sample_id!r} does not exist (it was never made)")
        return s

    def landscape_of(self, sample: SimSample) -> Landscape:
        """The landscape a sample was made in (a shared world may hold several)."""
        if sample.landscape == self.landscape.name:
            return self.landscape
        return get_landscape(sample.landscape)

    def close(self) -> None:
        """Release the sample book."""
        self.book.close()


class FaultPlan:
    """Configurable faults of one simulated instrument: ``{fault name: probability per action}``.

    Each instrument declares the faults it can have (a robot jams, a controller
    disconnects, a furnace's thermocouple drifts, a storage ring dumps its beam) with
    the message the real instrument would give. ``defaults`` are rates that apply unless
    the instrument's own ``faults`` option sets them: the lab-wide
    ``simulation.fault_rate`` for each instrument's everyday transient faults (a jammed
    needle, a stalled stirrer, a lost sample-changer position) — one mechanism for every
    simulated fault.
    """

    def __init__(
        self,
        device: str,
        known: Mapping[str, str],
        rates: Mapping[str, Any] | None,
        defaults: Mapping[str, float] | None = None,
    ) -> None:
        rates = {**(defaults or {}), **dict(rates or {})}
        unknown = sorted(set(rates) - set(known))
        if unknown:
            raise OptionError(
                f"instrument {device!r}: option faults: unknown fault(s) {unknown}; "
                f"this instrument can have: {', '.join(sorted(known))}",
                option="faults",
            )
        for k, v in rates.items():
            if not 0.0 <= float(v) <= 1.0:  # NaN fails this too
                raise OptionError(
                    f"instrument {device!r}: fault rate {k} = {v} must lie in [0, 1]", option=f"faults.{k}"
                )
        self.device = device
        self.known = dict(known)
        self.rates = {k: float(v) for k, v in rates.items()}

    def happens(self, fault: str, rng: np.random.Generator) -> bool:
        """Whether ``fault`` strikes this time (draws from ``rng`` only if it is configured)."""
        rate = self.rates.get(fault, 0.0)
        return rate > 0 and bool(rng.random() < rate)

    def check(self, fault: str, rng: np.random.Generator, *, transient: bool = True) -> None:
        """Raise the fault's :class:`DeviceFault` if it strikes."""
        if self.happens(fault, rng):
            raise DeviceFault(self.device, f"{self.known[fault]} (simulated {fault})", transient=transient)
