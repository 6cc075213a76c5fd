"""A short seeded rollout in a fresh interpreter: ``python -m pyodide_runtime.checkenv.rollout JSON``.

Prints one JSON line: per-frame canonical digests of every step result field, and the top-level modules the env
brought in beyond the runtime's own. The determinism checks compare these between processes.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

from pyodide_runtime.checkenv.modules import describe_modules, top_level_modules
from pyodide_runtime.checkenv.target import EnvTarget
from pyodide_runtime.envs import loading  # noqa: F401  (the runtime's own imports form the baseline)
from pyodide_runtime.snapshot import SnapshotError, field_digests

__all__ = ["rollout", "main"]


def rollout(target: EnvTarget, seed: int, frames: int) -> list[dict[str, str]]:
    """Step ``frames`` frames with seeded inputs (resetting with the next seed at episode ends); digests per frame."""
    try:
        game = target.load_game(verify=True)  # as the runtime runs it (global generators captured and seeded)
    except SnapshotError:
        game = target.load_game(verify=False)
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    episode, frame = 0, 0

    def row(result: Any, at: str) -> dict[str, str]:
        return {"at": f"episode {episode} {at}", **{k: v[:16] for k, v in field_digests(result).items()}}

    out = [row(game.reset(seed), "reset")]
    for _ in range(frames):
        result = game.step([rng.randrange(c) for c in counts])
        out.append(row(result, f"frame {frame}"))
        frame += 1
        if result.episode_over:
            episode, frame = episode + 1, 0
            out.append(row(game.reset(seed + episode), "reset"))
    return out


def main(argv: list[str] | None = None) -> int:
    args: dict[str, Any] = json.loads((argv if argv is not None else sys.argv[1:])[0])
    baseline = top_level_modules()
    target = EnvTarget.from_json(args["target"])
    digests = rollout(target, int(args["seed"]), int(args["frames"]))
    modules = describe_modules(top_level_modules() - baseline) if args.get("modules") else []
    print(json.dumps({"digests": digests, "modules": modules, "hash_seed": sys.flags.hash_randomization}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
