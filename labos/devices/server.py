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
``{"ok": false, "error": {"type", "message", "transient"}}`` (:mod:`labos.devices.wire`).
Actions (an anneal, a transfer) run on one worker thread per instrument; queries and
``stop`` are answered at once by the serving thread, so a client can stop an anneal in
progress. An action's request carries an ``id``: while the action is queued or runs,
``pending(id)`` answers true, so a client waiting for a long action can tell a server
that died or restarted (and forgot it) from one still at work. Only clients whose
public key is in ``authorized_keys`` get through the CurveZMQ handshake; every refusal
is logged with its reason. The server checks every request against a schema and every
action's values against the driver's declared limits before it calls the driver: it
trusts no client to have checked them.
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
from zmq.utils.monitor import recv_monitor_message

from labos.core.campaign import InstrumentSpec, SafePath, SimulationSpec
from labos.core.errors import DeviceFault, LabosError, OutOfBoundsError, shown
from labos.devices import keys, wire
from labos.devices.build import build_driver
from labos.devices.drivers import DriverContext, action_inputs, check_values

log = logging.getLogger("labos.server")

ACTIONS = {"synthesize", "load", "measure", "pick", "place", "anneal", "move", "shutter", "mount", "acquire"}
"""Methods that take instrument time: each instrument runs them one at a time on its own worker."""
QUERIES = {
    "inputs",
    "occupancy",
    "holding",
    "beam",
    "readback",
    "stop",
    "ping",
    "max_action_s",
    "reserve",
    "release",
    "pending",
}
"""Methods answered at once, even while an action runs (``stop`` above all)."""
ALLOWED_METHODS = ACTIONS | QUERIES

_HANDSHAKE_REASONS: dict[int, str] = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "the client does not speak CurveZMQ (no key, or another mechanism)",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "CurveZMQ cryptography failed (a wrong secret key for its public key, "
    "or a wrong server key)",
    zmq.PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE: "CurveZMQ key exchange failed",
    zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND: "not a ZMTP peer (unexpected command)",
    zmq.PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE: "not a ZMTP peer (invalid sequence)",
}


