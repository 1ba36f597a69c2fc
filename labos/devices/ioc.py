# mypy: disable-error-code="no-redef,untyped-decorator"
"""An EPICS Channel Access IOC (caproto) that serves a beamline driver's process variables.

``labos ioc beamline CONFIG`` starts one::

    prefix: "BL7:XRD:"
    instrument: {kind: xrd, driver: sim, options: {station: beamline}}
    simulation: {landscape: batio3-solid-state, world: ../labos-data/world.sqlite, acceleration: 1e6}

(``world``, like every path in the file, is relative to the file.)

PVs (``<prefix>`` omitted): ``Energy``/``Energy_RBV`` (keV), ``SlitH``/``SlitH_RBV``,
``SlitV``/``SlitV_RBV`` (mm), ``Shutter``/``Shutter_RBV`` (0 closed, 1 open),
``RingCurrent`` (mA), ``SampleId`` (put mounts the sample), ``Exposure`` (s),
``Acquire`` (put 1 exposes; completes when the frame is read out), ``TwoTheta``,
``Counts``, ``FrameEnergy``, ``FrameRingCurrent``, ``FrameDuration``, ``FrameSampleId``,
and ``Status`` / ``FaultTransient``: ``OK`` or the last command's fault. Setpoints
carry the driver's limits as control limits. Every put completes when the driver is
done (put-completion), as with motor and areaDetector records.

Any :class:`~labos.devices.drivers.BeamlineDriver` can sit behind it: the simulator
here, or a vendor library at a real beamline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from labos.core.campaign import InstrumentSpec, SimulationSpec
from labos.core.errors import DeviceFault
from labos.devices.drivers import BeamlineDriver, DriverContext

log = logging.getLogger("labos.ioc")

MAX_POINTS = 8192
"""Longest pattern the waveform PVs hold."""


class IOCConfig(BaseModel):
    """The YAML file of a beamline IOC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(default="BL:XRD:", pattern=r"^[A-Za-z0-9_:.-]+$")
    instrument: InstrumentSpec
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    seed: int = Field(default=0, ge=0)


def _limits(driver: BeamlineDriver) -> dict[str, tuple[float, float]]:
    out = {}
    for spec in driver.inputs():
        out[spec.name] = (float(spec.low if spec.low is not None else 0.0), float(spec.high or 0.0))
    return out


