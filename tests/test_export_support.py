"""Builders shared by the export, validate, compare and data tests (and a check that they behave).

``drive_log`` steps a game directly into a :class:`FrameLog` the way the rollback engine does, with optional
mispredictions (a wrong speculative step, rolled back and resimulated) so that two logs can share their confirmed
inputs while their speculative histories, hence their diagnostics, differ.
"""

from __future__ import annotations

import io
import math
import random
import zipfile
from collections.abc import Sequence
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game, ResetResult, StepResult
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import Diagnostics, ExportContext, write_bundle
from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"


def new_log(config: SessionConfig) -> FrameLog:
    return FrameLog(config.frame_hash, config.hash_interval) if hasattr(config, "frame_hash") else FrameLog()


def drive_log(
    game: Game,
    config: SessionConfig,
    inputs: Sequence[Sequence[int]],
    *,
    mispredict: Sequence[int] = (),
    confirm: int | None = None,
    away: Sequence[Sequence[bool]] | None = None,
    clock_offset: float = 0.0,
) -> FrameLog:
    """Simulate ``inputs`` (one tuple per frame) until the episodes end or the inputs run out.

    Frames in ``mispredict`` are first simulated with a wrong input for seat 0, discarded and resimulated.
    Only the first ``confirm`` frames are promoted (all when ``None``); the log is then closed, so the rest
    forms the unconfirmed tail.
    """
    log = new_log(config)
    episode, frame, clock = 0, 0, 0.0

    def reset(ep: int, start: int) -> None:
        seed = config.episode_seed(ep)
        res = game.reset(seed)
        log.add_episode_start(EpisodeStart(ep, seed, start, res.observations, res.infos))

    def simulate(g: int, values: Sequence[int], speculative: bool) -> FrameRecord:
        step = game.step(list(values))
        flags = tuple(away[g]) if away is not None else (False,) * len(values)
        rec = FrameRecord(g, episode, frame, tuple(values), flags, step.actions, step.observations, step.rewards,
                          step.terminated, step.truncated, step.infos, step.episode_over, speculative, clock)
        log.add(rec)
        return rec

    reset(0, 0)
    g = 0
    wrong = set(mispredict)
    while episode < config.episodes and g < len(inputs):
        clock = clock_offset + g * 33.0
        values = list(inputs[g])
        if g in wrong:
            state, saved = game.get_state(), (episode, frame)
            bad = list(values)
            bad[0] = (bad[0] + 1) % game.input_count(0)
            rec = simulate(g, bad, True)
            if rec.episode_over and episode + 1 < config.episodes:
                reset(episode + 1, g + 1)
            log.discard_from(g)
            game.set_state(state)
            episode, frame = saved
        rec = simulate(g, values, False)
        g += 1
        if rec.episode_over:
            episode, frame = episode + 1, 0
            if episode < config.episodes:
                reset(episode, g)
        else:
            frame += 1
    log.promote(g if confirm is None else min(confirm, g), clock_offset + g * 33.0 + 100.0)
    log.close()
    return log


def random_inputs(n: int, seats: int = 2, seed: int = 0) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    return [tuple(rng.randrange(5) for _ in range(seats)) for _ in range(n)]


def coin_chase(max_steps: int = 25, **config: Any) -> Game:
    return load_game(COIN_CHASE, {"max_steps": max_steps, **config})


def context(game: Game, config: SessionConfig, seat: int = 0, **kw: Any) -> ExportContext:
    kw.setdefault("participant", f"participant-{seat}")
    return ExportContext(study="study", session="session-1", seat=seat, config=config, env=game.describe(),
                         agents=tuple(game.agents), seats=tuple(game.seats), pyodide_version="0.27.7",
                         wheel_sha256="ab" * 32, **kw)


def coin_bundle(seat: int = 0, *, frames: int = 60, episodes: int = 2, mispredict: Sequence[int] = (),
                confirm: int | None = None, seed: int = 0) -> tuple[bytes, FrameLog]:
    """A coin chase bundle from ``frames`` random inputs."""
    game = coin_chase()
    config = SessionConfig(episodes=episodes, seed=seed)
    log = drive_log(game, config, random_inputs(frames, seed=seed), mispredict=mispredict, confirm=confirm,
                    clock_offset=1000.0 * seat)
    diag = Diagnostics(user_agent=f"agent-{seat}", tick_intervals_ms=[33.0, 34.0, 32.5],
                       rollbacks=[(g, 1, [0]) for g in mispredict], rendered={0: {"frame": 0}})
    return write_bundle(log, context(game, config, seat), diag), log


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(files: dict[str, bytes]) -> bytes:
    """Zip files as they are (no new manifest): how a hand-edited bundle looks."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


class OddGame(Game):
    """A game whose values test the encoders: non-finite and negative-zero floats, int and bool dict keys,
    numpy arrays, a large observation, an enum, unicode and an agent name that needs CSV quoting."""

    env_id = "test/odd"
    env_version = "1"
    agents = ("a,1", "bot")
    seats = ("a,1",)

    def __init__(self, length: int = 6) -> None:
        self.length = length
        self.t = 0

    def input_count(self, seat: int) -> int:
        return 3

    def _obs(self) -> dict[str, Any]:
        import numpy as np

        big = list(range(3000)) if self.t % 2 == 0 else [self.t] * 2500
        return {
            "a,1": {"grid": np.arange(6, dtype=np.int64).reshape(2, 3) + self.t, "big": big, "é": "ünï\n\"q\""},
            "bot": {"x": np.float32(0.1) * self.t, "neg": -0.0, "keys": {10: "ten", 2: "two", True: "yes"}},
        }

    def reset(self, seed: int) -> ResetResult:
        self.t = 0
        return ResetResult(self._obs(), {"a,1": {"seed": seed}, "bot": {}})

    def step(self, inputs: Sequence[int]) -> StepResult:
        import numpy as np

        self.t += 1
        over = self.t >= self.length
        rewards = {"a,1": [math.nan, math.inf, -math.inf, 0.1 + 0.2][self.t % 4], "bot": np.float64(1e-310)}
        return StepResult(
            actions={"a,1": inputs[0], "bot": "noop" if self.t % 2 else None},
            observations=self._obs(),
            rewards=rewards,
            terminated={"a,1": over, "bot": np.bool_(over)},
            truncated={"a,1": False},  # "bot" absent on purpose
            infos={"a,1": {"t": self.t, "ratio": 1 / 3}, "bot": {"set": {3, 1, 2}, "bytes": b"\x00\xff"},
                   "__common__": {"note": "extra key"}},
            episode_over=over,
        )

    def get_state(self) -> int:
        return self.t

    def set_state(self, state: int) -> None:
        self.t = state


def test_drive_log_mispredictions_leave_confirmed_data_alone():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    inputs = random_inputs(60)
    plain = drive_log(game, config, inputs)
    spec = drive_log(coin_chase(), config, inputs, mispredict=[3, 24, 25, 40])
    assert [r.canonical() for r in plain.confirmed] == [r.canonical() for r in spec.confirmed]
    assert [r.state_hash for r in plain.confirmed] == [r.state_hash for r in spec.confirmed]
    assert sum(r.resimulated for r in spec.confirmed) == 4 and not any(r.resimulated for r in plain.confirmed)
