"""JSON encoding for Bluesky documents and results (numpy values included)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot record a {type(obj).__name__} as JSON: {obj!r:.80}")


def dumps(obj: Any) -> str:
    """Serialise ``obj`` to compact JSON; numpy arrays become lists, NaN becomes null.

    Raises
    ------
    TypeError
        For a value JSON cannot hold (it is never silently turned into its ``str``).
    """
    return json.dumps(_clean(obj), default=_default, separators=(",", ":"), allow_nan=False)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f" and not np.all(np.isfinite(obj)):
        return [_clean(v) for v in obj.tolist()]
    return obj


def loads(text: str | None) -> Any:
    """Inverse of :func:`dumps` (``None`` stays ``None``)."""
    return None if text is None else json.loads(text)