def build_pvgroup(prefix: str, driver: BeamlineDriver) -> Any:
    """A caproto ``PVGroup`` whose PVs read and drive ``driver``."""
    from caproto import ChannelType
    from caproto.server import PVGroup, pvproperty

    lim = _limits(driver)

    def setpoint(name: str, value: float, doc: str) -> Any:
        low, high = lim[name]
        return pvproperty(value=value, lower_ctrl_limit=low, upper_ctrl_limit=high, doc=doc)

    def text(name: str, doc: str, **kw: Any) -> Any:
        return pvproperty(
            value="", name=name, dtype=ChannelType.CHAR, max_length=256, string_encoding="utf-8", doc=doc, **kw
        )

    class BeamlineIOC(PVGroup):  # caproto names putters like their PVs
        Energy = setpoint("energy", 17.0, "monochromator energy setpoint (keV)")
        Energy_RBV = pvproperty(value=17.0, read_only=True)
        SlitH = setpoint("slit_h", 0.5, "horizontal slit gap (mm)")
        SlitH_RBV = pvproperty(value=0.5, read_only=True)
        SlitV = setpoint("slit_v", 0.5, "vertical slit gap (mm)")
        SlitV_RBV = pvproperty(value=0.5, read_only=True)
        Shutter = pvproperty(value=0, lower_ctrl_limit=0, upper_ctrl_limit=1, doc="photon shutter: 1 open")
        Shutter_RBV = pvproperty(value=0, read_only=True)
        RingCurrent = pvproperty(value=0.0, read_only=True, units="mA")
        SampleId = text("SampleId", "put a sample id to mount it")
        Exposure = setpoint("exposure", 10.0, "exposure time (s)")
        Acquire = pvproperty(value=0, doc="put 1 to expose; completes after readout")
        Stop = pvproperty(value=0, doc="put 1 to halt the running action and close the shutter")
        TwoTheta = pvproperty(value=[0.0] * 1, max_length=MAX_POINTS, read_only=True)
        Counts = pvproperty(value=[0.0] * 1, max_length=MAX_POINTS, read_only=True)
        FrameEnergy = pvproperty(value=0.0, read_only=True)
        FrameRingCurrent = pvproperty(value=0.0, read_only=True)
        FrameDuration = pvproperty(value=0.0, read_only=True)
        FrameSampleId = text("FrameSampleId", "sample of the last frame", read_only=True)
        Status = text("Status", "OK or the last command's fault", read_only=True)
        FaultTransient = pvproperty(value=0, read_only=True)

        async def _call(self, fn: Callable[[], Any]) -> Any:
            """Run a blocking driver call off the server's loop; faults go to Status."""
            await self.Status.write("BUSY")
            try:
                result = await asyncio.get_running_loop().run_in_executor(None, fn)
            except DeviceFault as exc:
                await self.FaultTransient.write(int(exc.transient))
                await self.Status.write(str(exc)[:255])
                await self._refresh()
                return None
            except Exception as exc:  # an IOC must keep serving
                log.exception("driver call failed")
                await self.FaultTransient.write(0)
                await self.Status.write(f"{type(exc).__name__}: {exc}"[:255])
                return None
            await self.FaultTransient.write(0)
            await self.Status.write("OK")
            await self._refresh()
            return result

        async def _refresh(self) -> None:
            beam = await asyncio.get_running_loop().run_in_executor(None, driver.beam)
            await self.RingCurrent.write(float(beam["ring_current_ma"]))
            await self.Shutter_RBV.write(1 if beam["shutter"] == "open" else 0)
            await self.Energy_RBV.write(float(beam["energy_kev"]))
            await self.SlitH_RBV.write(float(beam["slit_h"]))
            await self.SlitV_RBV.write(float(beam["slit_v"]))

        @RingCurrent.scan(period=1.0)
        async def RingCurrent(self, instance: Any, async_lib: Any) -> None:
            await self._refresh()

        @Energy.putter
        async def Energy(self, instance: Any, value: float) -> float:
            await self._call(lambda: driver.move("energy", float(value)))
            return value

        @Exposure.putter
        async def Exposure(self, instance: Any, value: float) -> float:
            await self._call(lambda: None)  # validated by the control limits; clears the last fault
            return value

        @SlitH.putter
        async def SlitH(self, instance: Any, value: float) -> float:
            await self._call(lambda: driver.move("slit_h", float(value)))
            return value

        @SlitV.putter
        async def SlitV(self, instance: Any, value: float) -> float:
            await self._call(lambda: driver.move("slit_v", float(value)))
            return value

        @Shutter.putter
        async def Shutter(self, instance: Any, value: int) -> int:
            await self._call(lambda: driver.shutter(bool(value)))
            return value

        @SampleId.putter
        async def SampleId(self, instance: Any, value: str) -> str:
            await self._call(lambda: driver.mount(str(value)))
            return value

        @Stop.putter
        async def Stop(self, instance: Any, value: int) -> int:
            # not through _call: a stop must not wait behind the action it stops
            if value:
                await asyncio.get_running_loop().run_in_executor(None, driver.stop)
                await self._refresh()
            return 0

        @Acquire.putter
        async def Acquire(self, instance: Any, value: int) -> int:
            if not value:
                return 0
            frame = await self._call(lambda: driver.acquire(float(self.Exposure.value)))
            if frame is not None:
                await self.TwoTheta.write(list(map(float, frame.two_theta_deg[:MAX_POINTS])))
                await self.Counts.write(list(map(float, frame.counts[:MAX_POINTS])))
                await self.FrameEnergy.write(float(frame.energy_kev))
                await self.FrameRingCurrent.write(float(frame.ring_current_ma))
                await self.FrameDuration.write(float(frame.duration_s))
                await self.FrameSampleId.write(str(frame.sample_id))
            return 0

    return BeamlineIOC(prefix=prefix)


def serve_beamline(config: IOCConfig, interfaces: list[str] | None = None, base: Path | None = None) -> None:
    """Build the driver and run the IOC until interrupted (blocking).

    ``base`` is the directory relative paths of the config refer to (its file's).
    """
    from caproto.asyncio.server import run
    from caproto.sync import repeater

    from labos.devices.build import build_driver

    # beacons need a repeater to land on; run one here unless one already listens
    threading.Thread(target=repeater.run, kwargs={"host": "127.0.0.1"}, name="ca-repeater", daemon=True).start()
    simulation = config.simulation.resolved(base or Path.cwd())
    context = DriverContext(seed=config.seed, simulation=simulation.model_dump())
    driver = build_driver("beamline", config.instrument, context)
    ioc = build_pvgroup(config.prefix, driver)
    log.info("serving %d PVs under %s", len(ioc.pvdb), config.prefix)
    try:
        run(ioc.pvdb, interfaces=interfaces or ["127.0.0.1"])
    finally:
        driver.close()
        context.close()
