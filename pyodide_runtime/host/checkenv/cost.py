"""Snapshot and pickle size and cost: a rollback of d frames restores one snapshot and takes d new ones."""

from __future__ import annotations

import pickle
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from pyodide_runtime.host.checkenv.report import PASS, WARN, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["measure_cost", "check_cost", "WARN_ROUND_TRIP_US", "WARN_SNAPSHOT_BYTES"]

#: Warn above this snapshot capture + restore median in CPython. Pyodide is about 3x slower, so this is about
#: 3 ms per resimulated frame in the browser, a tenth of a 30 fps frame budget.
WARN_ROUND_TRIP_US = 1000.0
#: Warn above this snapshot size (pickled): the session keeps one snapshot per frame in the prediction window.
WARN_SNAPSHOT_BYTES = 256 * 1024


def _median_us(call: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def _step_median_us(game: Any, rng: random.Random, counts: list[int], seed: int, repeats: int) -> float:
    """Median of single steps with random inputs (the resets an episode end needs are not timed)."""
    samples = []
    for _ in range(repeats):
        inputs = [rng.randrange(c) for c in counts]
        start = time.perf_counter()
        result = game.step(inputs)
        samples.append((time.perf_counter() - start) * 1e6)
        if result.episode_over:
            game.reset(seed)
    return statistics.median(samples)


def measure_cost(game: Any, seed: int, warmup: int = 30, repeats: int = 101) -> dict[str, Any]:
    """Sizes in bytes and medians in µs for one step, snapshot capture and restore, and pickling the whole env."""
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    game.reset(seed)
    for _ in range(warmup):
        if game.step([rng.randrange(c) for c in counts]).episode_over:
            game.reset(seed)
    state = game.get_state()
    out: dict[str, Any] = {
        "method": game.snapshot_method,
        "step_us": _step_median_us(game, rng, counts, seed, repeats),
        "capture_us": _median_us(game.get_state, repeats),
        "restore_us": _median_us(lambda: game.set_state(state), repeats),
    }
    try:
        out["snapshot_bytes"] = len(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:  # an explicit state need not be picklable; the size is then unknown
        out["snapshot_bytes"] = None
        out["snapshot_pickle_error"] = f"{type(exc).__name__}: {exc}"
    env = getattr(game, "env", None)
    try:
        blob = pickle.dumps(env, protocol=pickle.HIGHEST_PROTOCOL)
        out["env_pickle_bytes"] = len(blob)
        out["env_pickle_us"] = _median_us(lambda: pickle.loads(pickle.dumps(env, protocol=pickle.HIGHEST_PROTOCOL)),
                                          max(11, repeats // 4))
    except Exception as exc:
        out["env_pickle_bytes"] = None
        out["env_pickle_error"] = f"{type(exc).__name__}: {exc}"
    return out


def check_cost(target: EnvTarget, game: Any, seed: int) -> CheckResult:
    """Warns (never fails) when snapshots are slow or large; the figures are in the message and details."""
    cost = measure_cost(game, seed)
    round_trip = cost["capture_us"] + cost["restore_us"]
    size = cost["snapshot_bytes"]
    pickled = (f"; pickle(env) {cost['env_pickle_bytes']} B, {cost['env_pickle_us']:.0f} µs round trip"
               if cost.get("env_pickle_bytes") is not None else "; env not picklable")
    text = (f"{cost['method']} snapshot {size if size is not None else '?'} B, capture {cost['capture_us']:.1f} µs, "
            f"restore {cost['restore_us']:.1f} µs (medians){pickled}")
    if round_trip > WARN_ROUND_TRIP_US or (size or 0) > WARN_SNAPSHOT_BYTES:
        return CheckResult("cost", WARN, f"slow or large snapshots: {text}",
                           fix="implement get_state()/set_state() returning only what step() reads, as tuples and "
                           "small arrays (Pyodide is about 3x slower than these CPython figures)", details=cost)
    return CheckResult("cost", PASS, text, details=cost)