class ServerConfig(BaseModel):
    """The YAML file of an instrument server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bind: str = Field(default="tcp://127.0.0.1:5555", pattern=r"^tcp://")
    secret_key: SafePath
    authorized_keys: SafePath
    instruments: dict[str, InstrumentSpec] = Field(min_length=1)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    seed: int = Field(default=0, ge=0, lt=2**32)


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
    """Serves the drivers of ``config`` until :meth:`stop` (or Ctrl-C).

    Nothing a client sends can end the server: a message is checked (size, framing,
    JSON, the schema of its method's arguments) before it is dispatched, an action's
    values are checked against the driver's declared limits before the driver is
    called, and every failure becomes an error reply and a log line. Connections
    refused during the CurveZMQ handshake are logged with their reason (from the
    socket's monitor), unknown keys by the ZAP handler.
    """

    def __init__(self, config: ServerConfig, base: Path | None = None) -> None:
        base = base or Path.cwd()
        self.config = config
        self.public, secret = keys.load_pair(base / config.secret_key)
        allowed = keys.authorized_keys(base / config.authorized_keys)
        self.context = DriverContext(seed=config.seed, simulation=config.simulation.resolved(base).model_dump())
        self.drivers = {name: build_driver(name, spec, self.context) for name, spec in config.instruments.items()}
        self.inputs = {name: list(driver.inputs()) for name, driver in self.drivers.items()}
        self.ctx = zmq.Context()
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve_callback(domain="*", credentials_provider=_KeyCheck(allowed))
        self.socket = self.ctx.socket(zmq.ROUTER)
        self.socket.curve_server = True
        self.socket.curve_publickey = self.public
        self.socket.curve_secretkey = secret
        self.socket.linger = 0
        self.socket.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES + 1024)  # a larger message drops the peer
        self.monitor = self.socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        )
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
        self._pending: set[str] = set()  # ids of the actions queued or running (see wire.Request.id)

    def handle(self, request: wire.Request, client: str = "?") -> dict[str, Any]:
        """Execute one checked request; every failure becomes an error reply."""
        name, method, args = request.instrument, request.method, request.args
        if method == "ping":
            return {"ok": True, "result": sorted(self.drivers)}
        if method == "pending":  # is this action queued or running here? (a restarted server knows none)
            return {"ok": True, "result": args[0] in self._pending}
        driver = self.drivers.get(name)
        if driver is None:
            return _error("BadRequest", f"no instrument {shown(name)} here; serving: {', '.join(sorted(self.drivers))}")
        if method not in ALLOWED_METHODS or not hasattr(driver, method):
            return _error("BadRequest", f"instrument {name!r} has no method {method!r}")
        try:
            check_values(name, self.inputs[name], action_inputs(method, args))
        except OutOfBoundsError as exc:  # the device checked already: a client that skipped it, or a bug
            log.warning("refused %s.%s from client %s: %s", name, method, client, exc)
            return _error("OutOfBoundsError", str(exc))
        try:
            return {"ok": True, "result": getattr(driver, method)(*args)}
        except DeviceFault as exc:
            return _error("DeviceFault", str(exc), transient=exc.transient)
        except OutOfBoundsError as exc:  # InterlockError among them
            return _error(type(exc).__name__, str(exc))
        except Exception as exc:
            log.exception("instrument %s: %s failed", name, method)
            return _error(type(exc).__name__, f"{name}: {exc}")

    def serve_forever(self) -> None:
        """Answer requests until :meth:`stop` is called."""
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        log.info("serving %s on %s", ", ".join(sorted(self.drivers)), self.config.bind)
        while not self._stop.is_set():
            while not self._replies.empty():  # actions finished on the workers
                envelope, reply = self._replies.get()
                self._send(envelope, reply)
            ready = dict(poller.poll(10))
            if self.monitor in ready:
                self._log_refusal()
            if self.socket in ready:
                frames = self.socket.recv_multipart(copy=False)
                try:
                    self._dispatch(frames)
                except Exception:  # never let one message end the server
                    log.exception("could not handle a request; serving on")

    def _dispatch(self, frames: list[zmq.Frame]) -> None:
        """Check one message's framing and body, then answer it here or on the instrument's worker."""
        client = _client(frames[-1])
        if len(frames) != 3 or frames[1].bytes != b"":  # a REQ client sends [identity, empty, body]
            log.warning("dropped a message of %d frames from client %s (expected one body frame)", len(frames), client)
            return
        envelope = [frames[0].bytes, b""]
        try:
            request = wire.parse_request(frames[2].bytes)
        except wire.BadRequest as exc:
            log.warning("bad request from client %s: %s", client, exc)
            self._send(envelope, _error("BadRequest", str(exc)))
            return
        worker = self._workers.get(request.instrument)
        if request.method in ACTIONS and worker is not None:
            if request.id is not None:
                self._pending.add(request.id)
            worker.submit(self._act, envelope, request, client)
        else:
            self._send(envelope, self.handle(request, client))

    def _act(self, envelope: list[bytes], request: wire.Request, client: str) -> None:
        """Run an action on its instrument's worker; the serving thread sends the reply."""
        try:
            reply = self.handle(request, client)
        finally:
            self._pending.discard(request.id or "")
        self._replies.put((envelope, reply))

    def _send(self, envelope: list[bytes], reply: dict[str, Any]) -> None:
        try:
            body = wire.dumps(reply)
        except (TypeError, ValueError) as exc:  # a driver returned what JSON cannot carry (NaN, say)
            log.error("cannot encode a reply: %s", exc)
            body = wire.dumps(_error("ServerError", f"the reply could not be encoded: {shown(exc, 200)}"))
        self.socket.send_multipart([*envelope, body])

    def _log_refusal(self) -> None:
        event = recv_monitor_message(self.monitor)
        kind = event["event"]
        if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            reason = f"authentication refused (ZAP status {event['value']}: its key is not authorized)"
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            code = int(event["value"])
            reason = _HANDSHAKE_REASONS.get(code, f"protocol error {code} (malformed handshake)")
        else:
            reason = "the handshake failed (a client without CurveZMQ, not a ZMTP peer, or a connection that broke off)"
        log.warning("refused a connection on %s: %s", event["endpoint"].decode(errors="replace"), reason)

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return."""
        self._stop.set()

    def close(self) -> None:
        """Release sockets, the authenticator and the drivers."""
        for name, driver in getattr(self, "drivers", {}).items():
            if name in getattr(self, "_workers", {}):
                driver.stop()  # an action still running ends in its safe state
                self._workers[name].shutdown(wait=True, cancel_futures=True)
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)
        self.auth.stop()
        for driver in getattr(self, "drivers", {}).values():
            driver.close()
        self.context.close()
        self.ctx.term()


def _client(frame: zmq.Frame) -> str:
    """The CurveZMQ public key of the client that sent ``frame`` (its ZAP user id)."""
    try:
        return str(frame.get("User-Id"))
    except (zmq.ZMQError, UnicodeDecodeError):
        return "?"


def _error(kind: str, message: str, transient: bool = False) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message, "transient": transient}}
