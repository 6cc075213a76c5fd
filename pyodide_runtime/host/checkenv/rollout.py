"""A short seeded rollout in a fresh interpreter: ``python -m pyodide_runtime.host.checkenv.rollout JSON``.

Prints one JSON line: per-frame canonical digests of every step result field, and the top-level modules the env
brought in beyond the runtime's own. The determinism checks compare these between processes. With
``"report_errors": true`` an exception of the env is caught and described (type, message, the env code's file and
line, the phase and frame) in the JSON instead of crashing; the server's start-up study check uses that.
"""

from __future__ import annotations

import json
import os
import random
import sys
import sysconfig
import traceback
from typing import Any

from pyodide_runtime.host.checkenv.modules import describe_modules, top_level_modules
from pyodide_runtime.host.checkenv.target import EnvTarget
from pyodide_runtime.envs import loading  # noqa: F401  (the runtime's own imports form the baseline)
from pyodide_runtime.envs.snapshot_check import field_digests
from pyodide_runtime.snapshot import SnapshotError

__all__ = ["rollout", "main"]


class _Where:
    """Where the rollout is, so an exception can be reported with its phase and frame."""

    phase = "load"
    episode = 0
    frame = 0


def rollout(target: EnvTarget, seed: int, frames: int, where: _Where | None = None) -> list[dict[str, str]]:
    """Step ``frames`` frames with seeded inputs (resetting with the next seed at episode ends); digests per frame."""
    where = where or _Where()
    try:
        game = target.load_game(verify=True)  # as the runtime runs it (global generators captured and seeded)
    except SnapshotError:
        game = target.load_game(verify=False)
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    episode, frame = 0, 0

    def row(result: Any, at: str) -> dict[str, str]:
        return {"at": f"episode {episode} {at}", **{k: v[:16] for k, v in field_digests(result).items()}}

    where.phase = "reset"
    out = [row(game.reset(seed), "reset")]
    for _ in range(frames):
        where.phase, where.episode, where.frame = "step", episode, frame
        result = game.step([rng.randrange(c) for c in counts])
        out.append(row(result, f"frame {frame}"))
        frame += 1
        if result.episode_over:
            episode, frame = episode + 1, 0
            where.phase, where.episode, where.frame = "reset", episode, 0
            out.append(row(game.reset(seed + episode), "reset"))
    return out


_LIBRARY_DIRS = tuple(
    os.path.normcase(os.path.realpath(p)) + os.sep
    for p in {sysconfig.get_paths()["stdlib"], os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
)
_LIBRARY_PACKAGES = ("numpy", "gymnasium", "pettingzoo")


def describe_error(exc: BaseException, where: _Where) -> dict[str, Any]:
    """An env exception as data: type, message, phase, frame, and the innermost frame of the env's own code."""
    frames = traceback.extract_tb(exc.__traceback__)

    def ours(filename: str) -> bool:
        path = os.path.normcase(os.path.realpath(filename))
        parts = set(path.split(os.sep))
        in_library = path.startswith(_LIBRARY_DIRS) and "site-packages" not in parts
        return in_library or any(p in parts for p in _LIBRARY_PACKAGES)

    candidates = [f for f in frames if not ours(f.filename)] or list(frames)
    last = candidates[-1] if candidates else None
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "phase": where.phase,
        "episode": where.episode,
        "frame": where.frame,
        "file": last.filename if last else None,
        "line": last.lineno if last else None,
        "code": (last.line or "").strip() if last else None,
        "traceback": "".join(traceback.format_exception(exc))[-4000:],
    }


def main(argv: list[str] | None = None) -> int:
    args: dict[str, Any] = json.loads((argv if argv is not None else sys.argv[1:])[0])
    baseline = top_level_modules()
    target = EnvTarget.from_json(args["target"])
    where = _Where()
    error = None
    digests: list[dict[str, str]] = []
    try:
        digests = rollout(target, int(args["seed"]), int(args["frames"]), where)
    except Exception as exc:
        if not args.get("report_errors"):
            raise
        error = describe_error(exc, where)
    modules = describe_modules(top_level_modules() - baseline) if args.get("modules") else []
    print(json.dumps({"digests": digests, "modules": modules, "hash_seed": sys.flags.hash_randomization,
                      "error": error}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
