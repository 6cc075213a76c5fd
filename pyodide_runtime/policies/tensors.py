"""The tensor wire format shared with JavaScript: ``{"name", "dtype", "dims", "data"}`` with raw little-endian bytes."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyodide_runtime.policies.spec import DTYPES, PolicyError

__all__ = ["to_tensor", "from_tensor", "tensor_to_b64", "tensor_from_b64", "Tensor"]

Tensor = dict[str, Any]


def _wire_dtype(dtype: str) -> np.dtype:
    if dtype not in DTYPES:
        raise PolicyError(f"tensor dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return np.dtype(bool) if dtype == "bool" else np.dtype(dtype).newbyteorder("<")


def to_tensor(name: str, array: Any, dtype: str | None = None) -> Tensor:
    """``array`` as a wire tensor (cast to ``dtype``, default the array's own, which must be a wire dtype)."""
    arr = np.asarray(array)
    dtype = dtype or ("bool" if arr.dtype == np.bool_ else arr.dtype.name)
    data = np.ascontiguousarray(arr.astype(_wire_dtype(dtype), copy=False)).tobytes(order="C")
    return {"name": name, "dtype": dtype, "dims": [int(d) for d in arr.shape], "data": data}


def from_tensor(tensor: Mapping[str, Any]) -> np.ndarray:
    """The array a wire tensor holds (``data``: bytes, bytearray, memoryview, a Uint8Array from JavaScript, or a
    list of byte values)."""
    try:
        dtype, dims, data = tensor["dtype"], [int(d) for d in tensor["dims"]], tensor["data"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"malformed tensor {_short(tensor)}: needs name, dtype, dims and data ({exc})") from None
    wire = _wire_dtype(dtype)
    if hasattr(data, "to_bytes") and not isinstance(data, (bytes, bytearray, memoryview, int)):
        data = data.to_bytes()  # a JavaScript Uint8Array seen from Pyodide
    buffer = bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if len(buffer) != count * wire.itemsize:
        raise PolicyError(f"tensor {tensor.get('name')!r}: {len(buffer)} bytes do not hold {dims} {dtype} values")
    return np.frombuffer(buffer, dtype=wire).reshape(dims).astype(wire.newbyteorder("="), copy=True)


def tensor_to_b64(tensor: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-lines form: ``data`` replaced by base64 ``data_b64``."""
    out = {k: v for k, v in tensor.items() if k != "data"}
    out["data_b64"] = base64.b64encode(bytes(tensor["data"])).decode("ascii")
    return out


def tensor_from_b64(tensor: Mapping[str, Any]) -> Tensor:
    """Back from the JSON-lines form."""
    out = {k: v for k, v in tensor.items() if k != "data_b64"}
    out["data"] = base64.b64decode(tensor["data_b64"])
    return out


def by_name(tensors: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Index a tensor list by name."""
    return {str(t.get("name")): t for t in tensors}


def _short(value: Any) -> str:
    text = repr({k: v for k, v in value.items() if k != "data"}) if isinstance(value, Mapping) else repr(value)
    return text[:120]
