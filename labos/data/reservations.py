"""Leases in the store: one process runs a campaign, and an instrument serves one experiment at a time.

Every process that shares a store (one SQLite file, or one PostgreSQL database for
several machines) sees the same leases, so ownership and reservations hold across
processes and machines, and nothing depends on one process's memory:

- **Campaign ownership.** The process running a campaign holds a lease on the
  campaign's row (``campaigns.owner``, ``owner_expires``). Another process is refused
  while the lease lasts, with the owner's name; a dead owner's lease lapses after
  ``lease_s`` (see :class:`Leases`), or at once on the host where it ran, where a dead
  process is seen to be gone.
- **Instrument reservations.** A lane asks for the instruments a step needs
  (:meth:`Leases.acquire`): for each, one of a group of interchangeable instruments.
  A reservation is a lease with a holder (campaign, experiment, attempt, process);
  requests wait in the store (``reservation_requests``) and are granted, whenever
  instruments free up, **by campaign priority, then by the time of the request**, to
  the first request that can be served whole (first fit: a request that cannot be
  served now does not hold up one that can, so no lane waits on another lane that
  waits on it). Campaigns of equal priority take turns, since every step of every
  lane asks anew. Nothing is granted on a registered instrument an operator has
  disabled. A reservation whose holder stopped renewing it lapses after
  ``lease_s`` and is logged in the decision log of its campaign.
- Every lease is renewed by one heartbeat thread per process (:meth:`Leases.start`);
  a process killed with SIGKILL renews nothing, so its leases lapse within
  ``lease_s`` and its waiting requests with them.

Why the store and not Prefect's global concurrency limits: in Prefect 3.8 the
repossessor that frees expired leases does not run on the ephemeral server labos
starts, leases live in the server's memory unless configured otherwise (a restart can
leave a slot taken for good), waiters retry after up to 30 s with no order and no
priority, and a holder can only be a flow run, task run or deployment. The store is
already the one record every campaign process shares; a grant is one short
transaction (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on
PostgreSQL), and a lapsed lease is freed by the next grant, whoever makes it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labos.core.errors import LabosError, StoreError
from labos.data.db import Tx
from labos.data.jsonutil import dumps, loads
from labos.data.lock import CampaignBusy
from labos.data.records import process_gone
from labos.data.store import Store

LEASE_S = 30.0
"""Seconds a lease lasts without renewal: how long a dead holder's instruments stay reserved, at most."""
_ADVISORY_KEY = 0x6C61626F73  # "labos": serialises grants on PostgreSQL
_count = itertools.count(1)


class Interrupted(LabosError, RuntimeError):
    """A wait for instruments given up because the lane was told to stop."""


@dataclass(frozen=True)
class Reservation:
    """Who holds an instrument, and until when (``revoked``: why an operator aborts the work on it)."""

    resource: str
    campaign_id: str
    experiment_id: str
    attempt: int
    owner: str
    priority: int
    acquired: float
    expires: float
    revoked: str | None = None


def gone(owner: str) -> bool:
    """Whether the process an owner name names is known to be dead: on this host, with no such process.

    A lease names ``pid N on HOST``; on that host a killed process is seen at once, so its
    campaign can be resumed without waiting for the lease to lapse. Elsewhere only the
    lapse tells.
    """
    m = re.match(r"pid (\d+) on (\S+)", owner)
    return m is not None and process_gone(m.group(2), int(m.group(1)))


def owner_name() -> str:
    """The name leases give this process: ``pid N on HOST``, plus a number per :class:`Leases` of the process."""
    return f"pid {os.getpid()} on {platform.node()} #{next(_count)}"


class _Lapsed:
    """What :meth:`Leases._try_grant` returns for a request that is no longer in the store."""


_LAPSED = _Lapsed()


