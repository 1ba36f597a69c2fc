"""The instrument registry: what a facility has, who owns it, and whether it may be used.

Operators register instruments from YAML files (``labos instruments add FILE``)::

    name: uvvis-1
    kind: uvvis
    driver: zmq                     # how to reach it: sim, zmq, ...
    options: {endpoint: tcp://127.0.0.1:5555, server_key: ..., client_key: ...}
    capabilities: [absorbance, band-gap]
    limits: {integration_time: {high: 5}}   # tighter than the hardware's own
    calibration: {date: 2026-11-01, reference: holmium oxide filter}
    owner: Optics team <optics@example.org>

Entries live in the labos store of the data directory. Campaigns use them with
``driver: registry`` (``options: {name: uvvis-1}``, or ``{capabilities: [...]}`` for any
enabled instrument of the kind providing them); a disabled instrument is never used.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labos.core.campaign import InstrumentKind, InstrumentSpec
from labos.core.errors import ConfigurationError, LabosError, Problem, SpecError, StoreError
from labos.data.store import Store, open_store
from labos.devices.drivers import DriverContext, InputSpec


def _who() -> str:
    """The operator making a change: ``LABOS_OPERATOR`` if set, else the login name (``user@host``)."""
    import getpass
    import os
    import socket

    explicit = os.environ.get("LABOS_OPERATOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class LimitOverride(BaseModel):
    """Operator limits for one input; they may only tighten the driver's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = Field(default=None, allow_inf_nan=False, strict=True)
    high: float | None = Field(default=None, allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _ordered(self) -> LimitOverride:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        return self


class InstrumentEntry(BaseModel):
    """One registered instrument."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    kind: str
    driver: str = "sim"
    options: dict[str, Any] = Field(default_factory=dict)
    capabilities: list[str] = Field(default_factory=list)
    limits: dict[str, LimitOverride] = Field(default_factory=dict)
    calibration: dict[str, Any] = Field(default_factory=dict)
    owner: str = Field(min_length=1)
    location: str | None = None
    description: str | None = None

    def instrument_spec(self) -> InstrumentSpec:
        """The entry as a campaign instrument."""
        return InstrumentSpec.model_validate({"kind": self.kind, "driver": self.driver, "options": self.options})


@dataclasses.dataclass(frozen=True)
class Registered:
    """An entry with its maintenance state."""

    entry: InstrumentEntry
    enabled: bool
    reason: str | None
    updated: float


class Registry:
    """Registry operations on the store of one data directory."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _log(self, c: Any, name: str, action: str, detail: str | None) -> None:
        c.execute(
            "INSERT INTO instrument_log (name, time, action, detail, who) VALUES (?,?,?,?,?)",
            (name, time.time(), action, detail, _who()),
        )

    def add(self, entry: InstrumentEntry) -> None:
        """Register a new instrument (enabled). Refuses a name already registered."""
        if self.get(entry.name) is not None:
            raise ConfigurationError(f"instrument {entry.name!r} is already registered; remove it first")
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO instruments (name, entry, enabled, updated) VALUES (?,?,1,?)",
                (entry.name, entry.model_dump_json(), time.time()),
            )
            self._log(c, entry.name, "added", None)

    def update(self, entry: InstrumentEntry) -> list[str]:
        """Replace a registered instrument's entry (its enabled state kept); returns the fields changed.

        Logged as ``updated`` with the changed fields.
        """
        old = self.require(entry.name).entry
        if old.kind != entry.kind:
            raise ConfigurationError(
                f"instrument {entry.name!r} is a {old.kind}; an entry of kind {entry.kind!r} is a new instrument "
                "(remove this one first)"
            )
        before, after = old.model_dump(mode="json"), entry.model_dump(mode="json")
        changed = sorted(k for k in after if before.get(k) != after[k])
        if changed:
            with self.store.transaction() as c:
                c.execute(
                    "UPDATE instruments SET entry=?, updated=? WHERE name=?",
                    (entry.model_dump_json(), time.time(), entry.name),
                )
                self._log(c, entry.name, "updated", ", ".join(changed))
        return changed

    def get(self, name: str) -> Registered | None:
        """One entry, or None."""
        rows = self.store.query("SELECT * FROM instruments WHERE name=?", (name,))
        return self._row(rows[0]) if rows else None

    def require(self, name: str) -> Registered:
        """One entry; the error lists the registered names."""
        reg = self.get(name)
        if reg is None:
            names = ", ".join(r.entry.name for r in self.all()) or "none"
            where = self.store.db.where
            raise ConfigurationError(f"no instrument {name!r} in the registry ({where}); registered: {names}")
        return reg

    def all(self) -> list[Registered]:
        """Every entry, by name."""
        return [self._row(r) for r in self.store.query("SELECT * FROM instruments ORDER BY name")]

    def set_enabled(self, name: str, enabled: bool, reason: str | None = None, abort: bool = False) -> int:
        """Enable, or disable with a reason (maintenance); how many running experiments were asked to abort.

        A disabled instrument is granted to nobody from now on (see
        :mod:`labos.data.reservations`). The work running on it finishes, or with
        ``abort`` its holder is asked to stop the instrument now: its experiment fails as
        an instrument fault that gives the reason, and a retry goes to another instrument
        of its pool.
        """
        self.require(name)
        with self.store.transaction() as c:
            c.execute(
                "UPDATE instruments SET enabled=?, reason=?, updated=? WHERE name=?",
                (int(enabled), None if enabled else reason, time.time(), name),
            )
            self._log(
                c, name, "enabled" if enabled else "disabled" + (" (running work aborted)" if abort else ""), reason
            )
            if enabled or not abort:
                return 0
            why = f"instrument {name} disabled by {_who()}: {reason or 'no reason given'}"
            return int(
                c.execute("UPDATE reservations SET revoked=? WHERE resource=?", (why, f"registry:{name}")).rowcount
            )

    def remove(self, name: str) -> None:
        """Delete an entry (its log stays)."""
        self.require(name)
        with self.store.transaction() as c:
            c.execute("DELETE FROM instruments WHERE name=?", (name,))
            self._log(c, name, "removed", None)

    def history(self, name: str) -> list[dict[str, Any]]:
        """The maintenance log of an instrument."""
        rows = self.store.query("SELECT * FROM instrument_log WHERE name=? ORDER BY id", (name,))
        return [{"time": r["time"], "action": r["action"], "detail": r["detail"], "who": r["who"]} for r in rows]

    @staticmethod
    def _row(r: Any) -> Registered:
        return Registered(
            entry=InstrumentEntry.model_validate(json.loads(r["entry"])),
            enabled=bool(r["enabled"]),
            reason=r["reason"],
            updated=r["updated"],
        )

    def select(self, kind: str, name: str | None, capabilities: list[str]) -> Registered:
        """The instrument a campaign asks for (never a disabled one).

        By ``name``, or else the first enabled instrument of ``kind`` with every capability.
        """
        if name is not None:
            reg = self.require(name)
            if reg.entry.kind != kind:
                raise ConfigurationError(f"registered instrument {name!r} is a {reg.entry.kind}, not a {kind}")
            if not reg.enabled:
                raise ConfigurationError(f"instrument {name!r} is disabled: {reg.reason or 'no reason given'}")
            missing = sorted(set(capabilities) - set(reg.entry.capabilities))
            if missing:
                raise ConfigurationError(f"instrument {name!r} lacks capabilities {missing}")
            return reg
        candidates = [r for r in self.all() if r.entry.kind == kind and set(capabilities) <= set(r.entry.capabilities)]
        for reg in candidates:
            if reg.enabled:
                return reg
        disabled = ", ".join(f"{r.entry.name} ({r.reason})" for r in candidates) or "none"
        raise ConfigurationError(
            f"no enabled {kind} instrument with capabilities {sorted(capabilities)} in the registry "
            f"(disabled: {disabled})"
        )


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


