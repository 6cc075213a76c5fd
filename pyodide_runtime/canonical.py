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
from collections.abc import Callable
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


# The reference encoder defines the format. For speed, values made only of exact dicts with ``str`` keys, lists,
# tuples, exact scalars and numeric numpy arrays (observations, the bulk of every export and hash) go through the
# C JSON encoder built once, which gives the same text; anything else, and non-finite floats, take the reference.
_reference_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), default=to_canonical
).encode


def _make_fast_encoder() -> Callable[[Any], str]:
    # The C encoder built once (JSONEncoder.encode rebuilds it on every call); checked against the reference.
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return _reference_encode
    try:
        c_encode = make(None, _default, basestring, None, ":", ",", True, False, False)
        probe = {"b": [1, 2.5, -0.0, "\u00e9\n", None, True], "a": {"z": 1e300, "y": []}}
        if "".join(c_encode(probe, 0)) != _reference_encode(probe):
            return _reference_encode
    except Exception:  # noqa: BLE001 - an interpreter whose C encoder differs: use the public API
        return _reference_encode
    return lambda value: "".join(c_encode(value, 0))


_LEAVES = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})
_ALLOWED = _LEAVES | _CONTAINERS
_STR = {str}
_NUMERIC_KINDS = frozenset("biuf")


def _numeric_array(value: Any) -> bool:
    """A numpy array or scalar of bools, ints or floats: ``tolist()`` gives exact Python values."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and getattr(dtype, "kind", None) in _NUMERIC_KINDS and hasattr(value, "tolist")


def _plain(value: Any) -> bool:
    """Whether the C encoder writes ``value`` exactly as the reference encoder does.

    True for values built of exact dicts with ``str`` keys, lists, tuples, exact scalars and numeric numpy
    arrays (non-finite floats make the C encoder raise, which sends them to the reference encoder). Subclasses
    (enums, ...) and other keys take the reference path, which may ``str()`` them.
    """
    kind = type(value)
    if kind is dict:
        if value and set(map(type, value)) != _STR:
            return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _LEAVES or _numeric_array(value)
    kinds = set(map(type, items))
    if kinds <= _LEAVES:
        return True
    if not kinds <= _ALLOWED and not all(_numeric_array(v) for v in items if type(v) not in _ALLOWED):
        return False
    for v in items:
        kind = type(v)
        if kind is list or kind is tuple:
            if set(map(type, v)) <= _LEAVES:  # the common innermost case, without a call
                continue
        elif kind is not dict:
            continue
        if not _plain(v):
            return False
    return True


def _default(value: Any) -> Any:
    # The C encoder calls this for types it does not know; _plain admitted only numeric numpy values.
    return value.tolist() if _numeric_array(value) else to_canonical(value)


_encode = _make_fast_encoder()



def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``."""
    if _plain(value):
        try:
            return _encode(value)
        except ValueError:  # a non-finite float: the reference path writes it as a string
            pass
    return json.dumps(to_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes."""
    return canonical_json(value).encode("utf-8")


def digest(value: Any, size: int = 16) -> str:
    """A hex sha256 digest (``size`` bytes) of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()[: 2 * size]


def json_file(value: Any) -> bytes:
    """A JSON file's bytes: canonical values, sorted keys, two-space indent, final newline."""
    return (json.dumps(to_canonical(value), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
            + "\n").encode("utf-8")
