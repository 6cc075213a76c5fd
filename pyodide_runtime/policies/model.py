"""What an ONNX model takes and returns: names, element types and shapes (CPython, reads the file with ``onnx``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyodide_runtime.policies.spec import PolicyError

__all__ = ["TensorInfo", "ModelInfo", "describe_model", "model_digest"]


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output. ``dims`` entries are ``None`` when symbolic or unknown; ``dims`` is ``None``
    when the model declares no shape at all. ``dtype`` uses the wire names (``float32``, ``int64``, ...) or the
    ONNX name in lower case for other types (``float16``)."""

    name: str
    dtype: str
    dims: tuple[int | None, ...] | None

    def describe(self) -> str:
        dims = "?" if self.dims is None else "[" + ", ".join("?" if d is None else str(d) for d in self.dims) + "]"
        return f"{self.name} {self.dtype} {dims}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "dims": None if self.dims is None else list(self.dims)}


@dataclass(frozen=True)
class ModelInfo:
    """A model's graph inputs (initializers excluded) and outputs, its opset and size."""

    path: Path
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    opset: int | None
    ir_version: int
    sha256: str
    size: int

    def input(self, name: str) -> TensorInfo | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorInfo | None:
        return next((t for t in self.outputs if t.name == name), None)


def model_digest(path: Path | str) -> tuple[str, int]:
    """(sha256 hex, byte size) of a model file."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def describe_model(path: Path | str) -> ModelInfo:
    """Read ``path`` with ``onnx`` and list its inputs and outputs. Raises :class:`PolicyError` for a file that is
    missing or not a valid ONNX model, and ``ImportError`` (with the install command) without ``onnx``."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("reading ONNX models needs the onnx package: pip install 'pyodide-runtime[ai]'") from exc
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"model file {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf decode errors have no common base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PolicyError(f"model file {path} is not a valid ONNX model: {first[:300]}") from None
    external = sorted({entry.value for t in model.graph.initializer for entry in t.external_data
                       if entry.key == "location"})
    if external:
        # The page fetches one file; weights kept beside it (PyTorch's exporter does this by default) never arrive.
        raise PolicyError(f"model file {path} keeps its weights in a separate file ({', '.join(external)}); export "
                          "it as one file, e.g. torch.onnx.export(..., external_data=False), or "
                          "onnx.save(onnx.load(path), path, save_as_external_data=False)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf decode errors and checker errors have no common base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PolicyError(f"model file {path} is not a valid ONNX model: {first[:300]}") from None
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = tuple(_info(v, onnx) for v in graph.input if v.name not in initializers)
    outputs = tuple(_info(v, onnx) for v in graph.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return ModelInfo(path=path.resolve(), inputs=inputs, outputs=outputs, opset=opset,
                     ir_version=int(model.ir_version), sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _info(value: Any, onnx: Any) -> TensorInfo:
    tensor_type = value.type.tensor_type
    elem = tensor_type.elem_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem).name if elem else "unknown"
    except Exception:
        dtype = onnx.TensorProto.DataType.Name(elem).lower()
    if dtype == "bool_":
        dtype = "bool"
    dims: tuple[int | None, ...] | None = None
    if tensor_type.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return TensorInfo(value.name, dtype, dims)
