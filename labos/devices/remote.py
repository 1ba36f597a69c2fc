"""Drivers that forward every call to an instrument server over CurveZMQ (driver ``zmq``).

Options of an instrument using ``driver: zmq``:

``endpoint``
    The server's address, e.g. ``tcp://127.0.0.1:5555``.
``server_key``
    The server's public key file (``server.key``).
``client_key``
    This client's secret key file (``client.key_secret``), whose public half the
    server must list among its authorized keys.
``instrument``
    The instrument's name on the server (defaults to the local name).
``timeout_s`` / ``action_timeout_s``
    How long to wait for a quick call (``inputs``) and for an action (``synthesize``,
    ``load``, ``measure``) before declaring the server gone. Defaults 10 s and 600 s.
``stop_grace_s``
    How long a timed-out action, once stopped, has to end (default 30 s).

While it waits for an action, the client asks the server every ``timeout_s`` whether
the action is still queued or running there (``pending``, by the request's id). A
server that no longer knows it (it was restarted) or that misses two of these checks
(it died, or the network did) ends the wait at once in
:class:`~labos.core.errors.InstrumentStateUnknown`, instead of after ``action_timeout_s``.

A quick call to a server that is down, hung or refuses the key surfaces as a transient
:class:`~labos.core.errors.DeviceFault` after the timeout, never as a hang. An action
whose reply is overdue is stopped on the server and waited for: it ends in
:class:`~labos.core.errors.ActionTimeout` (stopped, state known) or, when the server
cannot confirm that it ended, :class:`~labos.core.errors.InstrumentStateUnknown`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq

from labos.core.errors import (
    ActionTimeout,
    ConfigurationError,
    DeviceFault,
    InstrumentStateUnknown,
    InterlockError,
    OutOfBoundsError,
    shown,
)
from labos.core.space import ParamValue
from labos.devices import keys, wire
from labos.devices.drivers import AnnealReport, Diffractogram, DriverContext, InputSpec, Spectrum, SynthesisReport


class _NoReply(DeviceFault):
    """The server did not answer in time."""


class RemoteClient:
    """Request/reply to one instrument on a server, with a fresh socket after any timeout."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        opts = dict(options)
        try:
            self.endpoint = str(opts.pop("endpoint"))
            server_key = Path(opts.pop("server_key"))
            client_key = Path(opts.pop("client_key"))
        except KeyError as exc:
            raise ConfigurationError(f"instrument {name!r}: driver zmq needs option {exc.args[0]!r}") from None
        self.name = name
        self.remote = str(opts.pop("instrument", name))
        self.timeout_s = float(opts.pop("timeout_s", 10.0))
        self.action_timeout_s = float(opts.pop("action_timeout_s", 600.0))
        self.stop_grace_s = float(opts.pop("stop_grace_s", 30.0))
        if opts:
            raise ConfigurationError(
                f"instrument {name!r}: unknown option(s) for driver zmq: {', '.join(sorted(opts))}"
            )
        self.server_public = keys.load_public(server_key)
        self.public, self.secret = keys.load_pair(client_key)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.socket: zmq.Socket[bytes] | None = None
        self._lock = threading.Lock()

    def _connect(self) -> zmq.Socket[bytes]:
        s: zmq.Socket[bytes] = self.ctx.socket(zmq.REQ)
        s.curve_serverkey = self.server_public
        s.curve_publickey = self.public
        s.curve_secretkey = self.secret
        s.linger = 0
        s.connect(self.endpoint)
        return s

    def call(self, method: str, *args: Any, action: bool = False) -> Any:
        """Call ``method`` on the remote driver; errors come back as the driver raised them.

        Thread-safe: while another thread's call holds the main socket (an anneal in
        progress, say), the call goes over a socket of its own, so ``stop`` and queries
        are answered at once.
        """
        timeout = self.action_timeout_s if action else self.timeout_s
        if not self._lock.acquire(blocking=False):
            side = self._connect()
            try:
                return self._request(side, method, args, timeout)
            finally:
                side.close(linger=0)
        try:
            if self.socket is None:
                self.socket = self._connect()
            try:
                return self._request(self.socket, method, args, timeout, watch=action)
            except InstrumentStateUnknown:
                self._reset()  # the reply will never come
                raise
            except _NoReply:
                try:
                    if action:
                        self._end_late_action(self.socket, method)  # always raises
                except ActionTimeout:
                    raise  # the overdue reply was read: the socket is usable again
                except DeviceFault:
                    self._reset()
                    raise
                self._reset()
                raise
        finally:
            self._lock.release()

    def _reset(self) -> None:
        """A REQ socket is stuck after a lost reply: start afresh."""
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None

    def _end_late_action(self, sock: zmq.Socket[bytes], method: str) -> None:
        """An action's reply is overdue: stop it on the server and wait until it has ended.

        Nothing else may touch the sample while the instrument may still be acting on it
        (a robot reaching into a furnace that is still heating). So the server is asked to
        stop the instrument, and the action's own reply (stopped, or finished just then)
        is awaited for ``stop_grace_s``.

        Raises
        ------
        ActionTimeout
            The action ended (its state is known again); not transient.
        InstrumentStateUnknown
            The server did not confirm the stop, or the action did not end in time.
        """
        limit = f"action_timeout_s = {self.action_timeout_s:g} s"
        try:
            self.call("stop")  # over a socket of its own: this thread holds the main one
        except DeviceFault as exc:
            raise InstrumentStateUnknown(
                self.name,
                f"{method} gave no reply within {limit} and the stop request failed ({exc}); the instrument "
                "may still be acting on its sample: check it before anything touches it",
            ) from None
        if not sock.poll(int(self.stop_grace_s * 1000)):
            raise InstrumentStateUnknown(
                self.name,
                f"{method} gave no reply within {limit} and had not ended {self.stop_grace_s:g} s after the "
                "server stopped it: check the instrument before anything touches its sample",
            )
        try:
            reply = wire.loads(sock.recv())
            ended = "finished just then" if reply.get("ok") else shown(reply["error"]["message"], 300, quote=False)
        except (ValueError, KeyError, TypeError, AttributeError):
            ended = "ended"
        raise ActionTimeout(self.name, f"{method} ran past {limit}; stopped on the server ({ended})")

    def _request(
        self, sock: zmq.Socket[bytes], method: str, args: tuple[Any, ...], timeout: float, watch: bool = False
    ) -> Any:
        request: dict[str, Any] = {"instrument": self.remote, "method": method, "args": list(args)}
        if watch:
            request["id"] = uuid.uuid4().hex
        sock.send(wire.dumps(request))
        if not (self._watch(sock, method, request["id"], timeout) if watch else sock.poll(int(timeout * 1000))):
            raise _NoReply(
                self.name,
                f"no reply from {self.endpoint} within {timeout:g} s to {method!r} "
                "(server down, busy, or this client's key not authorized)",
                transient=True,
            )
        try:
            reply = wire.loads(sock.recv())
        except ValueError as exc:
            raise DeviceFault(self.name, f"a malformed reply from {self.endpoint} to {method!r}: {exc}") from None
        if not isinstance(reply, dict):
            raise DeviceFault(self.name, f"a malformed reply from {self.endpoint} to {method!r}")
        if reply.get("ok"):
            return reply.get("result")
        raw = reply.get("error")
        err: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kind, message = err.get("type"), shown(err.get("message"), 2000, quote=False)
        if kind == "DeviceFault":
            raise DeviceFault(self.name, f"(remote) {message}", transient=bool(err.get("transient")))
        if kind in ("InterlockError", "OutOfBoundsError"):  # refused before anything moved, there as here
            raise (InterlockError if kind == "InterlockError" else OutOfBoundsError)(f"(remote) {message}")
        raise DeviceFault(self.name, f"server error {shown(kind, quote=False)}: {message}")

    def _watch(self, sock: zmq.Socket[bytes], method: str, request_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` for an action's reply, checking every ``timeout_s`` that the server still runs it.

        Returns whether the reply came.

        Raises
        ------
        InstrumentStateUnknown
            The server no longer knows the action (restarted), or missed two checks in a row.
        """
        deadline = time.monotonic() + timeout
        missed = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if sock.poll(int(min(left, self.timeout_s) * 1000)):
                return True
            try:
                known = self.call("pending", request_id)  # over a socket of its own
            except DeviceFault as exc:
                if "server error BadRequest" in str(exc):  # a server from before pending: wait as before
                    return bool(sock.poll(int(max(deadline - time.monotonic(), 0.0) * 1000)))
                missed += 1
                if missed < 2:
                    continue
                raise InstrumentStateUnknown(
                    self.name,
                    f"the server at {self.endpoint} stopped answering while {method} ran ({exc}); the instrument "
                    "may still be acting on its sample: check it before anything touches it",
                ) from None
            missed = 0
            if known:
                continue
            if sock.poll(200):  # it ended just then: its reply is here
                return True
            raise InstrumentStateUnknown(
                self.name,
                f"the server at {self.endpoint} no longer knows the {method} it was running (it was restarted); "
                "the instrument may have stopped anywhere: check it before anything touches its sample",
            )

    def close(self) -> None:
        """Close the socket."""
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


class RemoteDriver:
    """Base of the per-kind clients: inputs and close."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def inputs(self) -> list[InputSpec]:
        """The remote instrument's inputs and limits."""
        result: list[InputSpec] = self.client.call("inputs")
        return result

    def stop(self) -> None:
        """Halt the remote instrument's running action (on a socket of its own)."""
        self.client.call("stop")

    def close(self) -> None:
        """Close the connection (the remote instrument stays up)."""
        self.client.close()


class RemoteSynthesizer(RemoteDriver):
    """:class:`~labos.devices.drivers.SynthesizerDriver` on an instrument server."""

    def synthesize(self, sample_id: str, recipe: Mapping[str, ParamValue]) -> SynthesisReport:
        """Make a sample remotely."""
        result: SynthesisReport = self.client.call("synthesize", sample_id, dict(recipe), action=True)
        return result


class RemoteSpectrometer(RemoteDriver):
    """:class:`~labos.devices.drivers.SpectrometerDriver` on an instrument server."""

    def load(self, sample_id: str) -> float:
        """Load a sample remotely."""
        return float(self.client.call("load", sample_id, action=True))

    def measure(self, integration_time_s: float, mode: str = "absorbance") -> Spectrum:
        """Measure remotely."""
        result: Spectrum = self.client.call("measure", integration_time_s, mode, action=True)
        return result


class RemoteRobot(RemoteDriver):
    """:class:`~labos.devices.drivers.RobotDriver` on an instrument server."""

    def occupancy(self) -> dict[str, str | None]:
        """The remote arm's slots and their samples."""
        result: dict[str, str | None] = self.client.call("occupancy")
        return result

    def holding(self) -> str | None:
        """The sample in the remote gripper."""
        result: str | None = self.client.call("holding")
        return result

    def reserve(self, slot: str, sample_id: str) -> str:
        """Claim a slot on the remote arm's side (atomic there)."""
        return str(self.client.call("reserve", slot, sample_id))

    def release(self, slot: str, sample_id: str) -> None:
        """Give up a claim on the remote side."""
        self.client.call("release", slot, sample_id)

    def pick(self, slot: str) -> float:
        """Pick remotely."""
        return float(self.client.call("pick", slot, action=True))

    def place(self, slot: str) -> float:
        """Place remotely."""
        return float(self.client.call("place", slot, action=True))


class RemoteFurnace(RemoteDriver):
    """:class:`~labos.devices.drivers.FurnaceDriver` on an instrument server."""

    def anneal(self, sample_id: str, program: Mapping[str, Any]) -> AnnealReport:
        """Anneal remotely."""
        result: AnnealReport = self.client.call("anneal", sample_id, dict(program), action=True)
        return result

    def readback(self) -> dict[str, Any]:
        """The remote controller's temperature and heater state."""
        result: dict[str, Any] = self.client.call("readback")
        return result


class RemoteBeamline(RemoteDriver):
    """:class:`~labos.devices.drivers.BeamlineDriver` on an instrument server."""

    def move(self, axis: str, value: float) -> float:
        """Move an axis remotely."""
        return float(self.client.call("move", axis, value, action=True))

    def shutter(self, open_: bool) -> str:
        """Open or close the remote shutter."""
        return str(self.client.call("shutter", open_, action=True))

    def beam(self) -> dict[str, Any]:
        """The remote beam's state."""
        result: dict[str, Any] = self.client.call("beam")
        return result

    def mount(self, sample_id: str) -> float:
        """Mount remotely."""
        return float(self.client.call("mount", sample_id, action=True))

    def acquire(self, exposure_s: float) -> Diffractogram:
        """Expose remotely."""
        result: Diffractogram = self.client.call("acquire", exposure_s, action=True)
        return result


_CLIENTS: dict[str, type[RemoteDriver]] = {
    "synthesizer": RemoteSynthesizer,
    "uvvis": RemoteSpectrometer,
    "robot": RemoteRobot,
    "furnace": RemoteFurnace,
    "xrd": RemoteBeamline,
}


def create_driver(kind: str, name: str, options: Mapping[str, Any], context: DriverContext) -> Any:
    """Entry point ``labos.drivers: zmq``."""
    if kind not in _CLIENTS:
        raise ConfigurationError(f"driver zmq has no client for kind {kind!r}")
    client = RemoteClient(name, options)
    context.identities[name] = f"zmq:{client.endpoint}#{client.remote}"
    return _CLIENTS[kind](client)
