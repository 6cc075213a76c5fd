"""Timeline-level breakdown of the engine's per-frame cost, against a bare ``get_state`` + ``step`` loop.

Runs unchanged in CPython and inside Pyodide. Each figure is the best of ``repeats`` runs, in microseconds per
frame:

- ``bare``: ``get_state()`` then ``step()`` every frame (the floor any rollback engine pays);
- ``bare_retain``: the same, keeping every step result (an export has to keep them too);
- ``engine``: the timeline with a remote input arriving ``lag`` frames late every frame (so every frame is
  predicted and snapshotted), promotion and the sampled hash chain included;
- ``engine_full_hash``: the same with ``frame_hash="full"``;
- ``resimulation``: the cost per frame of rolling back ``depth`` frames and resimulating them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import FrameLog
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import make_predictor
from pyodide_runtime.sync.timeline import Timeline

__all__ = ["measure_engine"]


def measure_engine(
    make_game: Callable[[], Game], frames: int = 2000, repeats: int = 5, lag: int = 3, depth: int = 8, seed: int = 1
) -> dict[str, Any]:
    """Per-frame costs (µs) and ratios to ``bare`` for a two-seat game whose episodes outlast ``frames``."""
    rng = random.Random(seed)
    probe = make_game()
    counts = [probe.input_count(s) for s in range(2)]
    inputs = [(rng.randrange(counts[0]), rng.randrange(counts[1])) for _ in range(frames)]
    clock = time.perf_counter

    def timeline(frame_hash: str = "sampled", window: int = 10) -> tuple[Timeline, InputQueues]:
        cfg = SessionConfig(max_prediction=window, input_delay=0, frame_hash=frame_hash)
        queues = InputQueues((0, 0), 0)
        stats = {"rollbacks": 0, "resimulated_frames": 0, "max_rollback_depth": 0}
        tl = Timeline(make_game(), cfg, queues, FrameLog(cfg.frame_hash, cfg.hash_interval),
                      make_predictor("repeat", (0, 0)), stats)
        tl.start(0.0)
        return tl, queues

    def bare(retain: bool) -> float:
        game = make_game()
        game.reset(seed)
        keep = []
        t = clock()
        for a in inputs:
            game.get_state()
            result = game.step(a)
            if retain:
                keep.append(result)
        return clock() - t

    def engine(frame_hash: str) -> float:
        tl, q = timeline(frame_hash)
        t = clock()
        for f, (a, _) in enumerate(inputs):
            q.append(0, a)
            if f >= lag:  # the remote input of frame f - lag arrives, as predicted
                last = q.last(1)
                q.append(1, 0 if last is None else last)
                tl.check_inputs(1, f - lag, f - lag + 1)
            tl.advance(0.0)
            tl.promote(0.0)
        if tl.finished or tl.log.confirmed_count != frames - lag:
            raise RuntimeError("the benchmark game ended an episode; give it longer episodes")
        return clock() - t

    def resimulation() -> float:
        tl, q = timeline(window=depth)
        spent = 0.0
        for _ in range(frames // depth):
            base = tl.frame
            for i in range(depth):
                q.append(0, inputs[base + i][0])
                tl.advance(0.0)
            for i in range(depth):
                q.append(1, (inputs[base + i][1] % (counts[1] - 1)) + 1)  # never 0
            tl.check_inputs(1, base, base + depth)
            t = clock()
            tl.apply_rollback(0.0)
            spent += clock() - t
            tl.promote(0.0)
        return spent * frames / (frames // depth * depth)

    runs: dict[str, Callable[[], float]] = {
        "bare": lambda: bare(False), "bare_retain": lambda: bare(True), "engine": lambda: engine("sampled"),
        "engine_full_hash": lambda: engine("full"), "resimulation": resimulation,
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            best[name] = min(best[name], run())
    us = {name: round(value / frames * 1e6, 2) for name, value in best.items()}
    return {"us_per_frame": us, "ratio_to_bare": {k: round(v / us["bare"], 2) for k, v in us.items()}}
