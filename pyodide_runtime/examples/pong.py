"""Pong: two paddles, one ball, first to the target score wins. A competitive real-time two-player game.

Each player moves a paddle up and down its own side (``Discrete(3)``: 0 stay, 1 up, 2 down). The ball bounces
off the top and bottom walls and off the paddles; where it hits a paddle sets its new vertical speed, and every
return makes it a little faster. A ball past a paddle scores a point for the other player (reward +1 / -1) and is
served again towards the player who conceded, at an angle drawn from the env's RNG. The episode ends when a
player reaches ``target_score`` (``terminated``) or after ``max_steps`` frames (``truncated``).

All positions and speeds are integers (the ball in 1/16 of a unit), so every peer computes exactly the same game
in any interpreter. The env implements the explicit state protocol and renders a draw list. Load it as
``pyodide_runtime.examples.pong:make_env``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyodide_runtime.envs import draw
from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

install_multiprocessing_stub()  # gymnasium imports _multiprocessing, absent in Pyodide
from gymnasium import spaces  # noqa: E402

__all__ = ["PongEnv", "make_env", "DEFAULT_CONFIG", "ACTION_NAMES"]

ACTION_NAMES = ("stay", "up", "down")
_SUB = 16  # ball coordinates are in 1/16 units

DEFAULT_CONFIG: dict[str, Any] = {
    "width": 80,  # field, in units
    "height": 50,
    "paddle_height": 10,
    "paddle_speed": 2,  # units per frame
    "ball_speed": 12,  # initial horizontal speed, 1/16 units per frame
    "max_ball_speed": 28,
    "serve_delay": 20,  # frames the ball waits before a serve
    "target_score": 5,
    "max_steps": 1800,
    "unit_px": 8,
}


def _validated(config: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(cfg)
    if unknown:
        raise ValueError(f"unknown pong config keys: {sorted(unknown)}; known keys: {sorted(cfg)}")
    cfg.update(config or {})
    for key, value in cfg.items():
        if type(value) is not int or value < 1:
            raise ValueError(f"pong config {key!r} must be a positive int, got {value!r}")
    if cfg["paddle_height"] >= cfg["height"] or cfg["width"] < 20:
        raise ValueError("pong needs paddle_height < height and width >= 20")
    if not cfg["ball_speed"] <= cfg["max_ball_speed"] < 4 * _SUB:
        raise ValueError(f"pong needs ball_speed <= max_ball_speed < {4 * _SUB}")
    return cfg


class PongEnv:
    """Pong with the PettingZoo parallel API (agents ``left`` and ``right``)."""

    metadata = {"name": "pong", "version": "1", "render_modes": ["draw_list"], "render_fps": 30}

    def __init__(self, config: dict[str, Any] | None = None, render_mode: str | None = "draw_list") -> None:
        cfg = _validated(config)
        self.config = cfg
        self.render_mode = render_mode
        self.possible_agents = ["left", "right"]
        self.agents: list[str] = []
        self.action_names = ACTION_NAMES
        self.width: int = cfg["width"]
        self.height: int = cfg["height"]
        self.max_steps: int = cfg["max_steps"]
        self._action_space = spaces.Discrete(len(ACTION_NAMES))
        big = max(self.width, self.height) * _SUB
        self._observation_space = spaces.Dict(
            {
                "paddle": spaces.Box(0, self.height, (), np.int64),
                "opponent": spaces.Box(0, self.height, (), np.int64),
                "ball": spaces.Box(-big, big, (2,), np.int64),
                "ball_velocity": spaces.Box(-big, big, (2,), np.int64),
                "score": spaces.Box(0, cfg["target_score"], (2,), np.int64),
                "time_left": spaces.Box(0, self.max_steps, (), np.int64),
            }
        )
        self.np_random: np.random.Generator = np.random.Generator(np.random.PCG64())
        self._t = 0
        self._paddles = [0, 0]  # top edge of each paddle, in units
        self._ball = [0, 0]  # centre, in 1/16 units
        self._velocity = [0, 0]
        self._wait = 0  # frames until the ball is served
        self._scores = [0, 0]
        self._hits = [0, 0]
        self._over = True

    @property
    def unwrapped(self) -> PongEnv:
        return self

    def action_space(self, agent: str) -> spaces.Discrete:
        """Both players have ``Discrete(3)``: stay, up, down."""
        return self._action_space

    def observation_space(self, agent: str) -> spaces.Dict:
        """Paddles, ball and score as plain ints; ``paddle``/``score[0]`` are the observing player's own."""
        return self._observation_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start a match; ``seed`` reseeds the env's RNG (PCG64 from ``SeedSequence(seed)``)."""
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        top = (self.height - self.config["paddle_height"]) // 2
        self._t = 0
        self._paddles = [top, top]
        self._scores = [0, 0]
        self._hits = [0, 0]
        self._serve(int(self.np_random.integers(2)))
        self._over = False
        self.agents = list(self.possible_agents)
        return self._observations(), {a: self._info(i, False) for i, a in enumerate(self.possible_agents)}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one frame. A missing player stays; an action outside 0..2 raises ``ValueError``."""
        if self._over:
            raise RuntimeError("pong match is over; call reset()")
        cfg = self.config
        for i, agent in enumerate(self.possible_agents):
            action = int(actions.get(agent, 0))
            if not 0 <= action < 3:
                raise ValueError(f"pong action for {agent} must be 0..2, got {action}")
            move = (0, -cfg["paddle_speed"], cfg["paddle_speed"])[action]
            self._paddles[i] = min(max(self._paddles[i] + move, 0), self.height - cfg["paddle_height"])
        rewards = [0.0, 0.0]
        returned = [False, False]
        scorer = -1
        if self._wait > 0:
            self._wait -= 1
        else:
            scorer = self._move_ball(returned)
        if scorer >= 0:
            self._scores[scorer] += 1
            rewards[scorer], rewards[1 - scorer] = 1.0, -1.0
            self._serve(1 - scorer)
        self._t += 1
        won = max(self._scores) >= cfg["target_score"]
        timed_out = not won and self._t >= self.max_steps
        self._over = won or timed_out
        agents = self.possible_agents
        infos = {a: self._info(i, returned[i]) for i, a in enumerate(agents)}
        for i, agent in enumerate(agents):
            infos[agent]["scored"] = scorer == i
            if won:
                infos[agent]["winner"] = self._scores[i] >= cfg["target_score"]
        if self._over:
            self.agents = []
        return (
            self._observations(),
            {a: rewards[i] for i, a in enumerate(agents)},
            dict.fromkeys(agents, won),
            dict.fromkeys(agents, timed_out),
            infos,
        )

    def _serve(self, towards: int) -> None:
        """Put the ball in the middle, moving towards player ``towards`` at a random angle."""
        speed = self.config["ball_speed"]
        self._ball = [self.width * _SUB // 2, self.height * _SUB // 2]
        vy = int(self.np_random.integers(-speed // 2, speed // 2 + 1))
        self._velocity = [-speed if towards == 0 else speed, vy]
        self._wait = self.config["serve_delay"]

    def _move_ball(self, returned: list[bool]) -> int:
        """Move the ball one frame; the index of the player who scored, else -1."""
        cfg = self.config
        bx, by = self._ball
        vx, vy = self._velocity
        bx, by = bx + vx, by + vy
        top, bottom = 0, self.height * _SUB
        if by < top:
            by, vy = -by, -vy
        elif by > bottom:
            by, vy = 2 * bottom - by, -vy
        paddle_px = cfg["paddle_height"] * _SUB
        for i, face in ((0, 2 * _SUB), (1, (self.width - 2) * _SUB)):
            moving_in = vx < 0 if i == 0 else vx > 0
            crossed = bx <= face if i == 0 else bx >= face
            previous = self._ball[0]
            was_out = previous > face if i == 0 else previous < face
            if not (moving_in and crossed and was_out):
                continue
            paddle_top = self._paddles[i] * _SUB
            if paddle_top - _SUB // 2 <= by <= paddle_top + paddle_px + _SUB // 2:
                # The hit point sets the new vertical speed: the paddle's ends send the ball off steeply.
                offset = by - (paddle_top + paddle_px // 2)
                speed = min(abs(vx) + 1, cfg["max_ball_speed"])
                vx = speed if i == 0 else -speed
                vy = offset * speed // (paddle_px // 2 + _SUB)
                bx = 2 * face - bx
                self._hits[i] += 1
                returned[i] = True
        self._ball = [bx, by]
        self._velocity = [vx, vy]
        if bx < 0:
            return 1
        if bx > self.width * _SUB:
            return 0
        return -1

    def _observations(self) -> dict[str, dict[str, Any]]:
        ball, velocity = list(self._ball), list(self._velocity)
        time_left = self.max_steps - self._t
        out = {}
        for i, agent in enumerate(self.possible_agents):
            out[agent] = {
                "paddle": self._paddles[i],
                "opponent": self._paddles[1 - i],
                "ball": ball,
                "ball_velocity": velocity,
                "score": [self._scores[i], self._scores[1 - i]],
                "time_left": time_left,
            }
        return out

    def _info(self, i: int, returned: bool) -> dict[str, Any]:
        return {"returned": returned, "returns": self._hits[i], "serving": self._wait > 0}

    # -- explicit state protocol ----------------------------------------------------------------------------------

    def get_state(self) -> tuple:
        """Everything ``step`` depends on, as immutable tuples plus the RNG's state dict (a fresh copy)."""
        return (self._t, tuple(self._paddles), tuple(self._ball), tuple(self._velocity), self._wait,
                tuple(self._scores), tuple(self._hits), self._over, self.np_random.bit_generator.state)

    def set_state(self, state: tuple) -> None:
        """Restore a state from :meth:`get_state`; the same state may be restored any number of times."""
        t, paddles, ball, velocity, wait, scores, hits, over, rng_state = state
        self._t, self._wait, self._over = t, wait, over
        self._paddles, self._ball, self._velocity = list(paddles), list(ball), list(velocity)
        self._scores, self._hits = list(scores), list(hits)
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if over else list(self.possible_agents)

    # -- rendering -------------------------------------------------------------------------------------------------

    def render(self) -> list[dict[str, Any]] | None:
        """A draw list: field, centre line, paddles, ball and the score."""
        if self.render_mode is None:
            return None
        u = self.config["unit_px"]
        w, h = self.width * u, self.height * u
        shapes = [draw.canvas(w, h, "#101820")]
        for y in range(0, self.height, 4):
            shapes.append(draw.rect(w / 2 - u / 4, y * u, u / 2, 2 * u, "#3a4a5a"))
        ph = self.config["paddle_height"] * u
        shapes.append(draw.rect(1 * u, self._paddles[0] * u, u, ph, "#4fa3ff"))
        shapes.append(draw.rect((self.width - 2) * u, self._paddles[1] * u, u, ph, "#ff7a4f"))
        if self._wait == 0 or self._wait % 8 < 4:  # the ball blinks before a serve
            shapes.append(draw.circle(self._ball[0] * u / _SUB, self._ball[1] * u / _SUB, u * 0.8, "#f4f1e8"))
        shapes.append(draw.text(w / 2 - 3 * u, 5 * u, str(self._scores[0]), "#4fa3ff", 4 * u, "right", True))
        shapes.append(draw.text(w / 2 + 3 * u, 5 * u, str(self._scores[1]), "#ff7a4f", 4 * u, "left", True))
        shapes.append(draw.text(w - u, h - u, f"time {self.max_steps - self._t}", "#8899aa", 2 * u, "right"))
        return shapes

    def close(self) -> None:
        """Nothing to release."""


def make_env(config: dict[str, Any] | None = None) -> PongEnv:
    """Build a Pong env. Config keys and defaults: :data:`DEFAULT_CONFIG`."""
    return PongEnv(config)
