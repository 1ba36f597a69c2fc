"""The instrument-server wire format: JSON with tagged driver data types."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from labos.devices.drivers import AnnealReport, Diffractogram, InputSpec, Spectrum, SynthesisReport

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
    cls = _TYPES[kind]
    fields = {k: v for k, v in obj.items() if k != "__type__"}
    for k in list(fields):
        if k in _ARRAYS:
            fields[k] = np.asarray(fields[k], dtype=float)
        elif isinstance(fields[k], list) and k in ("choices", "log"):
            fields[k] = tuple(fields[k])
        else:
            fields[k] = _from_json(fields[k])
    return cls(**fields)


def dumps(obj: Any) -> bytes:
    """Encode a request or reply."""
    return json.dumps(_to_json(obj), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    """Decode a request or reply."""
    return _from_json(json.loads(data))
