"""Run a policy model in CPython with ``onnxruntime`` (CPU), in the tensor wire format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyodide_runtime.policies.spec import PolicyError
from pyodide_runtime.policies.tensors import Tensor, from_tensor, to_tensor

__all__ = ["OnnxRuntimeModel"]


class OnnxRuntimeModel:
    """An ``onnxruntime.InferenceSession`` on one thread, fed and read as wire tensors."""

    def __init__(self, path: Path | str) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError("running ONNX models needs onnxruntime: pip install 'pyodide-runtime[ai]'") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise PolicyError(f"onnxruntime cannot load model {self.path}: {str(exc).strip()[:300]}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Sequence[Mapping[str, Any]]) -> list[Tensor]:
        """Run the model on ``feeds``; every output as a wire tensor, in the model's output order."""
        arrays = {str(t["name"]): from_tensor(t) for t in feeds}
        try:
            values = self.session.run(self.output_names, arrays)
        except Exception as exc:
            raise PolicyError(f"onnxruntime failed on model {self.path.name}: {str(exc).strip()[:300]}") from None
        out = []
        for name, value in zip(self.output_names, values):
            dtype = "bool" if value.dtype.kind == "b" else value.dtype.name
            out.append(to_tensor(name, value, dtype))
        return out
