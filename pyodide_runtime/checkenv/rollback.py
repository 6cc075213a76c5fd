"""Rollback checks: snapshots restore faithfully, the sync test passes, and no state hides outside snapshots."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pyodide_runtime.checkenv.report import FAIL, PASS, CheckResult
from pyodide_runtime.checkenv.target import EnvTarget

__all__ = ["verified_game", "check_snapshot", "check_sync", "check_hidden_state"]

SNAPSHOT_FIX = (
    "implement get_state()/set_state() returning everything step() reads (positions, counters, "
    "self.np_random.bit_generator.state), or keep all state in plain attributes so the generic snapshot sees it"
)


def verified_game(target: EnvTarget) -> tuple[Any, str | None]:
    """The game as the runtime builds it (start-up verification on); on refusal, an unverified game and why."""
    from pyodide_runtime.snapshot import SnapshotError

    try:
        return target.load_game(verify=True), None
    except SnapshotError as exc:
        return target.load_game(verify=False), str(exc)


def check_snapshot(target: EnvTarget) -> CheckResult:
    """The runtime's start-up verification: step, snapshot, step, restore, re-step and compare."""
    game, refusal = verified_game(target)
    if refusal is not None:
        return CheckResult("snapshot", FAIL, f"the runtime would refuse this env: {refusal}", fix=SNAPSHOT_FIX)
    info = game.describe()
    flags = info.get("global_rng", {})
    used = [name for name, on in flags.items() if on]
    note = f"; also captures the global {' and '.join(used)} generator" if used else ""
    return CheckResult("snapshot", PASS, f"snapshots restore faithfully (method {game.snapshot_method}){note}",
                       details={"method": game.snapshot_method, "global_rng": flags})


def check_sync(target: EnvTarget, distances: Sequence[int], frames: int, seed: int) -> CheckResult:
    """The sync test at each distance: roll back every frame and compare the resimulation."""
    from pyodide_runtime.synctest import run_sync_test

    runs = []
    for distance in distances:
        game, _ = verified_game(target)
        report = run_sync_test(game, frames=frames, distance=distance, seed=seed)
        runs.append({"distance": distance, "passed": report.passed, "checks": report.checks, "report": str(report)})
        if not report.passed:
            return CheckResult("synctest", FAIL, str(report), fix=SNAPSHOT_FIX, details={"runs": runs})
    total = sum(r["checks"] for r in runs)
    listed = ",".join(str(d) for d in distances)
    return CheckResult("synctest", PASS, f"distances {listed}: {total} resimulated frames matched",
                       details={"runs": runs})


def check_hidden_state(target: EnvTarget, seed: int, warmup: Sequence[int] = (5, 23), horizon: int = 40) -> CheckResult:
    """Restore a snapshot into a *fresh* env (reset with another seed) and compare its future with the original's.

    Restoring into the same env, as verification and the sync test do, cannot see state that the snapshot misses
    but that stays constant within an episode (a layout or parameter chosen at reset); a fresh env can.
    """
    from pyodide_runtime.snapshot import RESULT_FIELDS, field_digests, first_difference, result_fields

    original, _ = verified_game(target)
    rng = random.Random(seed)
    counts = [original.input_count(s) for s in range(len(original.seats))]
    compared = 0
    for length in warmup:
        original.reset(seed)
        for _ in range(length):
            if original.step([rng.randrange(c) for c in counts]).episode_over:
                original.reset(seed)
        snapshot = original.get_state()
        for other_seed in (seed + 7919, seed + 104729, seed + 1299709):  # whatever the snapshot misses now differs
            original.set_state(snapshot)
            fresh, _ = verified_game(target)
            fresh.reset(other_seed)
            fresh.set_state(snapshot)
            for k in range(horizon):
                inputs = [rng.randrange(c) for c in counts]
                want, got = original.step(inputs), fresh.step(inputs)
                compared += 1
                want_d, got_d = field_digests(want), field_digests(got)
                for name in RESULT_FIELDS:
                    if want_d[name] != got_d[name]:
                        where = first_difference(result_fields(want)[name], result_fields(got)[name], name)
                        return CheckResult(
                            "hidden-state", FAIL,
                            f"a fresh env restored from the snapshot taken after {length} frames diverged from the "
                            f"original {k + 1} frame(s) later: {where}; the env keeps state its snapshot does not "
                            "hold", fix="add every attribute step() reads, including ones set only in reset(), to "
                            "get_state()/set_state()", details={"warmup": length, "frame": k, "field": name})
                if want.episode_over:
                    break
    return CheckResult("hidden-state", PASS,
                       f"fresh envs restored from snapshots matched the originals for {compared} frames")
