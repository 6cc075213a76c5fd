"""Coin Chase: a small grid game for 2 to 4 players, written as a PettingZoo-style parallel env.

Players walk on a grid collecting coins. A collected coin respawns at a random free cell, and hazards jump to
random free cells now and then, so ``step`` draws from the env's RNG every frame. Walking onto a hazard costs
points and stuns the player for a few frames. The first player to reach the target score ends the episode
(``terminated``); otherwise it ends after ``max_steps`` frames (``truncated``).

Actions (``Discrete(5)`` per player): 0 stay, 1 up, 2 right, 3 down, 4 left. Moves resolve simultaneously:
two players aiming at the same cell, swapping cells, or walking into a player who stays, are blocked.

The env implements the explicit state protocol (``get_state``/``set_state``, plain tuples plus the RNG state)
and renders a draw list (see :mod:`pyodide_runtime.envs.draw`). Load it as
``pyodide_runtime.examples.coin_chase:make_env``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyodide_runtime.envs import draw
from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

install_multiprocessing_stub()  # gymnasium imports _multiprocessing, absent in Pyodide
from gymnasium import spaces  # noqa: E402

__all__ = ["CoinChaseEnv", "make_env", "DEFAULT_CONFIG", "ACTION_NAMES"]

ACTION_NAMES = ("stay", "up", "right", "down", "left")
_MOVES = ((0, 0), (0, -1), (1, 0), (0, 1), (-1, 0))
_PLAYER_COLOURS = ("#2f6fdf", "#e0452b", "#2a9d4b", "#8e44ad")

DEFAULT_CONFIG: dict[str, Any] = {
    "width": 9,
    "height": 7,
    "players": 2,
    "coins": 3,
    "hazards": 2,
    "hazard_move_prob": 0.05,  # per hazard per frame
    "hazard_penalty": 1,
    "stun_steps": 5,
    "target_score": 10,
    "max_steps": 300,
    "cell_px": 48,
}

Cell = tuple[int, int]


def _validated(config: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(cfg)
    if unknown:
        raise ValueError(f"unknown coin_chase config keys: {sorted(unknown)}; known keys: {sorted(cfg)}")
    cfg.update(config or {})
    for key in ("width", "height", "players", "coins", "hazards", "stun_steps", "target_score", "max_steps"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool):
            raise ValueError(f"coin_chase config {key!r} must be an int, got {cfg[key]!r}")
    if not 2 <= cfg["players"] <= 4:
        raise ValueError(f"coin_chase supports 2 to 4 players, got {cfg['players']}")
    if cfg["width"] < 3 or cfg["height"] < 3:
        raise ValueError("coin_chase grid must be at least 3x3")
    if cfg["coins"] < 1 or cfg["hazards"] < 0 or cfg["stun_steps"] < 0:
        raise ValueError("coin_chase needs coins >= 1, hazards >= 0 and stun_steps >= 0")
    if cfg["players"] + cfg["coins"] + cfg["hazards"] > cfg["width"] * cfg["height"] // 2:
        raise ValueError("coin_chase grid too small: players + coins + hazards must fill at most half of it")
    if cfg["target_score"] < 1 or cfg["max_steps"] < 1:
        raise ValueError("coin_chase needs target_score >= 1 and max_steps >= 1")
    if not 0.0 <= float(cfg["hazard_move_prob"]) <= 1.0:
        raise ValueError("coin_chase hazard_move_prob must be in [0, 1]")
    return cfg


class CoinChaseEnv:
    """Coin Chase with the PettingZoo parallel API: ``reset(seed) -> (obs, infos)``, ``step(actions) -> 5 dicts``."""

    metadata = {"name": "coin_chase", "version": "1", "render_modes": ["draw_list"], "render_fps": 30}

    def __init__(self, config: dict[str, Any] | None = None, render_mode: str | None = "draw_list") -> None:
        cfg = _validated(config)
        self.config = cfg
        self.render_mode = render_mode
        self.width: int = cfg["width"]
        self.height: int = cfg["height"]
        self.max_steps: int = cfg["max_steps"]
        self.target_score: int = cfg["target_score"]
        self.possible_agents = [f"player_{i}" for i in range(cfg["players"])]
        self.agents: list[str] = []
        self.action_names = ACTION_NAMES
        self._n = cfg["players"]
        self._n_coins = cfg["coins"]
        self._n_hazards = cfg["hazards"]
        self._hazard_p = float(cfg["hazard_move_prob"])
        self._penalty = cfg["hazard_penalty"]
        self._stun_steps = cfg["stun_steps"]
        self._action_space = spaces.Discrete(len(ACTION_NAMES))
        grid = max(self.width, self.height)
        self._observation_space = spaces.Dict(
            {
                "position": spaces.Box(0, grid, (2,), np.int64),
                "score": spaces.Box(0, np.iinfo(np.int64).max, (), np.int64),
                "stunned": spaces.Box(0, self._stun_steps, (), np.int64),
                "others": spaces.Box(0, grid, (self._n - 1, 2), np.int64),
                "other_scores": spaces.Box(0, np.iinfo(np.int64).max, (self._n - 1,), np.int64),
                "coins": spaces.Box(0, grid, (self._n_coins, 2), np.int64),
                "hazards": spaces.Box(0, grid, (self._n_hazards, 2), np.int64),
                "time_left": spaces.Box(0, self.max_steps, (), np.int64),
            }
        )
        self.np_random: np.random.Generator = np.random.Generator(np.random.PCG64())
        self._t = 0
        self._positions: list[Cell] = []
        self._coins: list[Cell] = []
        self._hazards: list[Cell] = []
        self._scores: list[int] = []
        self._stun: list[int] = []
        self._over = True

    # -- PettingZoo parallel API ------------------------------------------------------------------------------

    @property
    def unwrapped(self) -> CoinChaseEnv:
        return self

    def action_space(self, agent: str) -> spaces.Discrete:
        """Every player has ``Discrete(5)``: stay, up, right, down, left."""
        return self._action_space

    def observation_space(self, agent: str) -> spaces.Dict:
        """Observations are dicts of plain ints and lists of ``[x, y]`` cells, matching this space's layout."""
        return self._observation_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode; ``seed`` reseeds the env's RNG (PCG64 from ``SeedSequence(seed)``, as gymnasium)."""
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        w, h = self.width, self.height
        corners: list[Cell] = [(0, 0), (w - 1, h - 1), (w - 1, 0), (0, h - 1)]
        self._t = 0
        self._positions = corners[: self._n]
        self._scores = [0] * self._n
        self._stun = [0] * self._n
        self._coins = []
        self._hazards = []
        for _ in range(self._n_coins):
            self._coins.append(self._free_cell())
        for _ in range(self._n_hazards):
            self._hazards.append(self._free_cell())
        self._over = False
        self.agents = list(self.possible_agents)
        infos = {agent: self._info(i, 0, False, False, False) for i, agent in enumerate(self.possible_agents)}
        return self._observations(), infos

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one frame. Missing players stay put; an action outside 0..4 raises ``ValueError``."""
        if self._over:
            raise RuntimeError("coin_chase episode is over; call reset()")
        n, w, h = self._n, self.width, self.height
        pos = self._positions
        stun = self._stun
        targets = list(pos)
        stunned = [False] * n
        blocked = [False] * n
        for i, agent in enumerate(self.possible_agents):
            action = int(actions.get(agent, 0))
            if not 0 <= action < 5:
                raise ValueError(f"coin_chase action for {agent} must be 0..4, got {action}")
            if stun[i] > 0:
                stun[i] -= 1
                stunned[i] = action != 0
                continue
            if action:
                dx, dy = _MOVES[action]
                x, y = pos[i][0] + dx, pos[i][1] + dy
                if 0 <= x < w and 0 <= y < h:
                    targets[i] = (x, y)
                else:
                    blocked[i] = True
        if n > 1:
            self._resolve_conflicts(targets, blocked)

        rewards = [0.0] * n
        collected = [0] * n
        hit = [False] * n
        moved = [targets[i] != pos[i] for i in range(n)]
        pos[:] = targets
        for i in range(n):
            cell = pos[i]
            if cell in self._coins:
                self._scores[i] += 1
                rewards[i] += 1.0
                collected[i] = 1
                self._coins[self._coins.index(cell)] = self._free_cell()
            elif moved[i] and cell in self._hazards:
                self._scores[i] = max(0, self._scores[i] - self._penalty)
                rewards[i] -= float(self._penalty)
                stun[i] = self._stun_steps
                hit[i] = True
        if self._hazard_p > 0.0:
            rng = self.np_random
            for k in range(self._n_hazards):
                if rng.random() < self._hazard_p:
                    self._hazards[k] = self._free_cell()

        self._t += 1
        won = max(self._scores) >= self.target_score
        timed_out = not won and self._t >= self.max_steps
        self._over = won or timed_out
        agents = self.possible_agents
        observations = self._observations()
        infos = {agent: self._info(i, collected[i], hit[i], blocked[i], stunned[i]) for i, agent in enumerate(agents)}
        if won:
            best = max(self._scores)
            for i, agent in enumerate(agents):
                infos[agent]["winner"] = self._scores[i] == best
        if self._over:
            self.agents = []
        return (
            observations,
            {agent: rewards[i] for i, agent in enumerate(agents)},
            dict.fromkeys(agents, won),
            dict.fromkeys(agents, timed_out),
            infos,
        )

    def _resolve_conflicts(self, targets: list[Cell], blocked: list[bool]) -> None:
        # Each round cancels, all at once, every move into a contested cell or a swap; a cancelled move leaves
        # its player standing, which can block others, so repeat until nothing changes (at most n rounds).
        pos = self._positions
        n = self._n
        while True:
            cancel = [
                i
                for i in range(n)
                if targets[i] != pos[i]
                and (
                    targets.count(targets[i]) > 1
                    or any(targets[i] == pos[j] and targets[j] == pos[i] for j in range(n) if j != i)
                )
            ]
            if not cancel:
                return
            for i in cancel:
                targets[i] = pos[i]
                blocked[i] = True

    def _free_cell(self) -> Cell:
        taken = set(self._positions)
        taken.update(self._coins)
        taken.update(self._hazards)
        cells = self.width * self.height
        rng = self.np_random
        while True:
            index = int(rng.integers(cells))
            cell = (index % self.width, index // self.width)
            if cell not in taken:
                return cell

    def _observations(self) -> dict[str, dict[str, Any]]:
        positions = [[x, y] for x, y in self._positions]
        coins = [[x, y] for x, y in self._coins]
        hazards = [[x, y] for x, y in self._hazards]
        time_left = self.max_steps - self._t
        scores = self._scores
        observations = {}
        for i, agent in enumerate(self.possible_agents):
            observations[agent] = {
                "position": positions[i],
                "score": scores[i],
                "stunned": self._stun[i],
                "others": positions[:i] + positions[i + 1 :],
                "other_scores": scores[:i] + scores[i + 1 :],
                "coins": coins,
                "hazards": hazards,
                "time_left": time_left,
            }
        return observations

    def _info(self, i: int, collected: int, hit: bool, blocked: bool, stunned: bool) -> dict[str, Any]:
        x, y = self._positions[i]
        nearest = min(abs(cx - x) + abs(cy - y) for cx, cy in self._coins)
        return {
            "collected": collected,
            "hit_hazard": hit,
            "blocked": blocked,
            "ignored_action": stunned,
            "nearest_coin_distance": nearest,
        }

    # -- explicit state protocol ----------------------------------------------------------------------------------

    def get_state(self) -> tuple:
        """Everything ``step`` depends on, as immutable tuples plus the RNG's state dict (a fresh copy)."""
        return (
            self._t,
            tuple(self._positions),
            tuple(self._coins),
            tuple(self._hazards),
            tuple(self._scores),
            tuple(self._stun),
            self._over,
            self.np_random.bit_generator.state,
        )

    def set_state(self, state: tuple) -> None:
        """Restore a state from :meth:`get_state`; the same state may be restored any number of times."""
        t, positions, coins, hazards, scores, stun, over, rng_state = state
        self._t = t
        self._positions = list(positions)
        self._coins = list(coins)
        self._hazards = list(hazards)
        self._scores = list(scores)
        self._stun = list(stun)
        self._over = over
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if over else list(self.possible_agents)

    # -- rendering -------------------------------------------------------------------------------------------------

    def render(self) -> list[dict[str, Any]] | None:
        """A draw list: grid, hazards, coins, players, then a status line with scores and time left."""
        if self.render_mode is None:
            return None
        c = self.config["cell_px"]
        w, h = self.width * c, self.height * c
        shapes = [draw.canvas(w, h + c, "#f4f1e8")]
        for x in range(self.width + 1):
            shapes.append(draw.line(x * c, 0, x * c, h, "#d8d2c0"))
        for y in range(self.height + 1):
            shapes.append(draw.line(0, y * c, w, y * c, "#d8d2c0"))
        pad = c // 8
        for x, y in self._hazards:
            shapes.append(draw.rect(x * c + pad, y * c + pad, c - 2 * pad, c - 2 * pad, "#3b3b3b", "#e0452b", 3))
        for x, y in self._coins:
            shapes.append(draw.circle(x * c + c / 2, y * c + c / 2, c / 5, "#f2c200", "#a67c00", 2))
        for i, (x, y) in enumerate(self._positions):
            colour = _PLAYER_COLOURS[i]
            fill = "#bbbbbb" if self._stun[i] else colour
            shapes.append(draw.circle(x * c + c / 2, y * c + c / 2, c * 0.38, fill, colour, 3))
            shapes.append(draw.text(x * c + c / 2, y * c + c * 0.62, str(i + 1), "#ffffff", c // 3, "center", True))
        status = "   ".join(f"P{i + 1}: {s}" for i, s in enumerate(self._scores))
        shapes.append(draw.text(pad, h + c * 0.65, status, "#222222", c // 3, "left", True))
        shapes.append(draw.text(w - pad, h + c * 0.65, f"time {self.max_steps - self._t}", "#222222", c // 3, "right"))
        return shapes

    def close(self) -> None:
        """Nothing to release."""


def make_env(config: dict[str, Any] | None = None) -> CoinChaseEnv:
    """Build a Coin Chase env. Config keys and defaults: :data:`DEFAULT_CONFIG`."""
    return CoinChaseEnv(config)