class LimitedDriver:
    """Wraps a driver so that ``inputs()`` reports the operator's tighter limits."""

    def __init__(self, driver: Any, limits: Mapping[str, LimitOverride], instrument: str) -> None:
        self._driver = driver
        self._limits = limits
        self._instrument = instrument

    def inputs(self) -> list[InputSpec]:
        """The driver's inputs with registry limits applied (never widened)."""
        out = []
        specs = self._driver.inputs()  # one call: for a remote driver it is a round trip
        unknown = sorted(set(self._limits) - {i.name for i in specs})
        if unknown:
            raise ConfigurationError(f"registry limits for {self._instrument!r} name unknown inputs: {unknown}")
        for spec in specs:
            lim = self._limits.get(spec.name)
            if lim is not None:
                low = max(v for v in (spec.low, lim.low) if v is not None) if lim.low is not None else spec.low
                high = min(v for v in (spec.high, lim.high) if v is not None) if lim.high is not None else spec.high
                if low is not None and high is not None and low > high:
                    own = f"[{_g(spec.low)}, {_g(spec.high)}]"
                    raise ConfigurationError(
                        f"registry limits for {self._instrument!r}: {spec.name} limits (low {_g(lim.low)}, "
                        f"high {_g(lim.high)}) leave nothing of the instrument's own range {own}"
                    )
                spec = dataclasses.replace(spec, low=low, high=high)
            out.append(spec)
        return out

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._driver, attr)


