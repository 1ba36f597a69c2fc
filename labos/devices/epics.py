"""A beamline driver over EPICS Channel Access, through ophyd EPICS signals (driver ``epics``).

Options of an instrument using ``driver: epics``:

``prefix``
    The PV prefix of the beamline IOC (see :mod:`labos.devices.ioc`), e.g. ``BL7:XRD:``.
``timeout_s`` / ``action_timeout_s``
    How long to wait for a connection or a read, and for a move or an exposure
    (put-completion). Defaults 5 s and 900 s.

Channel Access is configured the EPICS way, by environment (``EPICS_CA_ADDR_LIST``,
``EPICS_CA_AUTO_ADDR_LIST``, ...); :func:`loopback_environment` gives the settings for
an IOC on 127.0.0.1. A PV that does not connect, or a put that does not complete,
is a transient :class:`~labos.core.errors.DeviceFault` after the timeout, never a hang.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from labos.core.errors import ConfigurationError, DeviceFault
from labos.devices.drivers import Diffractogram, DriverContext, InputSpec

_AXES = {"energy": "Energy", "slit_h": "SlitH", "slit_v": "SlitV"}


def loopback_environment(port: int, repeater_port: int | None = None) -> dict[str, str]:
    """Channel Access settings for an IOC and its clients on 127.0.0.1 only."""
    env = {
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{port}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(port),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_SERVER_PORT": str(port),
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_MAX_ARRAY_BYTES": "1000000",
    }
    if repeater_port is not None:
        env["EPICS_CA_REPEATER_PORT"] = str(repeater_port)
        env["EPICS_CAS_BEACON_PORT"] = str(repeater_port)
    return env


class EpicsBeamline:
    """:class:`~labos.devices.drivers.BeamlineDriver` on a beamline IOC's PVs."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        opts = dict(options)
        try:
            self.prefix = str(opts.pop("prefix"))
        except KeyError:
            raise ConfigurationError(f"instrument {name!r}: driver epics needs option 'prefix'") from None
        self.name = name
        self.timeout = float(opts.pop("timeout_s", 5.0))
        self.action_timeout = float(opts.pop("action_timeout_s", 900.0))
        if opts:
            raise ConfigurationError(
                f"instrument {name!r}: unknown option(s) for driver epics: {', '.join(sorted(opts))}"
            )
        from ophyd import EpicsSignal, EpicsSignalRO

        p = self.prefix
        self._signals: list[Any] = []

        def rw(pv: str, **kw: Any) -> Any:
            self._signals.append(EpicsSignal(p + pv, name=f"{name}_{pv}", put_complete=True, **kw))
            return self._signals[-1]

        def ro(pv: str, **kw: Any) -> Any:
            self._signals.append(EpicsSignalRO(p + pv, name=f"{name}_{pv}", **kw))
            return self._signals[-1]

        self.setpoints = {axis: rw(pv) for axis, pv in _AXES.items()}
        self.readbacks = {axis: ro(pv + "_RBV") for axis, pv in _AXES.items()}
        self.exposure = rw("Exposure")
        self.shutter_pv = rw("Shutter")
        self.shutter_rbv = ro("Shutter_RBV")
        self.ring = ro("RingCurrent")
        self.sample_pv = rw("SampleId", string=True)
        self.acquire_pv = rw("Acquire")
        self.stop_pv = rw("Stop")
        self.two_theta = ro("TwoTheta")
        self.counts = ro("Counts")
        self.frame_energy = ro("FrameEnergy")
        self.frame_ring = ro("FrameRingCurrent")
        self.frame_duration = ro("FrameDuration")
        self.frame_sample = ro("FrameSampleId", string=True)
        self.status = ro("Status", string=True)
        self.transient = ro("FaultTransient")

    def _connect(self, *signals: Any) -> None:
        for sig in signals:
            try:
                sig.wait_for_connection(timeout=self.timeout)
            except TimeoutError:
                raise DeviceFault(
                    self.name, f"PV {sig.pvname} did not connect within {self.timeout:g} s (IOC down?)", transient=True
                ) from None

    def _get(self, sig: Any) -> Any:
        """A fresh read (not a cached monitor value) of a connected PV."""
        self._connect(sig)
        return sig.get(timeout=self.timeout, use_monitor=False)

    def _put(self, sig: Any, value: Any) -> None:
        """Put with completion, then raise the IOC's fault if the command failed."""
        self._connect(sig, self.status, self.transient)
        try:
            sig.set(value, timeout=self.action_timeout).wait(timeout=self.action_timeout + 1.0)
        except Exception as exc:  # noqa: BLE001 - an unanswered put is a (transient) fault
            raise DeviceFault(
                self.name, f"put {sig.pvname} = {value!r} did not complete: {type(exc).__name__}: {exc}", transient=True
            ) from None
        status = str(self._get(self.status))
        if status != "OK":
            transient = bool(self._get(self.transient))
            raise DeviceFault(self.name, f"(EPICS {self.prefix}) {status}", transient=transient)

    def inputs(self) -> list[InputSpec]:
        """Energy, slits and exposure, with the IOC's control limits."""
        out = []
        for axis, unit in (("energy", "keV"), ("slit_h", "mm"), ("slit_v", "mm")):
            sig = self.setpoints[axis]
            self._connect(sig)
            low, high = sig.limits
            out.append(InputSpec(axis, "real", low=float(low), high=float(high), unit=unit))
        self._connect(self.exposure)
        low, high = self.exposure.limits
        out.append(InputSpec("exposure", "real", low=float(low), high=float(high), unit="s"))
        return out

    def move(self, axis: str, value: float) -> float:
        """Move an axis (put-completion) and return its readback."""
        if axis not in self.setpoints:
            raise DeviceFault(self.name, f"no axis {axis!r} ({', '.join(self.setpoints)})")
        self._put(self.setpoints[axis], float(value))
        return float(self._get(self.readbacks[axis]))

    def shutter(self, open_: bool) -> str:
        """Open or close the shutter."""
        self._put(self.shutter_pv, 1 if open_ else 0)
        return "open" if int(self._get(self.shutter_rbv)) else "closed"

    def beam(self) -> dict[str, Any]:
        """Ring current, shutter, energy and slits from the readbacks."""
        return {
            "ring_current_ma": float(self._get(self.ring)),
            "shutter": "open" if int(self._get(self.shutter_rbv)) else "closed",
            "energy_kev": float(self._get(self.readbacks["energy"])),
            "slit_h": float(self._get(self.readbacks["slit_h"])),
            "slit_v": float(self._get(self.readbacks["slit_v"])),
        }

    def mount(self, sample_id: str) -> float:
        """Mount a sample (put its id)."""
        self._put(self.sample_pv, sample_id)
        return 0.0

    def acquire(self, exposure_s: float) -> Diffractogram:
        """Set the exposure, put Acquire = 1 and wait for the frame."""
        self._put(self.exposure, float(exposure_s))
        self._put(self.acquire_pv, 1)
        return Diffractogram(
            sample_id=str(self._get(self.frame_sample)),
            two_theta_deg=np.asarray(self._get(self.two_theta), dtype=float),
            counts=np.asarray(self._get(self.counts), dtype=float),
            energy_kev=float(self._get(self.frame_energy)),
            exposure_s=float(exposure_s),
            ring_current_ma=float(self._get(self.frame_ring)),
            duration_s=float(self._get(self.frame_duration)),
        )

    def stop(self) -> None:
        """Put ``Stop = 1`` without waiting: the IOC halts the running action and closes the shutter."""
        self._connect(self.stop_pv)
        self.stop_pv.put(1, use_complete=False)

    def close(self) -> None:
        """Disconnect the PVs."""
        for sig in self._signals:
            with contextlib.suppress(Exception):  # closing is best effort
                sig.destroy()


def create_driver(kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Any:
    """Entry point ``labos.drivers: epics``."""
    if kind != "xrd":
        raise ConfigurationError(f"driver epics serves beamlines (kind xrd), not {kind!r}")
    beamline = EpicsBeamline(name, options)
    context.identities[name] = f"epics:{beamline.prefix}"
    return beamline
