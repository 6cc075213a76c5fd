"""ONNX policies as players: a model plays an agent's seat, deciding on confirmed observations.

Everything here imports with numpy alone (it runs in the page). :func:`describe_model`, :func:`resolve_policy`,
:class:`OnnxRuntimeModel` and :func:`recompute_decisions` are for CPython and import ``onnx`` / ``onnxruntime``
when called (``pip install 'pyodide-runtime[ai]'``).

Typical use::

    specs = policies_from_study_file("study.toml")
    resolved = resolve_policy(specs["cook_1"], seat=1, action_count=6, sample_observation=obs)
    runner = PolicyRunner(resolved, seed=1)
    runner.reset(episode)
    if runner.due(frame_in_episode):
        feeds = runner.request(episode, frame, frame_in_episode, obs)
        if feeds is not None:
            runner.deliver(model.run(feeds), inference_ms)
    action = runner.action
"""

from pyodide_runtime.policies.choice import argmax_action, sample_action, softmax
from pyodide_runtime.policies.model import ModelInfo, TensorInfo, describe_model
from pyodide_runtime.policies.observation import map_observation, observation_features
from pyodide_runtime.policies.onnx_cpython import OnnxRuntimeModel
from pyodide_runtime.policies.recompute import recompute_decisions
from pyodide_runtime.policies.resolve import resolve_policy
from pyodide_runtime.policies.resolved import ResolvedPolicy
from pyodide_runtime.policies.runner import PolicyRunner, policy_rng
from pyodide_runtime.policies.spec import PolicyError, PolicySpec
from pyodide_runtime.policies.study import policies_from_study_file
from pyodide_runtime.policies.tensors import from_tensor, to_tensor

__all__ = [
    "PolicyError", "PolicySpec", "ModelInfo", "TensorInfo", "describe_model", "ResolvedPolicy", "resolve_policy",
    "map_observation", "observation_features", "PolicyRunner", "policy_rng", "OnnxRuntimeModel",
    "recompute_decisions", "policies_from_study_file", "argmax_action", "sample_action", "softmax", "to_tensor",
    "from_tensor",
]
