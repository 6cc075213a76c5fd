"""Scale benchmark: how the engine's per-frame cost grows with the prediction window, the observation size and
the number of players (CPython, simulated network, medians over repeats).

- ``window``: Coin Chase, 2 players, 150 ms one-way latency (beyond the 2-frame input delay, so frames are
  predicted and rolled back), ``max_prediction`` 2, 4, 8 and 16;
- ``obs``: a two-player env whose observation is a numpy ``uint8`` array of 16 B, 10 KB or 100 KB per agent,
  perfect network (the cost of carrying large observations through records, hashing and snapshots), once per
  hash mode in :data:`OBS_HASHES` (``frame_hash`` ``"sampled"``, the default, and ``"bytes"``);
- ``players``: Coin Chase with 2, 3 and 4 players, 50 ms latency.

Every row has ``bare_step_us`` (the env alone, same config), ``kept_step_us`` (the same loop keeping every step's
output, as any recording engine must: the floor for an engine that keeps records), ``engine_frame_us`` (the
session's ``tick`` time per simulated frame and peer), ``engine_ratio`` (engine / bare) and ``engine_kept_ratio``
(engine / kept), plus rollbacks, resimulated frames, stall ticks and bytes sent per peer per second.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from typing import Any

from pyodide_runtime.host.benchmarks.core import _bare_step_us, _engine

__all__ = ["PayloadEnv", "bench_scale", "WINDOWS", "OBS_SIZES", "OBS_HASHES", "PLAYERS"]

WINDOWS = (2, 4, 8, 16)
OBS_SIZES = {"small": 16, "10KB": 10 * 1024, "100KB": 100 * 1024}
PLAYERS = (2, 3, 4)
#: Hash modes of the observation-size sweep.
OBS_HASHES = ("sampled", "bytes")


class PayloadEnv:
    """A PettingZoo-style parallel env whose observation is an ``obs_bytes``-long ``uint8`` array per agent.

    Each agent walks on a line; the observation is filled from the state every step (so it costs what building
    a real image observation of that size costs). Explicit ``get_state``/``set_state``.
    """

    metadata = {"name": "payload", "version": "1"}

    def __init__(self, obs_bytes: int = 16, players: int = 2, max_steps: int = 10**9) -> None:
        import numpy as np
        from gymnasium import spaces

        self.obs_bytes = obs_bytes
        self.possible_agents = [f"p{i}" for i in range(players)]
        self.agents = list(self.possible_agents)
        self._space = spaces.Discrete(3)
        self.max_steps = max_steps
        self.np_random = np.random.default_rng(0)
        self._t = 0
        self._pos = [0] * players

    def action_space(self, agent: str) -> Any:
        return self._space

    def _obs(self) -> dict[str, Any]:
        import numpy as np

        out = {}
        for i, agent in enumerate(self.possible_agents):
            obs = np.empty(self.obs_bytes, dtype=np.uint8)
            obs.fill((self._t + self._pos[i]) % 256)
            out[agent] = obs
        return out

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        import numpy as np

        self.np_random = np.random.default_rng(seed)
        self._t = 0
        self._pos = [0] * len(self.possible_agents)
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        agents = self.possible_agents
        for i, agent in enumerate(agents):
            self._pos[i] += int(actions.get(agent, 0)) - 1
        bonus = float(self.np_random.random() < 0.1)
        self._t += 1
        truncated = self._t >= self.max_steps
        return (self._obs(), {a: bonus for a in agents}, dict.fromkeys(agents, False),
                dict.fromkeys(agents, truncated), {a: {} for a in agents})

    def get_state(self) -> tuple:
        return self._t, tuple(self._pos), self.np_random.bit_generator.state

    def set_state(self, state: tuple) -> None:
        self._t, pos, rng = state
        self._pos = list(pos)
        self.np_random.bit_generator.state = rng


def _coin_chase(players: int) -> tuple[Callable[[], Any], Callable[..., Any], Callable[[], Any]]:
    from pyodide_runtime.host.benchmarks.core import _example_setup

    bare_env, bare_actions, game = _example_setup(players)
    return bare_env, bare_actions, lambda: game()


def _payload(obs_bytes: int) -> tuple[Callable[[], Any], Callable[..., Any], Callable[[], Any]]:
    from pyodide_runtime.envs.loading import make_game

    def bare_env() -> PayloadEnv:
        return PayloadEnv(obs_bytes)

    def bare_actions(env: Any, rng: random.Random) -> dict[str, int]:
        return {agent: rng.randrange(3) for agent in env.possible_agents}

    return bare_env, bare_actions, lambda: make_game(PayloadEnv(obs_bytes), env_id="payload", verify=False)


def _row(setup: tuple[Callable[[], Any], Callable[..., Any], Callable[[], Any]], players: int, frames: int,
         repeats: int, latency_ms: float, **options: Any) -> dict[str, Any]:
    bare_env, bare_actions, make_game = setup
    bare, kept, engine, runs = [], [], [], []
    for r in range(repeats):
        bare.append(_bare_step_us(bare_env, bare_actions, frames))
        kept.append(_bare_step_us(bare_env, bare_actions, frames, keep=True))
        run = _engine(make_game, players, frames, latency_ms, seed=20 + r, **options)
        engine.append(run["tick_s"] / run["simulated"] * 1e6)
        runs.append(run)
    last = runs[len(runs) // 2]
    b, k, e = statistics.median(bare), statistics.median(kept), statistics.median(engine)
    return {
        "bare_step_us": round(b, 2), "kept_step_us": round(k, 2), "engine_frame_us": round(e, 2),
        "engine_ratio": round(e / b, 3), "engine_kept_ratio": round(e / k, 3),
        "latency_ms": latency_ms, "rollbacks": last["rollbacks"], "resimulated_frames": last["resimulated"],
        "stall_ticks": last["stall_ticks"],
        "bytes_per_s_per_peer": round(last["bytes_sent"] / players / max(last["virtual_s"], 1e-9)),
    }


def bench_scale(frames: int = 600, repeats: int = 5, *, windows: tuple[int, ...] = WINDOWS,
                obs_sizes: dict[str, int] | None = None, players: tuple[int, ...] = PLAYERS,
                obs_hashes: tuple[str, ...] = OBS_HASHES) -> dict[str, Any]:
    """Run the three sweeps; returns ``{"window": [...], "obs": [...], "players": [...]}``."""
    obs_sizes = OBS_SIZES if obs_sizes is None else obs_sizes
    out: dict[str, Any] = {"window": [], "obs": [], "players": []}
    for w in windows:
        out["window"].append({"max_prediction": w, **_row(_coin_chase(2), 2, frames, repeats, 150.0,
                                                            max_prediction=w)})
    for name, size in obs_sizes.items():
        for mode in obs_hashes:
            out["obs"].append({"obs": name, "obs_bytes": size, "frame_hash": mode,
                               **_row(_payload(size), 2, frames, repeats, 0.0, frame_hash=mode)})
    for n in players:
        out["players"].append({"players": n, **_row(_coin_chase(n), n, frames, repeats, 50.0)})
    return out


def add_parser(sub: Any) -> None:
    """The ``bench scale`` subcommand."""
    from pathlib import Path

    p = sub.add_parser("scale", help="engine cost vs prediction window, observation size and players (CPython)")
    p.add_argument("--frames", type=int, default=600, help="frames per measurement (default %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; figures are medians (default %(default)s)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run)


def run(args: Any) -> int:
    from pyodide_runtime.host.benchmarks.report import machine, print_table, write_results
    from pyodide_runtime.host.cli import CommandError

    if args.frames < 100 or args.repeats < 1:
        raise CommandError("--frames must be at least 100 and --repeats at least 1")
    results: dict[str, Any] = {"suite": "scale", "machine": machine(), "frames": args.frames, "repeats": args.repeats}
    results.update(bench_scale(args.frames, args.repeats))
    results["machine_after"] = machine()
    cols = ["bare_step_us", "kept_step_us", "engine_frame_us", "engine_ratio", "engine_kept_ratio", "rollbacks",
            "resimulated_frames", "stall_ticks", "bytes_per_s_per_peer"]
    print_table("prediction window (Coin Chase, 150 ms latency)", results["window"], ["max_prediction", *cols])
    print_table("observation size (numpy uint8 per agent, perfect network)", results["obs"], ["obs", "frame_hash", *cols])
    print_table("players (Coin Chase, 50 ms latency)", results["players"], ["players", *cols])
    write_results(args.json, results)
    return 0
