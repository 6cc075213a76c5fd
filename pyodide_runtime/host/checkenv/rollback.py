"""Rollback checks: snapshots restore faithfully, the sync test passes, and no state hides outside snapshots."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pyodide_runtime.host.checkenv.report import FAIL, PASS, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["verified_game", "check_snapshot", "check_sync", "check_hidden_state"]

#: The fix for an env without get_state()/set_state() when nothing more specific is known.
SNAPSHOT_FIX = (
    "implement get_state()/set_state() returning everything step() reads (positions, counters, "
    "self.np_random.bit_generator.state), or keep all state in plain attributes so the generic snapshot sees it"
)


def _load(target: EnvTarget) -> tuple[Any, Exception | None]:
    from pyodide_runtime.snapshot import SnapshotError

    try:
        return target.load_game(verify=True), None
    except SnapshotError as exc:
        return target.load_game(verify=False), exc


def verified_game(target: EnvTarget) -> tuple[Any, str | None]:
    """The game as the runtime builds it (start-up verification on); on refusal, an unverified game and why."""
    game, refusal = _load(target)
    return game, None if refusal is None else str(refusal)


def _fix_for(game: Any, fix: str | None = None) -> str:
    """``fix`` when a check gave one; else advice that does not ask an env with state methods to add them."""
    from pyodide_runtime.envs.snapshot_check import explicit_owner, restore_advice

    if fix:
        return fix
    return restore_advice(game) if explicit_owner(game) is not None else SNAPSHOT_FIX


def check_snapshot(target: EnvTarget) -> CheckResult:
    """The runtime's start-up verification: step, snapshot, step, restore, re-step and compare."""
    game, refusal = _load(target)
    if refusal is not None:
        fix = getattr(refusal, "fix", None)
        reason = getattr(refusal, "reason", None) if fix else None
        return CheckResult("snapshot", FAIL, f"the runtime would refuse this env: {reason or refusal}",
                           fix=_fix_for(game, fix))
    info = game.describe()
    flags = info.get("global_rng", {})
    used = [name for name, on in flags.items() if on]
    note = f"; also captures the global {' and '.join(used)} generator" if used else ""
    return CheckResult("snapshot", PASS, f"snapshots restore faithfully (method {game.snapshot_method}){note}",
                       details={"method": game.snapshot_method, "global_rng": flags})


def check_sync(target: EnvTarget, distances: Sequence[int], frames: int, seed: int) -> CheckResult:
    """The sync test at each distance: roll back every frame and compare the resimulation."""
    from pyodide_runtime.host.synctest import run_sync_test

    runs = []
    for distance in distances:
        game, _ = verified_game(target)
        report = run_sync_test(game, frames=frames, distance=distance, seed=seed)
        runs.append({"distance": distance, "passed": report.passed, "checks": report.checks, "report": str(report)})
        if not report.passed:
            return CheckResult("synctest", FAIL, str(report), fix=_fix_for(game, report.mismatch.fix),
                               details={"runs": runs})
    total = sum(r["checks"] for r in runs)
    listed = ",".join(str(d) for d in distances)
    return CheckResult("synctest", PASS, f"distances {listed}: {total} resimulated frames matched",
                       details={"runs": runs})


def check_hidden_state(target: EnvTarget, seed: int, warmup: Sequence[int] = (5, 23), horizon: int = 40) -> CheckResult:
    """Restore a snapshot into a *fresh* env (reset with another seed) and compare its future with the original's.

    Restoring into the same env, as verification and the sync test do, cannot see state that the snapshot misses
    but that stays constant within an episode (a layout or parameter chosen at reset); a fresh env can.
    """
    from pyodide_runtime.envs.snapshot_check import RESULT_FIELDS, field_digests, first_difference, result_fields

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
                        missed = _hidden_attributes(target, original, snapshot, other_seed)
                        named = "".join(f"; {_hidden(m)}" for m in missed[:3])
                        return CheckResult(
                            "hidden-state", FAIL,
                            f"a fresh env restored from the snapshot taken after {length} frames diverged from the "
                            f"original {k + 1} frame(s) later: {where}; the env keeps state its snapshot does not "
                            f"hold{named}", fix=_hidden_fix(original, missed),
                            details={"warmup": length, "frame": k, "field": name,
                                     "attributes": [m.name for m in missed]})
                if want.episode_over:
                    break
    return CheckResult("hidden-state", PASS,
                       f"fresh envs restored from snapshots matched the originals for {compared} frames")


def _hidden_attributes(target: EnvTarget, original: Any, snapshot: Any, other_seed: int) -> tuple[Any, ...]:
    """Attributes that differ between the original and a fresh env right after both restored ``snapshot``."""
    from pyodide_runtime.envs.snapshot_check import attribute_values, unrestored_between

    try:
        original.set_state(snapshot)
        fresh, _ = verified_game(target)
        fresh.reset(other_seed)
        fresh.set_state(snapshot)
        return unrestored_between(attribute_values(original), attribute_values(fresh))
    except Exception:  # noqa: BLE001 - only a diagnosis
        return ()


def _hidden(missed: Any) -> str:
    if missed.rng:
        return f"`{missed.name}` (its generator state) differs between the original and the fresh env"
    where = "" if missed.path == missed.name else f" at {missed.path}"
    return f"`{missed.name}` differs{where}: {_short(missed.saved)} in the original, {_short(missed.restored)} in " \
           "the fresh env"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _hidden_fix(game: Any, missed: Sequence[Any]) -> str:
    from pyodide_runtime.envs.snapshot_check import explicit_owner, restore_advice

    owner = explicit_owner(game)
    if owner is not None and missed:
        names = ", ".join(f"`{m.name}`" for m in missed[:3])
        it = "it" if len(missed) == 1 else "them"
        return (f"return {names} from {owner}.get_state() and restore {it} in set_state(), even if only reset() "
                f"sets {it}")
    if owner is not None:
        return restore_advice(game)
    return ("keep the env's state in instance attributes (the generic snapshot copies those), not in class "
            "attributes or module-level variables")
