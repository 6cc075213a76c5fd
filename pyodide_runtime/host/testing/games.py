"""A tiny deterministic multi-player game for harness self-tests and examples.

It draws from its own RNG in every ``step`` and implements explicit ``get_state``/``set_state``, so it exercises
everything rollback depends on while stepping in a few microseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from pyodide_runtime.envs.base import Game, ResetResult, StepResult

__all__ = ["TinyGridGame", "tiny_grid_factory"]

MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))


class TinyGridGame(Game):
    """Players move on a grid and collect a coin that respawns at a random cell; a random gust moves players.

    Ends (truncated) after ``length`` frames, or (terminated) when a player reaches ``target`` coins.
    """

    env_id = "testing/tiny_grid"
    env_version = "1"

    def __init__(self, players: int = 2, length: int = 40, size: int = 5, target: int = 1_000, drift: int = 0):
        self.players = players
        self.length = length
        self.size = size
        self.target = target
        self.drift = drift  # a non-zero drift changes the rules: a divergent game for desync tests
        self.agents = tuple(f"p{i}" for i in range(players))
        self.seats = self.agents
        self.rng = random.Random(0)
        self.pos: list[list[int]] = []
        self.coin = [0, 0]
        self.score: list[int] = []
        self.t = 0

    def input_count(self, seat: int) -> int:
        return len(MOVES)

    def _obs(self):
        return {a: {"pos": list(self.pos[i]), "coin": list(self.coin), "score": self.score[i], "t": self.t}
                for i, a in enumerate(self.agents)}

    def reset(self, seed: int) -> ResetResult:
        self.rng = random.Random(seed)
        self.pos = [[self.rng.randrange(self.size), self.rng.randrange(self.size)] for _ in self.agents]
        self.coin = [self.rng.randrange(self.size), self.rng.randrange(self.size)]
        self.score = [0] * self.players
        self.t = 0
        return ResetResult(self._obs(), {a: {} for a in self.agents})

    def step(self, inputs: Sequence[int]) -> StepResult:
        rewards = {}
        for i, a in enumerate(self.agents):
            dx, dy = MOVES[inputs[i]]
            p = self.pos[i]
            p[0] = min(self.size - 1, max(0, p[0] + dx))
            p[1] = min(self.size - 1, max(0, p[1] + dy + self.drift))
            rewards[a] = 0.0
        if self.rng.random() < 0.2:  # gust
            p = self.pos[self.rng.randrange(self.players)]
            p[0] = (p[0] + 1) % self.size
        for i, a in enumerate(self.agents):
            if self.pos[i] == self.coin:
                self.score[i] += 1
                rewards[a] = 1.0
                self.coin = [self.rng.randrange(self.size), self.rng.randrange(self.size)]
        self.t += 1
        won = max(self.score) >= self.target
        trunc = self.t >= self.length and not won
        obs = self._obs()
        return StepResult(
            actions={a: inputs[i] for i, a in enumerate(self.agents)},
            observations=obs,
            rewards=rewards,
            terminated={a: won for a in self.agents},
            truncated={a: trunc for a in self.agents},
            infos={a: {} for a in self.agents},
            episode_over=won or trunc,
        )

    def get_state(self):
        return ([list(p) for p in self.pos], list(self.coin), list(self.score), self.t, self.rng.getstate())

    def set_state(self, state) -> None:
        pos, coin, score, t, rng = state
        self.pos = [list(p) for p in pos]
        self.coin = list(coin)
        self.score = list(score)
        self.t = t
        self.rng.setstate(rng)


def tiny_grid_factory(length: int = 40, players: int = 2, **kw: int) -> Callable[[int], TinyGridGame]:
    """A ``make_game(seat)`` factory for :func:`~pyodide_runtime.host.testing.run_peers`."""
    return lambda seat: TinyGridGame(players=players, length=length, **kw)
