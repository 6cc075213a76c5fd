"""Core benchmark: what the rollback engine costs per frame, against a bare ``env.step`` loop on the same env.

Everything is measured side by side in one run and reported as medians over repeats, because machines are noisy.
The same function runs in CPython and, through :mod:`pyodide_runtime.host.pyodide_host`, inside Pyodide.

Figures (per env):

- ``bare_step_us``: the researcher's env stepped directly, no adapter, no engine;
- ``bare_retain_us``: the same loop keeping every step's output (the floor for an engine that records them:
  the kept objects cost allocation and garbage-collection time);
- ``game_step_us``: the same steps through the :class:`~pyodide_runtime.envs.base.Game` adapter;
- ``engine_frame_us``: the whole session per simulated frame (input queues, snapshots when predicting, frame log,
  promotion, hash chain, protocol encode/decode) in a two-peer session on a perfect network, i.e. no rollback;
- ``resim_frame_us``: per resimulated frame during real rollbacks (restore + resimulate + log bookkeeping), from
  a two-peer session with 100 ms latency and changing inputs;
- ``fast_forward_fps``: frames per second while a peer returning from a frozen tab catches up.

Every loop covers ``frames`` frames: the sessions play as many episodes as fit in that much virtual time, so a
short-episode env (CartPole) is not measured on one episode dominated by start-up. Garbage from earlier runs is
collected before each timed loop, so it is not charged to the next one.

Ratios: ``engine_ratio = engine_frame_us / bare_step_us`` (target ≤ 1.3 with the explicit state protocol,
≤ 2.5 with the generic fallback), ``resim_rate = bare_step_us / resim_frame_us`` and
``fast_forward_rate = fast_forward_fps * bare_step_us / 1e6`` (targets ≥ 0.8: relative step rates).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

EXAMPLE_ENV = "pyodide_runtime.examples.coin_chase:make_env"


# -- env setups -------------------------------------------------------------------------------------------------
def _example_setup(players: int = 2) -> tuple[Callable[[], Any], Callable[[Any, random.Random], Any], Callable[..., Any]]:
    from pyodide_runtime.examples.coin_chase import make_env
    from pyodide_runtime.envs.loading import load_game

    config = {"players": players, "max_steps": 300}

    def bare_env() -> Any:
        return make_env(config)

    def bare_actions(env: Any, rng: random.Random) -> dict[str, int]:
        return {agent: rng.randrange(5) for agent in env.possible_agents}

    def game(**options: Any) -> Any:
        return load_game(EXAMPLE_ENV, config, **options)

    return bare_env, bare_actions, game


def _cartpole_setup() -> tuple[Callable[[], Any], Callable[[Any, random.Random], Any], Callable[..., Any]]:
    import gymnasium

    from pyodide_runtime.envs.loading import make_game

    def bare_env() -> Any:
        return gymnasium.make("CartPole-v1")

    def bare_actions(env: Any, rng: random.Random) -> int:
        return rng.randrange(2)

    def game(**options: Any) -> Any:
        return make_game(gymnasium.make("CartPole-v1"), **options)

    return bare_env, bare_actions, game


ENVS = {"example": _example_setup, "cartpole": _cartpole_setup}


# -- measurements -----------------------------------------------------------------------------------------------
def _bare_step_us(bare_env: Callable[[], Any], bare_actions: Callable[[Any, random.Random], Any], frames: int,
                  keep: bool = False) -> float:
    """µs per ``env.step``; with ``keep`` every step's output is kept, as a recording engine must keep it."""
    env = bare_env()
    kept = []
    rng = random.Random(1)
    actions = [None] * frames
    env.reset(seed=1)
    for i in range(frames):
        actions[i] = bare_actions(env, rng)
    episode = 1
    gc.collect()
    t0 = time.perf_counter()
    for action in actions:
        out = env.step(action)
        if keep:
            kept.append(out)
        terminated, truncated = out[2], out[3]
        if terminated is True or truncated is True or (isinstance(terminated, dict) and (any(terminated.values()) or any(truncated.values()))):
            episode += 1
            env.reset(seed=episode)
    return (time.perf_counter() - t0) / frames * 1e6


