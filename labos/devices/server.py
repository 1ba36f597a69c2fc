"""An instrument server: hosts drivers in their own process, behind CurveZMQ.

``labos instrument serve CONFIG`` starts one::

    bind: tcp://127.0.0.1:5555
    secret_key: keys/server.key_secret      # the server's key pair
    authorized_keys: keys/clients           # public keys of the clients allowed in
    instruments:
      synth: {kind: synthesizer, driver: sim}
      uvvis: {kind: uvvis, driver: sim}
    simulation: {acceleration: 1000}        # for driver: sim (world: relative to this file)

Clients (driver ``zmq``) call driver methods by name; a request is
``{"instrument", "method", "args"}`` and a reply ``{"ok": true, "result"}`` or
``{"ok": false, "error": {"type", "message", "transient"}}``. Actions (an anneal, a
transfer) run on one worker thread per instrument; queries and ``stop`` are answered at
once by the serving thread, so a client can stop an anneal in progress. Only clients whose public
key is in ``authorized_keys`` get through the CurveZMQ handshake; every refusal is
logged with the client's key.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zmq
from pydantic import BaseModel, ConfigDict, Field
from zmq.auth.thread import ThreadAuthenticator

from labos.core.campaign import InstrumentSpec, SimulationSpec
from labos.core.errors import DeviceFault, LabosError
from labos.devices import keys, wire
from labos.devices.drivers import DriverContext
from labos.devices.lab import build_driver

log = logging.getLogger("labos.server")

ACTIONS = {"synthesize", "load", "measure", "pick", "place", "anneal", "move", "shutter", "mount", "acquire"}
"""Methods that take instrument time: each instrument runs them one at a time on its own worker."""
QUERIES = {"inputs", "occupancy", "holding", "beam", "readback", "stop", "ping"}
"""Methods answered at once, even while an action runs (``stop`` above all)."""
ALLOWED_METHODS = ACTIONS | QUERIES


class ServerConfig(BaseModel):
    """The YAML file of an instrument server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bind: str = Field(default="tcp://127.0.0.1:5555", pattern=r"^tcp://")
    secret_key: Path
    authorized_keys: Path
    instruments: dict[str, InstrumentSpec] = Field(min_length=1)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    seed: int = Field(default=0, ge=0)


class _KeyCheck:
    """ZAP credentials provider: known keys pass, every refusal is logged."""

    def __init__(self, allowed: set[bytes]) -> None:
        self.allowed = allowed

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key in self.allowed
        if not ok:
            log.warning("refused client with unknown CurveZMQ key %s", key.decode(errors="replace"))
        return ok


class InstrumentServer:
    """Serves the drivers of ``config`` until :meth:`stop` (or Ctrl-C)."""

    def __init__(self, config: ServerConfig, base: Path | None = None) -> None:
        base = base or Path.cwd()
        self.config = config
        self.public, secret = keys.load_pair(base / config.secret_key)
        allowed = keys.authorized_keys(base / config.authorized_keys)
        self.context = DriverContext(seed=config.seed, simulation=config.simulation.resolved(base).model_dump())
        self.drivers = {name: build_driver(name, spec, self.context) for name, spec in config.instruments.items()}
        self.ctx = zmq.Context()
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve_callback(domain="*", credentials_provider=_KeyCheck(allowed))
        self.socket = self.ctx.socket(zmq.ROUTER)
        self.socket.curve_server = True
        self.socket.curve_publickey = self.public
        self.socket.curve_secretkey = secret
        self.socket.linger = 0
        try:
            self.socket.bind(config.bind)
        except zmq.ZMQError as exc:
            self.close()
            raise LabosError(f"cannot bind {config.bind}: {exc}") from None
        self._stop = threading.Event()
        self._workers = {
            name: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"serve-{name}") for name in self.drivers
        }
        self._replies: queue.SimpleQueue[tuple[list[bytes], dict[str, Any]]] = queue.SimpleQueue()

    def handle(self, request: Any) -> dict[str, Any]:
        """Execute one request; every failure becomes an error reply."""
        try:
            name, method, args = request["instrument"], request["method"], list(request.get("args", []))
        except (TypeError, KeyError):
            return _error("BadRequest", "a request needs 'instrument', 'method' and 'args'")
        if method == "ping":
            return {"ok": True, "result": sorted(self.drivers)}
        driver = self.drivers.get(name)
        if driver is None:
            return _error("BadRequest", f"no instrument {name!r} here; serving: {', '.join(sorted(self.drivers))}")
        if method not in ALLOWED_METHODS or not hasattr(driver, method):
            return _error("BadRequest", f"instrument {name!r} has no method {method!r}")
        try:
            return {"ok": True, "result": getattr(driver, method)(*args)}
        except DeviceFault as exc:
            return _error("DeviceFault", str(exc), transient=exc.transient)
        except Exception as exc:
            log.exception("instrument %s: %s failed", name, method)
            return _error(type(exc).__name__, f"{name}: {exc}")

    def serve_forever(self) -> None:
        """Answer requests until :meth:`stop` is called."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        log.info("serving %s on %s", ", ".join(sorted(self.drivers)), self.config.bind)
        while not self._stop.is_set():
            while not self._replies.empty():  # actions finished on the workers
                envelope, reply = self._replies.get()
                self.socket.send_multipart([*envelope, wire.dumps(reply)])
            if not dict(poller.poll(10)):
                continue
            frames = self.socket.recv_multipart()
            envelope, raw = frames[:-1], frames[-1]
            try:
                request = wire.loads(raw)
            except ValueError:
                self.socket.send_multipart([*envelope, wire.dumps(_error("BadRequest", "request is not valid JSON"))])
                continue
            method = request.get("method") if isinstance(request, dict) else None
            worker = self._workers.get(str(request.get("instrument"))) if isinstance(request, dict) else None
            if method in ACTIONS and worker is not None:
                worker.submit(self._act, envelope, request)
            else:
                self.socket.send_multipart([*envelope, wire.dumps(self.handle(request))])

    def _act(self, envelope: list[bytes], request: dict[str, Any]) -> None:
        """Run an action on its instrument's worker; the serving thread sends the reply."""
        self._replies.put((envelope, self.handle(request)))

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return."""
        self._stop.set()

    def close(self) -> None:
        """Release sockets, the authenticator and the drivers."""
        for name, driver in getattr(self, "drivers", {}).items():
            if name in getattr(self, "_workers", {}):
                driver.stop()  # an action still running ends in its safe state
                self._workers[name].shutdown(wait=True, cancel_futures=True)
        self.socket.close(linger=0)
        self.auth.stop()
        for driver in getattr(self, "drivers", {}).values():
            driver.close()
        self.context.close()
        self.ctx.term()


def _error(kind: str, message: str, transient: bool = False) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message, "transient": transient}}
