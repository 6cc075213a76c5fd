"""Re-run a policy on recorded observations and compare with the recorded decisions (CPython)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pyodide_runtime.policies.resolved import ResolvedPolicy
from pyodide_runtime.policies.runner import PolicyRunner

__all__ = ["recompute_decisions", "Model"]


class Model(Protocol):
    def run(self, feeds: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...


def recompute_decisions(resolved: ResolvedPolicy, model: Path | str | Model,
                        observations_by_frame: Mapping[Any, Any], decisions: Sequence[Mapping[str, Any]],
                        seed: int) -> list[dict[str, Any]]:
    """Replay ``decisions`` in order through a fresh :class:`PolicyRunner` and return the mismatches.

    ``model`` is a model file (run with onnxruntime) or an object with ``run(feeds)``. ``observations_by_frame``
    maps a decision's ``(episode, frame)``, or its ``frame`` alone, to the observation it was taken on. Each
    mismatch is ``{"index", "episode", "frame", "recorded", "recomputed"}``, or has ``"error"`` instead of
    ``"recomputed"`` when the observation is missing. Recurrent state and the sampling generator follow the
    replay, so every decision of an episode must be given, in order.
    """
    if isinstance(model, (str, Path)):
        from pyodide_runtime.policies.onnx_cpython import OnnxRuntimeModel

        model = OnnxRuntimeModel(model)
    runner = PolicyRunner(resolved, seed)
    episode: int | None = None
    mismatches: list[dict[str, Any]] = []
    for index, decision in enumerate(decisions):
        ep, frame = int(decision["episode"]), int(decision["frame"])
        if ep != episode:
            runner.reset(ep)
            episode = ep
        key = (ep, frame) if (ep, frame) in observations_by_frame else frame
        base = {"index": index, "episode": ep, "frame": frame, "recorded": decision["action"]}
        if key not in observations_by_frame:
            mismatches.append({**base, "error": "no recorded observation"})
            continue
        feeds = runner.request(ep, frame, int(decision["frame_in_episode"]), observations_by_frame[key])
        assert feeds is not None  # nothing is in flight: each request is delivered at once
        action = runner.deliver(model.run(feeds))
        if action != decision["action"]:
            mismatches.append({**base, "recomputed": action})
    return mismatches