def _game_step_us(game: Any, frames: int) -> float:
    rng = random.Random(2)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    inputs = [[rng.randrange(n) for n in counts] for _ in range(frames)]
    game.reset(1)
    episode = 1
    gc.collect()
    t0 = time.perf_counter()
    for values in inputs:
        if game.step(values).episode_over:
            episode += 1
            game.reset(episode)
    return (time.perf_counter() - t0) / frames * 1e6


class _Stopwatch:
    """Accumulates the time spent inside wrapped callables."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def _engine(make_game: Callable[[], Any], players: int, frames: int, latency_ms: float, seed: int,
            freeze: tuple[float, float] | None = None, loss: float = 0.0, **options: Any) -> dict[str, float]:
    """Run a full session on the simulated network, timing the sessions' own work only.

    ``options`` override the session config (input delay 2, prediction window 8 by default).
    """
    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.session import FastForward, Session
    from pyodide_runtime.host.testing import AwaySpan, LinkSpec, random_policy, run_peers

    from pyodide_runtime.sync.timeline import Timeline

    # As many episodes as fit: the run is cut after ``frames`` frames of virtual time, so every env is measured
    # over the same number of frames (one short CartPole episode would otherwise be dominated by start-up).
    config = SessionConfig(**{"players": players, "input_delay": 2, "max_prediction": 8, "episodes": frames,
                              "seed": seed, **options})
    sessions = [Session(make_game(), config, seat) for seat in range(players)]
    tick_watch, rollback_watch = _Stopwatch(), _Stopwatch()
    ff_watch = _Stopwatch()

    class TimedTimeline(Timeline):
        __slots__ = ()  # same layout, so an existing timeline can take this class
        apply_rollback = rollback_watch.wrap(Timeline.apply_rollback)

    for session in sessions:
        session.timeline.__class__ = TimedTimeline
    plain_tick = {id(s): s.tick for s in sessions}
    for session in sessions:
        def tick(*args: Any, _s: Any = session, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            result = plain_tick[id(_s)](*args, **kwargs)
            spent = time.perf_counter() - t0
            tick_watch.seconds += spent
            if any(isinstance(e, FastForward) for e in result.events):
                ff_watch.seconds += spent
            return result

        session.tick = tick  # type: ignore[method-assign]
    away = [AwaySpan(0, freeze[0], freeze[1], "frozen")] if freeze else []
    gc.collect()  # garbage left by earlier runs is collected here, not inside this run's timed ticks
    result = run_peers(None, config, sessions=sessions, link=LinkSpec(latency_ms=latency_ms, loss=loss),
                       policy=random_policy(seed, hold_frames=(1, 4)), away=away, seed=seed,
                       max_ms=frames * config.frame_ms)
    for session in sessions:
        del session.tick  # the timing wrapper refers to its session: drop the cycle
    if not result.common_prefix_identical():
        raise AssertionError("benchmark session lost parity")
    stats = [p.session.stats for p in result.peers]
    simulated = sum(s["frames_simulated"] for s in stats)
    resimulated = sum(s["resimulated_frames"] for s in stats)
    ff = sum(s["fast_forward_frames"] for s in stats)
    return {
        "frames": len(result.peers[0].records),
        "simulated": simulated,
        "tick_s": tick_watch.seconds,
        "rollback_s": rollback_watch.seconds,
        "resimulated": resimulated,
        "rollbacks": sum(s["rollbacks"] for s in stats),
        "ff_frames": ff,
        "ff_s": ff_watch.seconds,
        "stall_ticks": sum(s["stall_ticks"] for s in stats),
        "bytes_sent": sum(s["bytes_sent"] for s in stats),
        "virtual_s": result.end_ms / 1000.0,
    }


def _game_resim_us(game: Any, frames: int, distance: int = 4) -> float:
    """Restore a snapshot ``distance`` frames back and resimulate, through the Game only (single-seat envs)."""
    rng = random.Random(3)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    inputs = [[rng.randrange(n) for n in counts] for _ in range(frames)]
    game.reset(1)
    t0 = time.perf_counter()
    resimulated = 0
    forward_steps = 0
    i = 0
    while i + distance <= frames:
        state = game.get_state()
        over = False
        for k in range(distance):
            forward_steps += 1
            if game.step(inputs[i + k]).episode_over:
                over = True
                break
        if over:  # an episode boundary inside the window: start a new episode, nothing to resimulate
            game.reset(i)
        else:
            game.set_state(state)
            for k in range(distance):
                game.step(inputs[i + k])
            resimulated += distance
        i += distance
    total = time.perf_counter() - t0
    forward = _game_step_us(game, frames) * forward_steps / 1e6
    return max(total - forward, 1e-9) / max(resimulated, 1) * 1e6


def bench_env(env: str = "example", frames: int = 600, repeats: int = 5, snapshot: str = "auto") -> dict[str, Any]:
    """Measure one env; every figure is the median over ``repeats`` side-by-side runs."""
    bare_env, bare_actions, make_game = ENVS[env]()
    options = {} if snapshot == "auto" else {"snapshot": snapshot}
    probe = make_game(**options)
    players = len(probe.seats)
    runs: dict[str, list[float]] = {k: [] for k in (
        "bare_step_us", "bare_retain_us", "game_step_us", "engine_frame_us", "resim_frame_us", "fast_forward_fps")}
    extra: dict[str, Any] = {}
    for r in range(repeats):
        runs["bare_step_us"].append(_bare_step_us(bare_env, bare_actions, frames))
        runs["bare_retain_us"].append(_bare_step_us(bare_env, bare_actions, frames, keep=True))
        runs["game_step_us"].append(_game_step_us(make_game(**options), frames))
        base = _engine(lambda: make_game(**options), players, frames, 0.0, seed=10 + r)
        runs["engine_frame_us"].append(base["tick_s"] / base["simulated"] * 1e6)
        if players >= 2:
            lat = _engine(lambda: make_game(**options), players, frames, 100.0, seed=10 + r)
            runs["resim_frame_us"].append(lat["rollback_s"] / max(lat["resimulated"], 1) * 1e6)
            frozen = _engine(lambda: make_game(**options), players, frames, 20.0, seed=10 + r, freeze=(1000.0, 4000.0))
            runs["fast_forward_fps"].append(frozen["ff_frames"] / max(frozen["ff_s"], 1e-9))
            extra = {"rollbacks": lat["rollbacks"], "resimulated_frames": lat["resimulated"],
                     "fast_forward_frames": frozen["ff_frames"]}
        else:
            runs["resim_frame_us"].append(_game_resim_us(make_game(**options), frames))
            extra = {"resim_method": "game-level restore + resimulate (single seat: no remote peer to mispredict)"}
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    bare = med["bare_step_us"]
    out: dict[str, Any] = {
        "env": env, "players": players, "snapshot_method": getattr(probe, "snapshot_method", snapshot),
        "frames": frames, "repeats": repeats, **{k: round(v, 2) for k, v in med.items()},
        "engine_ratio": round(med["engine_frame_us"] / bare, 3),
        "engine_ratio_retained": round(med["engine_frame_us"] / med["bare_retain_us"], 3),
        "adapter_ratio": round(med["game_step_us"] / bare, 3),
        "resim_rate": round(bare / med["resim_frame_us"], 3),
        **extra,
    }
    if "fast_forward_fps" in med:
        out["fast_forward_rate"] = round(med["fast_forward_fps"] * bare / 1e6, 3)
    return out


def bench_core(frames: int = 600, repeats: int = 5) -> list[dict[str, Any]]:
    """The core suite: the example env, and CartPole with its automatic and its pickle snapshot."""
    return [
        bench_env("example", frames, repeats),
        bench_env("cartpole", frames, repeats),
        bench_env("cartpole", frames, repeats, snapshot="pickle"),
    ]
