"""One small env per supported (and refused) env shape, for the adapter and loader tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class DuelEnv(gym.Env):
    """RLlib-style multi-agent returns: per-agent dicts, ``"__all__"`` decides the end.

    ``left`` reports itself terminated from frame 5 on, but the episode lasts until frame ``length``.
    """

    metadata = {"name": "duel", "version": "3"}

    def __init__(self, length: int = 10) -> None:
        self.action_space = spaces.Dict({"left": spaces.Discrete(3), "right": spaces.Discrete(3)})
        self.observation_space = spaces.Dict({"left": spaces.Discrete(100), "right": spaces.Discrete(100)})
        self.length = length
        self.received: list[Any] = []
        self.t = 0
        self.hp = [10, 10]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.hp = [10, 10]
        return {"left": 10, "right": 10}, {"left": {"hp": 10}, "right": {"hp": 10}}

    def step(self, action):
        self.received.append(action)
        self.t += 1
        crit = int(self.np_random.integers(2))
        self.hp[1] -= action["left"] + crit
        self.hp[0] -= action["right"]
        over = self.t >= self.length
        obs = {"left": self.hp[0], "right": self.hp[1]}
        rewards = {"left": float(action["left"]), "right": float(action["right"])}
        terminated = {"left": self.t >= 5, "right": False, "__all__": over}
        truncated = {"left": False, "right": False, "__all__": False}
        return obs, rewards, terminated, truncated, {"left": {"crit": crit}, "right": {}}

    def get_state(self):
        return (self.t, tuple(self.hp), self.np_random.bit_generator.state)

    def set_state(self, state):
        self.t, hp, rng_state = state
        self.hp = list(hp)
        self.np_random.bit_generator.state = rng_state


class TeamEnv(gym.Env):
    """A ``Tuple`` of Discrete actions (the second starting at 1) with shared observation, reward and flags."""

    metadata = {"name": "team"}

    def __init__(self) -> None:
        self.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(4, start=1)))
        self.observation_space = spaces.Box(-100, 100, (2,), np.float64)
        self.received: list[Any] = []
        self.state = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1, 1, 2)
        return self.state.copy(), {"phase": "start"}

    def step(self, action):
        self.received.append(action)
        self.state = self.state + np.array(action, dtype=float) + self.np_random.normal(0, 0.1, 2)
        done = bool(self.state.sum() > 20)
        return self.state.copy(), float(self.state.sum()), done, False, {"phase": "play"}


class IntIdsEnv(ParallelEnv):
    """A PettingZoo ParallelEnv whose agent ids are ints; it checks it receives its own ids."""

    metadata = {"name": "int_ids"}

    def __init__(self) -> None:
        self.possible_agents = [0, 1]
        self.agents = []
        self.received: list[Any] = []
        self.t = 0

    def action_space(self, agent):
        return spaces.Discrete(2)

    def observation_space(self, agent):
        return spaces.Discrete(100)

    def reset(self, seed=None, options=None):
        self.agents = [0, 1]
        self.t = 0
        return {0: 0, 1: 0}, {0: {}, 1: {}}

    def step(self, actions):
        assert set(actions) <= {0, 1}, actions
        self.received.append(dict(actions))
        self.t += 1
        # agent 1 leaves after frame 2; the episode ends at frame 4
        if self.t == 2:
            self.agents = [0]
        if self.t >= 4:
            self.agents = []
        ids = [0] if self.t > 2 else [0, 1]
        obs = {a: self.t * 10 + actions.get(a, 0) for a in ids}
        return (
            obs,
            {a: 1 for a in ids},
            {a: self.t >= 4 or (a == 1 and self.t == 2) for a in ids},
            dict.fromkeys(ids, False),
            {a: {} for a in ids},
        )

    def get_state(self):
        return (self.t, tuple(self.agents))

    def set_state(self, state):
        self.t, agents = state
        self.agents = list(agents)


class CounterEnv(gym.Env):
    """Single-agent env with the explicit state protocol, meant to be wrapped in ``TimeLimit``."""

    def __init__(self) -> None:
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Box(-1000, 1000, (), np.int64)
        self.total = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.total = 0
        return self.total, {}

    def step(self, action):
        self.total += int(action) - 1 + int(self.np_random.integers(-1, 2))
        return self.total, float(self.total), False, False, {}

    def get_state(self):
        return (self.total, self.np_random.bit_generator.state)

    def set_state(self, state):
        self.total, rng_state = state
        self.np_random.bit_generator.state = rng_state


class BoxEnv(gym.Env):
    """Continuous actions: cannot be played with discrete inputs."""

    action_space = spaces.Box(-1, 1, (2,))
    observation_space = spaces.Box(-1, 1, (2,))

    def step(self, action):
        return np.zeros(2), 0.0, False, False, {}


class FakeAecEnv:
    """Looks like a PettingZoo AEC env."""

    possible_agents = ["a"]

    def agent_iter(self):
        return iter(())

    def last(self):
        return None


def make_duel(config: dict | None = None) -> DuelEnv:
    return DuelEnv(**(config or {}))


def make_cartpole(config: dict | None = None) -> gym.Env:
    return gym.make("CartPole-v1", **(config or {}))


def make_wrapped_counter(config: dict | None = None) -> gym.Env:
    return gym.wrappers.TimeLimit(CounterEnv(), max_episode_steps=(config or {}).get("max_steps", 25))


def make_ready_game():
    from pyodide_runtime.envs.loading import load_game

    return load_game("pyodide_runtime.examples.coin_chase:make_env", {"players": 3})


def make_without_config():
    return DuelEnv()


def factory_that_fails(config: dict | None = None):
    raise RuntimeError("the lab's licence server is down")
