"""The frame budget: how many frames a rollback may resimulate in one tick before the page misses its frame rate.

One tick of a running session simulates the new frame and, after a rollback of depth ``d``, restores one snapshot
and resimulates ``d`` frames; every simulated frame costs one step and one snapshot capture. At ``fps`` frames per
second a tick has ``1000 / fps`` ms, so the deepest rollback that fits is
``floor((frame_us - restore_us - per_frame_us) / per_frame_us)`` with ``per_frame_us = step_us + capture_us``.
The page's figures are Pyodide's, so only figures measured in Pyodide (``check-env --pyodide``) can pass this
check; CPython figures can only show that an env is too slow even natively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pyodide_runtime.host.checkenv.report import PASS, SKIP, WARN, CheckResult

__all__ = ["frame_budget", "check_frame_budget", "COMFORTABLE_DEPTH"]

#: Rollback depth a tick should absorb. Between browsers at 100–150 ms round trips, the rollbacks of a 30 fps
#: session are mostly 1–3 frames deep with the default input delay of 2 (docs/performance.md, heavy envs).
COMFORTABLE_DEPTH = 3

_ADVICE = ("make step() and get_state() cheaper (check the cost line), lower [session] fps, raise "
           "[session] input_delay, or let the input delay adapt to the round trip ([session] adaptive_delay; "
           "docs/study-config.md): fewer frames are predicted, so rollbacks are shallower")


def frame_budget(step_us: float, capture_us: float, restore_us: float, fps: int) -> dict[str, Any]:
    """The tick budget at ``fps`` and the deepest rollback that fits in it (negative: not even one frame fits)."""
    frame_us = 1e6 / fps
    per_frame_us = step_us + capture_us
    depth = math.floor((frame_us - restore_us - per_frame_us) / per_frame_us) if per_frame_us > 0 else 10**6
    return {"fps": fps, "frame_ms": round(frame_us / 1000, 2), "per_frame_us": round(per_frame_us, 1),
            "restore_us": round(restore_us, 1), "max_rollback_depth": depth,
            "frames_per_tick": math.floor(frame_us / per_frame_us) if per_frame_us > 0 else 10**6}


def check_frame_budget(cost: Mapping[str, Any] | None, pyodide: Mapping[str, Any] | None, fps: int,
                       window: int = 8) -> CheckResult:
    """Judge the budget from the Pyodide run's figures when there are any, else say what CPython shows.

    ``window`` is the session's prediction window (``max_prediction``): no rollback is deeper."""
    if pyodide is not None and "capture_us" in pyodide:
        where, step, capture, restore = ("Pyodide", pyodide["step_median_us"], pyodide["capture_us"],
                                         pyodide["restore_us"])
    elif cost is not None and "step_us" in cost:
        where, step, capture, restore = "CPython", cost["step_us"], cost["capture_us"], cost["restore_us"]
    else:
        return CheckResult("frame-budget", SKIP, "not run: no step and snapshot timings (see the cost check)")
    budget = frame_budget(step, capture, restore, fps)
    details = {**budget, "measured_in": where, "step_us": round(step, 1), "capture_us": round(capture, 1)}
    depth = budget["max_rollback_depth"]
    text = (f"in {where}, a frame costs {step / 1000:.2f} ms (step) + {capture / 1000:.2f} ms (snapshot); at {fps} fps "
            f"({budget['frame_ms']} ms per tick)")
    if depth < 0:
        return CheckResult("frame-budget", WARN, f"{text} not even one frame fits in a tick: the page cannot hold "
                           f"{fps} fps", fix=_ADVICE, details=details)
    if depth >= window:
        fits = f"{text} a tick fits the new frame plus a rollback of the whole prediction window ({window} frames)"
    else:
        fits = f"{text} a tick fits the new frame plus a rollback of {depth} frame{'s' if depth != 1 else ''}"
    if depth < COMFORTABLE_DEPTH:
        return CheckResult("frame-budget", WARN, f"{fits}; deeper rollbacks (common at 100 ms round trips and more) "
                           "overrun the tick and the frame rate drops", fix=_ADVICE, details=details)
    if where != "Pyodide":
        return CheckResult("frame-budget", SKIP, f"{fits}; the page runs in Pyodide, which is slower: add --pyodide "
                           "to judge the page's budget", details=details)
    return CheckResult("frame-budget", PASS, fits, details=details)
