"""Small ONNX policies built with the ``onnx`` package alone (no PyTorch): for tests, benchmarks and trying a study's
``[policies]`` before a trained model exists.

:func:`mlp_policy` writes a multilayer perceptron ``obs [1, n_in] -> logits [1, n_out]`` with seeded random
weights (Gemm and Relu); its argmax depends on the observation, so a policy seat built on it moves around.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["mlp_policy"]


def mlp_policy(path: str | Path, n_in: int, n_out: int, hidden: Sequence[int] = (16,), seed: int = 0,
               input_name: str = "obs", output_name: str = "logits") -> Path:
    """Write an MLP policy to ``path`` (opset 17) and return the path. Needs the ``onnx`` package."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [int(n_in), *(int(h) for h in hidden), int(n_out)]
    nodes, weights, x = [], [], input_name
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        bias = rng.normal(scale=0.1, size=b).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        last = i == len(sizes) - 2
        y = output_name if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y]))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"r{i}"]))
            y = f"r{i}"
        x = y
    graph = helper.make_graph(
        nodes, "mlp_policy", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, sizes[-1]])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path