def check_entry(entry: InstrumentEntry, data_dir: Path | None) -> str | None:
    """Build the entry's driver and check its limits name the instrument's inputs.

    Returns ``None`` when checked, or why the check could not be made (the instrument
    cannot be reached: its server is down, say); the limits are then checked again
    whenever a campaign uses the entry.

    Raises
    ------
    ConfigurationError
        If a limit names an input the instrument does not have, or tightens a limit
        outside the instrument's own range.
    """
    from labos.core.campaign import SimulationSpec
    from labos.devices.build import build_driver

    context = DriverContext(seed=0, simulation=SimulationSpec().model_dump(), data_dir=data_dir)
    try:
        driver = build_driver(entry.name, entry.instrument_spec(), context)
    except ConfigurationError:
        context.close()
        raise
    except LabosError as exc:  # not reachable now: not a mistake in the entry
        context.close()
        return str(exc)
    try:
        LimitedDriver(driver, entry.limits, entry.name).inputs() if entry.limits else driver.inputs()
    except ConfigurationError:
        raise
    except LabosError as exc:
        return str(exc)
    finally:
        driver.close()
        context.close()
    return None


def load_entry(path: str | Path) -> InstrumentEntry:
    """Read and validate a registry YAML file (errors located by line)."""
    from labos.core.loader import read_model

    entry, lines = read_model(InstrumentEntry, path)
    kinds = get_args(InstrumentKind)
    if entry.kind not in kinds:
        raise SpecError(
            [Problem("kind", f"unknown kind {entry.kind!r}; known: {', '.join(kinds)}", lines.get(("kind",)))],
            str(path),
        )
    return entry


def create_driver(kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Any:
    """Entry point ``labos.drivers: registry``: the registered instrument a campaign asks for."""
    from labos.devices.build import build_driver

    opts = dict(options)
    wanted = opts.pop("name", None)
    capabilities = list(opts.pop("capabilities", []))
    if opts:
        raise ConfigurationError(f"instrument {name!r}: unknown option(s) for driver registry: {sorted(opts)}")
    if context.data_dir is None:
        raise ConfigurationError(f"instrument {name!r}: driver registry needs the campaign's data directory")
    try:
        store = open_store(context.data_dir, read_only=context.check_only)
    except StoreError as exc:
        if not context.check_only:
            raise
        raise ConfigurationError(
            f"instrument {name!r}: no instrument registry to look it up in ({exc}); "
            "register instruments with labos instruments add --data-dir DIR"
        ) from None
    with store:
        reg = Registry(store).select(kind, wanted, capabilities)
    entry = reg.entry
    driver = build_driver(name, entry.instrument_spec(), context)
    context.identities[name] = f"registry:{entry.name}"
    return LimitedDriver(driver, entry.limits, entry.name) if entry.limits else driver
