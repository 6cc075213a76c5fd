"""Canonical byte framing of observations for the ``"bytes"`` hash mode, and its inverse for validators.

:func:`feed` writes a value into a hash object (anything with ``update``) without building one big ``bytes``:

- a numeric numpy array (dtype kind ``b``, ``i``, ``u`` of at most 8 bytes, or ``f`` of 2, 4 or 8 bytes) contributes
  ``b"A"``, its dtype descriptor in little-endian order (``"|u1"``, ``"<f4"``, ...; one length byte, then ASCII),
  its dimension count (``u8``) and each dimension (``u64`` big-endian), then its elements as C-contiguous
  little-endian bytes. Memory layout (Fortran order, strides, byte order) therefore does not change the hash;
  dtype and shape do. Every NaN is hashed as the standard quiet NaN (exports write any NaN as ``"NaN"``);
- a value that holds no such array anywhere (scalars, strings, numpy scalars, plain lists of numbers, other arrays)
  contributes ``b"J"``, the length (``u32`` big-endian) and the bytes of its canonical JSON
  (:func:`pyodide_runtime.canonical.canonical_bytes`);
- a mapping that holds one contributes ``b"D"``, its size (``u32``), then for each key in sorted order (keys as
  ``str``) the key's UTF-8 length (``u32``) and bytes followed by the value; a list or tuple contributes ``b"L"``,
  its length (``u32``) and its items.

:func:`layout` describes where the arrays are (``None`` when there are none): ``["ndarray", descriptor, shape]``,
``["dict", {key: layout}]`` (keys with a ``None`` layout left out) or ``["list", [layout, ...]]``. Exports record
it, and :func:`rebuild` turns an exported (canonical JSON) value and its layout back into the same arrays, so a
validator feeds the same bytes. Canonical JSON holds every element of these dtypes exactly, so the rebuilt arrays
are bit-identical (NaN payloads aside, which is why NaNs are normalised).

Pure standard library at import; numpy is used only for values that are numpy arrays.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from typing import Any

from pyodide_runtime.canonical import canonical_bytes

__all__ = ["feed", "layout", "rebuild", "is_raw_array"]

_U32 = struct.Struct("!I").pack
_FLOAT_SIZES = (2, 4, 8)


def _numpy() -> Any:
    return sys.modules.get("numpy")


def is_raw_array(value: Any) -> bool:
    """Whether ``value`` is a numpy array hashed by its bytes (see the module docstring)."""
    np = _numpy()
    if np is None or not isinstance(value, np.ndarray):
        return False
    dt = value.dtype
    kind = dt.kind
    if kind in "biu":
        return dt.itemsize <= 8
    return kind == "f" and dt.itemsize in _FLOAT_SIZES


def _holds_array(value: Any) -> bool:
    if is_raw_array(value):
        return True
    if isinstance(value, Mapping):
        return any(_holds_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_array(v) for v in value)
    return False


def _array_parts(arr: Any) -> tuple[bytes, Any]:
    np = _numpy()
    le = arr.dtype.newbyteorder("<")
    desc = le.str.encode("ascii")
    header = b"A" + bytes((len(desc),)) + desc + bytes((arr.ndim,)) + b"".join(
        d.to_bytes(8, "big") for d in arr.shape)
    if arr.dtype != le:
        arr = arr.astype(le)
    if le.kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            arr = np.array(arr, dtype=le, order="C")
            arr[nan] = np.nan
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return header, arr


def feed(h: Any, value: Any) -> None:
    """Write the canonical framing of ``value`` into the hash object ``h`` (see the module docstring)."""
    if is_raw_array(value):
        header, arr = _array_parts(value)
        h.update(header)
        if arr.size:
            h.update(arr.reshape(-1).view("u1"))
        return
    if isinstance(value, Mapping) and _holds_array(value):
        items = sorted((str(k), v) for k, v in value.items())
        h.update(b"D" + _U32(len(items)))
        for key, v in items:
            raw = key.encode("utf-8")
            h.update(_U32(len(raw)) + raw)
            feed(h, v)
        return
    if isinstance(value, (list, tuple)) and _holds_array(value):
        h.update(b"L" + _U32(len(value)))
        for v in value:
            feed(h, v)
        return
    raw = canonical_bytes(value)
    h.update(b"J" + _U32(len(raw)))
    h.update(raw)


def layout(value: Any) -> Any:
    """Where the byte-hashed arrays of ``value`` are, with their dtype and shape (``None``: nowhere)."""
    if is_raw_array(value):
        return ["ndarray", value.dtype.newbyteorder("<").str, list(value.shape)]
    if isinstance(value, Mapping):
        inner = {str(k): layout(v) for k, v in value.items()}
        inner = {k: v for k, v in inner.items() if v is not None}
        return ["dict", inner] if inner else None
    if isinstance(value, (list, tuple)):
        items = [layout(v) for v in value]
        return ["list", items] if any(v is not None for v in items) else None
    return None


_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, str):
        if value not in _NON_FINITE:
            raise ValueError(f"{value!r} is not a number")
        return _NON_FINITE[value]
    return value


def rebuild(value: Any, shape: Any) -> Any:
    """The value ``feed`` saw, from its exported canonical JSON ``value`` and its :func:`layout` ``shape``.

    Raises ``ValueError`` when the value does not fit the layout (it was changed, or the layout is not its own).
    """
    if shape is None:
        return value
    try:
        kind, spec, *rest = shape
    except (TypeError, ValueError):
        raise ValueError(f"not an observation layout: {shape!r}") from None
    if kind == "ndarray":
        import numpy as np

        dims = tuple(int(d) for d in rest[0])
        dt = np.dtype(spec)
        data = _floats(value) if dt.kind == "f" else value
        if dt.kind in "iu" and _has_float(data):
            raise ValueError(f"a {spec} array holds a non-integer")
        try:
            arr = np.array(data, dtype=dt)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"cannot read a {spec} array: {exc}") from None
        if arr.shape != dims:
            if arr.size != 0 or int(np.prod(dims)) != 0:
                raise ValueError(f"array of shape {list(arr.shape)}, the layout says {list(dims)}")
            arr = arr.reshape(dims)
        if dt.kind in "iub" and not _same(arr.tolist(), value):
            raise ValueError(f"values do not fit a {spec} array")
        if dt.kind == "f" and not np.array_equal(arr.astype(np.float64), np.array(data, dtype=np.float64).reshape(
                arr.shape), equal_nan=True):
            raise ValueError(f"values are not exactly representable in a {spec} array")
        return arr
    if kind == "dict":
        if not isinstance(value, dict):
            raise ValueError("a mapping was expected")
        missing = set(spec) - set(value)
        if missing:
            raise ValueError(f"keys {sorted(missing)} are missing")
        return {k: rebuild(v, spec.get(k)) for k, v in value.items()}
    if kind == "list":
        if not isinstance(value, list) or len(value) != len(spec):
            raise ValueError(f"a list of {len(spec)} items was expected")
        return [rebuild(v, s) for v, s in zip(value, spec)]
    raise ValueError(f"not an observation layout: {shape!r}")


def _has_float(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return isinstance(value, (float, str))


def _same(a: Any, b: Any) -> bool:
    # bool vs int matter: JSON ``true`` in an int array (or ``1`` in a bool array) is not what the env returned
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
