"""Canonical encoding of per-frame data: the one byte representation both peers must agree on.

Pickled bytes are not canonical (dict order, shared references), so hashes and exports use this encoding:

- JSON with sorted keys and no whitespace; mapping keys become strings;
- floats in Python's shortest round-trip ``repr`` (``float(text) == value`` exactly); ``NaN``, ``Infinity`` and
  ``-Infinity`` become those strings; ``-0.0`` stays ``-0.0``;
- numpy arrays become nested lists, numpy scalars their Python value; tuples become lists; sets become sorted
  lists; bytes become ``{"__bytes__": "<hex>"}``.

Anything else is refused with a :class:`TypeError` that names the offending type, never silently ``str()``-ed.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["to_canonical", "canonical_json", "canonical_bytes", "digest"]

_FLOAT_SPECIALS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float(value: float) -> float | str:
    if value != value:
        return "NaN"
    return _FLOAT_SPECIALS.get(value, value)


def to_canonical(value: Any) -> Any:
    """Convert ``value`` into plain JSON-able Python data, following the rules in the module docstring."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _float(value)
    if kind is dict:
        return {str(k): to_canonical(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [to_canonical(v) for v in value]
    return _to_canonical_slow(value)


def _to_canonical_slow(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": bytes(value).hex()}
    if isinstance(value, (set, frozenset)):
        items = [to_canonical(v) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if hasattr(value, "items"):
        return {str(k): to_canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_canonical(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, without importing numpy
    if tolist is not None and hasattr(value, "dtype"):
        return to_canonical(tolist())
    raise TypeError(
        f"cannot encode a value of type {type(value).__module__}.{type(value).__qualname__} canonically; "
        "return plain numbers, strings, lists, dicts or numpy arrays from the env"
    )


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``."""
    return json.dumps(to_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def digest(value: Any, size: int = 16) -> str:
    """A hex sha256 digest (``size`` bytes) of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()[: 2 * size]
