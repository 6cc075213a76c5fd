"""Tiny ONNX models built with onnx.helper for the policy tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64,
          "int32": TensorProto.INT32}


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def linear(path: Path, weights: np.ndarray, *, input_name: str = "obs", output_name: str = "logits",
           input_dims: list | None = None, input_type: str = "float32", output_type: str = "float32") -> Path:
    """logits = Cast(obs) @ weights: input [1, n] (or ``input_dims``), output [1, k]."""
    n, k = weights.shape
    dims = input_dims if input_dims is not None else [1, n]
    nodes, inputs = [], [helper.make_tensor_value_info(input_name, _TYPES[input_type], dims)]
    x = input_name
    if len(dims) != 2 or dims[0] not in (1, None):
        nodes.append(helper.make_node("Reshape", [x, "shape"], ["flat"]))
        x = "flat"
    if input_type != "float32":
        nodes.append(helper.make_node("Cast", [x], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes.append(helper.make_node("MatMul", [x, "W"], ["mm"]))
    nodes.append(helper.make_node("Cast", ["mm"], [output_name], to=_TYPES.get(output_type, TensorProto.FLOAT))
                 if output_type != "float32" else helper.make_node("Identity", ["mm"], [output_name]))
    inits = [numpy_helper.from_array(weights.astype(np.float32), "W"),
             numpy_helper.from_array(np.asarray([1, n], dtype=np.int64), "shape")]
    out_dims = [1, k]
    graph = helper.make_graph(nodes, "linear", inputs,
                              [helper.make_tensor_value_info(output_name, _TYPES.get(output_type, TensorProto.FLOAT),
                                                             out_dims)], inits)
    return save(_model(graph), path)


def recurrent(path: Path, weights: np.ndarray) -> Path:
    """h_out = h_in + obs; logits = h_out @ weights. Inputs obs [1, n] and h_in [1, n]; outputs logits, h_out."""
    n, k = weights.shape
    nodes = [helper.make_node("Add", ["h_in", "obs"], ["h_out"]),
             helper.make_node("MatMul", ["h_out", "W"], ["logits"])]
    graph = helper.make_graph(
        nodes, "recurrent",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n]),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, k]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(weights.astype(np.float32), "W")])
    return save(_model(graph), path)
