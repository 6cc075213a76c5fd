"""Determinism across processes: the same seeds give the same results in two fresh interpreters, and the results
do not depend on string hashing (``PYTHONHASHSEED``), which is what iterating a set of strings does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["Rollouts", "run_rollouts", "check_determinism", "check_hash_seed", "RolloutError", "child_search_path"]

HASH_SEEDS = ("0", "0", "1", "2")  # two identical processes, then two other string-hash seeds


class RolloutError(RuntimeError):
    """A rollout subprocess crashed; the message holds the end of its stderr."""


@dataclass(frozen=True)
class Rollouts:
    """Per-frame digests from each subprocess (in ``HASH_SEEDS`` order), and the env's modules."""

    runs: list[list[dict[str, str]]]
    modules: list[dict[str, Any]]


def run_rollouts(target: EnvTarget, seed: int, frames: int, timeout: float = 300.0) -> Rollouts:
    """Run the seeded rollout in one fresh interpreter per entry of ``HASH_SEEDS``, two at a time."""
    procs = []
    outputs: list[str] = []
    for index, hash_seed in enumerate(HASH_SEEDS):
        args = json.dumps({"target": target.to_json(), "seed": seed, "frames": frames, "modules": index == 0})
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": child_search_path()}
        procs.append(subprocess.Popen([sys.executable, "-m", "pyodide_runtime.host.checkenv.rollout", args],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        if len(procs) - len(outputs) == 2 or index == len(HASH_SEEDS) - 1:
            for proc in procs[len(outputs):]:
                out, err = proc.communicate(timeout=timeout)
                if proc.returncode != 0:
                    raise RolloutError(err.strip()[-2000:] or f"rollout exited with {proc.returncode}")
                outputs.append(out.strip().splitlines()[-1])
    parsed = [json.loads(o) for o in outputs]
    return Rollouts([p["digests"] for p in parsed], parsed[0]["modules"])


def child_search_path() -> str:
    """This interpreter's import path, so the child finds the same modules (test folders, the env's package)."""
    entries = [os.getcwd() if not p else p for p in sys.path]
    return os.pathsep.join(dict.fromkeys(p for p in entries if os.path.isdir(p)))


def _first_difference(a: list[dict[str, str]], b: list[dict[str, str]]) -> str | None:
    for want, got in zip(a, b):
        for key in want:
            if key != "at" and want[key] != got.get(key):
                return f"{want['at']}, field {key}"
    if len(a) != len(b):
        return f"the runs have {len(a)} and {len(b)} rows (episodes ended on different frames)"
    return None


def check_determinism(rollouts: Rollouts | RolloutError) -> CheckResult:
    """Two fresh processes, same seeds, same ``PYTHONHASHSEED``: every step result must match."""
    if isinstance(rollouts, RolloutError):
        return CheckResult("determinism", FAIL, f"the seeded rollout crashed in a fresh process: {rollouts}",
                           fix="make the factory importable and runnable from a fresh interpreter")
    first, second = rollouts.runs[0], rollouts.runs[1]
    where = _first_difference(first, second)
    if where is not None:
        return CheckResult(
            "determinism", FAIL,
            f"two fresh processes with the same seeds diverged at {where}: results depend on something besides "
            "the seed and the inputs (os.urandom, time, an unseeded generator, id() or memory addresses)",
            fix="seed every generator from reset(seed) (self.np_random via super().reset(seed=seed)); never seed "
            "from time or os.urandom", details={"at": where})
    return CheckResult("determinism", PASS, f"two fresh processes agreed on {len(first)} step and reset results")


def check_hash_seed(rollouts: Rollouts | RolloutError) -> CheckResult:
    """Other ``PYTHONHASHSEED`` values must give the same results: set iteration order must not matter."""
    if isinstance(rollouts, RolloutError):
        return CheckResult("set-iteration", SKIP, "not run: the seeded rollout crashed")
    if _first_difference(rollouts.runs[0], rollouts.runs[1]) is not None:
        return CheckResult("set-iteration", SKIP, "inconclusive: the env is not deterministic even with one hash seed")
    for hash_seed, run in zip(HASH_SEEDS[2:], rollouts.runs[2:]):
        where = _first_difference(rollouts.runs[0], run)
        if where is not None:
            return CheckResult(
                "set-iteration", FAIL,
                f"results change with PYTHONHASHSEED (0 vs {hash_seed}) at {where}: step or reset iterates a set "
                "(or uses hash()) of strings, whose order is randomised per process; participants' pages fix "
                "PYTHONHASHSEED=0, but replays and analyses in other interpreters will not match",
                fix="iterate sorted(the_set), or use a list or dict (insertion-ordered) instead of a set",
                details={"hash_seed": hash_seed, "at": where})
    return CheckResult("set-iteration", PASS, "results are the same under PYTHONHASHSEED 0, 1 and 2")