class Leases:
    """The leases one process holds in one store: campaign ownership and instrument reservations.

    Parameters
    ----------
    store
        The store every process of the facility shares.
    lease_s
        Seconds a lease lasts without renewal (default :data:`LEASE_S`); the heartbeat
        renews every ``min(lease_s / 3, 2)`` seconds.
    owner
        The holder's name (default :func:`owner_name`).
    """

    def __init__(
        self,
        store: Store,
        lease_s: float = LEASE_S,
        owner: str | None = None,
        on_revoked: Callable[[Reservation], None] | None = None,
    ) -> None:
        if not lease_s > 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        self.store = store
        self.lease_s = lease_s
        self.owner = owner or owner_name()
        self.on_revoked = on_revoked
        """Called (from the heartbeat thread) once for each held reservation an operator revoked."""
        self.beat_s = min(lease_s / 3.0, 2.0)
        """How often leases are renewed and revocations looked for."""
        self._revoked: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewal_error: StoreError | None = None
        """The last failure to renew (the store unreachable): leases may lapse meanwhile."""

    # ------------------------------------------------------------ heartbeat
    def start(self) -> None:
        """Start renewing this process's leases every :attr:`beat_s` (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._beat, name="labos-leases", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self.renew()
                self.renewal_error = None
                self._look_for_revocations()
            except StoreError as exc:  # the store is away: try again at the next beat
                self.renewal_error = exc

    def _look_for_revocations(self) -> None:
        if self.on_revoked is None:
            return
        rows = self.store.query(
            "SELECT resource, campaign_id, experiment_id, attempt, owner, priority, acquired, expires, revoked "
            "FROM reservations WHERE owner=? AND revoked IS NOT NULL",
            (self.owner,),
        )
        for r in (Reservation(*row) for row in rows):
            key = (r.resource, r.experiment_id)
            if key not in self._revoked:
                self._revoked.add(key)
                with contextlib.suppress(Exception):  # the callback's trouble must not stop the heartbeat
                    self.on_revoked(r)

    def renew(self) -> None:
        """Extend every lease and request this process holds by ``lease_s`` from now."""
        until = time.time() + self.lease_s
        with self.store.transaction() as c:
            c.execute("UPDATE campaigns SET owner_expires=? WHERE owner=?", (until, self.owner))
            c.execute("UPDATE reservations SET expires=? WHERE owner=?", (until, self.owner))
            c.execute("UPDATE reservation_requests SET expires=? WHERE owner=?", (until, self.owner))

    def close(self) -> None:
        """Stop renewing and give up every reservation and request of this process (campaigns: :meth:`disown`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with contextlib.suppress(StoreError), self.store.transaction() as c:
            c.execute("DELETE FROM reservations WHERE owner=?", (self.owner,))
            c.execute("DELETE FROM reservation_requests WHERE owner=?", (self.owner,))

    # ------------------------------------------------------------ campaigns
    def own(self, campaign_id: str) -> None:
        """Take the lease on running ``campaign_id``.

        Raises
        ------
        CampaignBusy
            If another live process holds it (naming it and how long its lease has left).
        StoreError
            If there is no such campaign.
        """
        now = time.time()
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT owner, owner_expires FROM campaigns WHERE id=?" + self.store.db.for_update, (campaign_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no campaign {campaign_id!r}")
            owner, expires = row
            live = owner is not None and owner != self.owner and expires is not None and expires >= now
            if live and not gone(owner):
                raise CampaignBusy(
                    f"campaign {campaign_id} is already running ({owner}; its lease is renewed every "
                    f"{self.beat_s:.0f} s and lapses {expires - now:.0f} s from now if that process is gone); "
                    "stop that process first, or wait for it to finish"
                )
            c.execute(
                "UPDATE campaigns SET owner=?, owner_expires=? WHERE id=?",
                (self.owner, now + self.lease_s, campaign_id),
            )

    def disown(self, campaign_id: str) -> None:
        """Give up the lease on ``campaign_id`` (nothing if this process does not hold it)."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE campaigns SET owner=NULL, owner_expires=NULL WHERE id=? AND owner=?", (campaign_id, self.owner)
            )

    # --------------------------------------------------------- reservations
    def acquire(
        self,
        wants: Sequence[Sequence[str]],
        campaign_id: str,
        experiment_id: str,
        attempt: int,
        priority: int = 0,
        *,
        cancelled: Callable[[], bool] = lambda: False,
        poll_s: float = 0.02,
        on_wait: Callable[[list[str]], None] | None = None,
        unusable: Callable[[], set[str]] | None = None,
    ) -> list[str]:
        """Reserve one instrument of each group of ``wants`` for one experiment; the instruments, in order.

        Waits in the store's queue until the request can be served whole (see the
        module's description), polling every ``poll_s`` (backing off to half a
        second). ``on_wait`` is called once, with what holds it up, if it has to wait.
        ``unusable()``, asked at every poll, names instruments this request must not be
        given now though nobody holds them (a furnace whose boat still holds a sample its
        dead or halted owner left there); they are struck from the stored request, so that
        no other requester's first fit counts on this one taking them.

        Raises
        ------
        Interrupted
            When ``cancelled()`` becomes true while waiting (the request is withdrawn).
        """
        if not wants:
            return []
        now = time.time()
        with self.store.transaction() as c:
            request_id = self._insert_request(c, wants, campaign_id, experiment_id, attempt, priority, now)
        delay, told = poll_s, False
        barred: set[str] = set()
        groups = wants  # as stored: wants less what is barred now
        try:
            while True:
                now_barred = unusable() if unusable is not None else set()
                if now_barred != barred:  # every requester's first fit must see it: in the row
                    barred = now_barred
                    groups = [[r for r in group if r not in barred] for group in wants]
                    with self.store.transaction() as c:
                        c.execute("UPDATE reservation_requests SET wants=? WHERE id=?", (dumps(groups), request_id))
                granted = self._try_grant(request_id)
                if isinstance(granted, _Lapsed):  # not renewed in time (a starved heartbeat): ask again, in its place
                    with self.store.transaction() as c:
                        request_id = self._insert_request(c, groups, campaign_id, experiment_id, attempt, priority, now)
                    continue
                if granted is not None:
                    return granted
                if cancelled():
                    raise Interrupted(f"experiment {experiment_id} stopped while waiting for instruments")
                if not told and on_wait is not None:
                    told = True
                    on_wait([g for group in wants for g in group])
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
        except BaseException:
            with contextlib.suppress(StoreError), self.store.transaction() as c:
                c.execute("DELETE FROM reservation_requests WHERE id=?", (request_id,))
            raise

    def _insert_request(
        self,
        c: Tx,
        wants: Sequence[Sequence[str]],
        campaign_id: str,
        experiment_id: str,
        attempt: int,
        priority: int,
        since: float,
    ) -> int:
        now = time.time()
        row = c.execute(
            "INSERT INTO reservation_requests (campaign_id, experiment_id, attempt, owner, priority, since, expires, "
            "wants) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (
                campaign_id,
                experiment_id,
                attempt,
                self.owner,
                priority,
                since,
                now + self.lease_s,
                dumps([list(g) for g in wants]),
            ),
        ).one()
        return int(row[0])

    def _try_grant(self, request_id: int) -> list[str] | _Lapsed | None:
        """Grant ``request_id`` if, among the live requests in priority order, first fit serves it now.

        Returns the instruments granted, ``None`` (not now), or :data:`_LAPSED` if the
        request is gone (it lapsed: its process did not renew it in time).
        """
        now = time.time()
        with self.store.transaction() as c:
            if self.store.db.dialect == "postgresql":
                c.execute("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_KEY,))
            self._lapse(c, now)
            if c.execute("SELECT 1 FROM reservation_requests WHERE id=?", (request_id,)).fetchone() is None:
                return _LAPSED
            taken = {r[0] for r in c.execute("SELECT resource FROM reservations").fetchall()}
            disabled = {
                f"registry:{r[0]}" for r in c.execute("SELECT name FROM instruments WHERE enabled=0").fetchall()
            }
            requests = c.execute(
                "SELECT id, campaign_id, experiment_id, attempt, owner, priority, wants FROM reservation_requests "
                "ORDER BY priority DESC, since, id"
            ).fetchall()
            for rid, campaign_id, experiment_id, attempt, owner, priority, wants in requests:
                picks: list[str] = []
                for group in loads(wants):
                    free = [r for r in group if r not in taken and r not in disabled and r not in picks]
                    if not free:
                        break
                    picks.append(free[0])
                else:
                    if rid != request_id:
                        taken.update(picks)  # an earlier request that can be served gets these first
                        continue
                    for resource in picks:
                        c.execute(
                            "INSERT INTO reservations (resource, campaign_id, experiment_id, attempt, owner, priority, "
                            "acquired, expires) VALUES (?,?,?,?,?,?,?,?)",
                            (resource, campaign_id, experiment_id, attempt, owner, priority, now, now + self.lease_s),
                        )
                    c.execute("DELETE FROM reservation_requests WHERE id=?", (rid,))
                    return picks
            return None

    @staticmethod
    def _lapse(c: Tx, now: float) -> None:
        """Free the reservations and requests whose holders stopped renewing them; each lapse is logged."""
        for resource, campaign_id, experiment_id, attempt, owner, expires in c.execute(
            "SELECT resource, campaign_id, experiment_id, attempt, owner, expires FROM reservations WHERE expires<?",
            (now,),
        ).fetchall():
            payload = {
                "resource": resource,
                "attempt": attempt,
                "owner": owner,
                "expired": expires,
                "lapsed_after_s": now - expires,
            }
            c.execute(
                "INSERT INTO events (campaign_id, time, kind, experiment_id, payload) VALUES (?,?,?,?,?)",
                (campaign_id, now, "reservation_lapsed", experiment_id, dumps(payload)),
            )
        c.execute("DELETE FROM reservations WHERE expires<?", (now,))
        c.execute("DELETE FROM reservation_requests WHERE expires<?", (now,))

    def release(self, resources: Sequence[str], experiment_id: str) -> None:
        """Give back ``resources`` held for ``experiment_id`` (those it does not hold are left alone)."""
        if not resources:
            return
        with self.store.transaction() as c:
            for resource in resources:
                c.execute(
                    "DELETE FROM reservations WHERE resource=? AND experiment_id=? AND owner=?",
                    (resource, experiment_id, self.owner),
                )


def reservations(store: Store) -> list[Reservation]:
    """Every live reservation in the store, by instrument."""
    now = time.time()
    rows = store.query(
        "SELECT resource, campaign_id, experiment_id, attempt, owner, priority, acquired, expires, revoked "
        "FROM reservations WHERE expires>=? ORDER BY resource",
        (now,),
    )
    return [Reservation(*r) for r in rows]
