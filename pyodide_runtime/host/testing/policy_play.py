"""Play one page of a human-AI study without a browser: its bridge, scripted keys, and a stand-in model.

:func:`play_with_stand_in_model` drives the participant page's :class:`~pyodide_runtime.bridge.Bridge` (seat 0,
which runs the study's policy seats) on a fixed clock. Each inference request is answered on the next tick by a
stand-in for the model whose scores are exact integer arithmetic on the feeds' bytes, so CPython and Pyodide give
the same answers bit for bit. It exercises everything around the model that the page runs in Python: the
observation mapping (keys or hook), the runner, the hosted seat's session and the routing between the two seats.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

__all__ = ["play_with_stand_in_model", "stand_in_scores"]


def stand_in_scores(feeds: list[Mapping[str, Any]], actions: int) -> list[dict[str, Any]]:
    """One-hot scores (float32 ``[1, actions]``) at ``sum of the feeds' bytes mod actions``."""
    import numpy as np

    total = sum(sum(bytes(f["data"])) + 31 * i for i, f in enumerate(feeds))
    scores = np.zeros((1, actions), dtype=np.float32)
    scores[0, total % actions] = 1.0
    return [{"name": "logits", "dtype": "float32", "dims": [1, actions], "data": scores.tobytes()}]


def play_with_stand_in_model(study: Mapping[str, Any], *, frames_per_input: int = 7,
                             max_ms: float = 600_000.0) -> dict[str, Any]:
    """Play ``study`` (a ``/study.json`` description with ``pages`` 1 and resolved ``policies``) to its end.

    Returns the sha256 of each canonical table of the export (``frames.csv``, ``resets.csv``, ...), its
    ``confirmed_frames``, and each policy seat's ``decisions``
    (without their inference times) and ``applied`` log.
    """
    from pyodide_runtime.bridge import Bridge

    bridge = Bridge(json.dumps(dict(study)), 0, room="stand-in", participant="P")
    counts = {int(p["seat"]): int(p["action_count"]) for p in study.get("policies") or ()}
    now, tick, pending, bundle = 0.0, 0, [], None
    while bundle is None and now < max_ms:
        for request in pending:
            bridge.policy_result(request["seat"], request["id"], stand_in_scores(request["feeds"],
                                                                                counts[request["seat"]]), 0.0)
        key = (tick // frames_per_input) % bridge.session.input_counts[0]
        out = bridge.tick(now, key, [])
        pending, bundle = out["inference"], out["bundle"]
        tick += 1
        now += 1000.0 / bridge.config.fps
    if bundle is None:
        raise TimeoutError(f"the session did not end within {max_ms / 1000:.0f} s of play")
    with zipfile.ZipFile(io.BytesIO(bytes(bundle))) as z:
        manifest = json.loads(z.read("manifest.json"))
        metadata = json.loads(z.read("metadata.json"))
    seats = [{"seat": r["seat"], "applied": r["applied"], "failures": r["failures"],
              "decisions": [{k: d[k] for k in ("episode", "frame", "frame_in_episode", "action")}
                            for d in r["decisions"]]}
             for r in metadata["participant_local"]["extra"]["policies"]]
    # The canonical tables (metadata names the interpreter and the wheel, which differ between CPython and Pyodide).
    tables = {path: entry["sha256"] for path, entry in manifest["files"].items()
              if entry["canonical"] and path != "metadata.json"}
    return {"canonical_tables": tables,
            "confirmed_frames": metadata["canonical"]["confirmed_frames"],
            "outcome": metadata["participant_local"]["session_outcome"], "policies": seats}
