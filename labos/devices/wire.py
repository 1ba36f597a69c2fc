"""The instrument-server wire format: JSON with tagged driver data types.

A request is ``{"instrument", "method", "args"}`` in plain JSON; a reply ``{"ok": true,
"result"}`` (driver data types tagged with ``__type__``) or ``{"ok": false, "error":
{"type", "message", "transient"}}``. Requests come from the network, so the server
parses them with :func:`parse_request`: at most :data:`MAX_MESSAGE_BYTES`, strict JSON
(no NaN), no tagged types, and the arguments of each method checked by a schema
(pydantic, strict types) before anything is dispatched.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from labos.core.errors import LabosError, shown
from labos.devices.drivers import AnnealReport, Diffractogram, InputSpec, Spectrum, SynthesisReport

MAX_MESSAGE_BYTES = 1 << 20
"""The largest request an instrument server accepts (1 MiB; a request is a few hundred bytes)."""

Name = Annotated[str, Field(min_length=1, max_length=100)]
SampleId = Annotated[str, Field(min_length=1, max_length=200)]
Settings = Annotated[dict[Name, float | str], Field(max_length=100)]
"""A recipe or program: input name -> finite number or choice."""

_SIGNATURES: dict[str, Any] = {
    "synthesize": tuple[SampleId, Settings],
    "load": tuple[SampleId],
    "measure": tuple[float] | tuple[float, Name],
    "pick": tuple[Name],
    "place": tuple[Name],
    "reserve": tuple[Name, SampleId],
    "release": tuple[Name, SampleId],
    "anneal": tuple[SampleId, Settings],
    "move": tuple[Name, float],
    "shutter": tuple[StrictBool],
    "mount": tuple[SampleId],
    "acquire": tuple[float],
    "pending": tuple[Annotated[str, Field(min_length=1, max_length=64)]],
    **dict.fromkeys(("inputs", "occupancy", "holding", "beam", "readback", "stop", "ping", "max_action_s"), tuple[()]),
}
ARGUMENTS: dict[str, TypeAdapter[Any]] = {
    method: TypeAdapter(signature, config=ConfigDict(strict=True, allow_inf_nan=False))
    for method, signature in _SIGNATURES.items()
}
"""The schema of each method's positional arguments."""


class BadRequest(LabosError, ValueError):
    """A request that is not valid JSON, too large, or does not match the schema."""


class Request(BaseModel):
    """One request to an instrument server, parsed and checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    instrument: Name
    method: Literal[tuple(ARGUMENTS)]  # type: ignore[valid-type]
    args: tuple[Any, ...] = Field(default=(), max_length=4)
    id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """An action's request id: while it is queued or running, ``pending(id)`` answers true."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    loc = [p + 1 if isinstance(p, int) and i == 0 and prefix else p for i, p in enumerate(err["loc"])]
    where = prefix + ".".join(str(p) for p in loc) if loc else "request"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def parse_request(raw: bytes) -> Request:
    """Parse and check one request from the network.

    Raises
    ------
    BadRequest
        Saying what is wrong (size, JSON, the method, which argument).
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadRequest(f"request of {len(raw):,} bytes; at most {MAX_MESSAGE_BYTES:,}")
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest(f"not valid JSON: {shown(exc, 120)}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"a request is a JSON object, not {type(data).__name__}")
    data["args"] = tuple(data["args"]) if isinstance(data.get("args"), list) else data.get("args", ())
    try:
        request = Request.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_first(exc, "")) from None
    try:
        args = ARGUMENTS[request.method].validate_python(request.args)
    except ValidationError as exc:
        raise BadRequest(_first(exc, f"{request.method} argument ")) from None
    return request.model_copy(update={"args": tuple(args)})


_TYPES: dict[str, type] = {t.__name__: t for t in (InputSpec, SynthesisReport, Spectrum, AnnealReport, Diffractogram)}
_ARRAYS = {"wavelength_nm", "absorbance", "emission", "time_s", "temperature_c", "two_theta_deg", "counts"}


def _to_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"__type__": type(obj).__name__, **fields}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_json(v) for v in obj]
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("__type__")
    if kind is None:
        return {k: _from_json(v) for k, v in obj.items()}
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown type {shown(kind)}")
    fields = {k: v for k, v in obj.items() if k != "__type__"}
    for k in list(fields):
        if k in _ARRAYS:
            fields[k] = np.asarray(fields[k], dtype=float)
        elif isinstance(fields[k], list) and k in ("choices", "log"):
            fields[k] = tuple(fields[k])
        else:
            fields[k] = _from_json(fields[k])
    try:
        return cls(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a {kind} that does not fit its type: {shown(exc, 200)}") from None


def dumps(obj: Any) -> bytes:
    """Encode a request or reply."""
    return json.dumps(_to_json(obj), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    """Decode a reply (driver data types rebuilt).

    Raises
    ------
    ValueError
        If it is not JSON or a typed object does not fit its type.
    """
    try:
        return _from_json(json.loads(data, parse_constant=_no_constants))
    except RecursionError:
        raise ValueError("nested too deeply") from None
