"""The adapters: seats, bots, input checks, per-agent results for every env shape."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from pyodide_runtime.bots import CoinChasePolicy, ConstantPolicy, RandomPolicy
from pyodide_runtime.canonical import digest
from pyodide_runtime.examples.coin_chase import make_env
from pyodide_runtime.envs.loading import make_game

from env_fixtures import shapes


def coin_game(**options):
    return make_game(make_env(), **options)


# -- seats, bots and inputs --------------------------------------------------------------------------------------------


def test_every_agent_without_a_bot_gets_a_seat_in_agent_order():
    game = make_game(make_env({"players": 4}), bots={"player_1": "random"})
    assert game.agents == ("player_0", "player_1", "player_2", "player_3")
    assert game.seats == ("player_0", "player_2", "player_3")
    assert [game.input_count(s) for s in range(3)] == [5, 5, 5]
    assert [game.default_input(s) for s in range(3)] == [0, 0, 0]


def test_explicit_seats_and_default_inputs():
    game = coin_game(seats=["player_1", "player_0"], default_inputs=[3, 0])
    assert game.seats == ("player_1", "player_0")
    assert game.default_input(0) == 3
    game.reset(0)
    result = game.step([2, 4])
    assert result.actions == {"player_1": 2, "player_0": 4}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"seats": ["player_0"]}, "neither a seat nor a bot"),
        ({"seats": ["player_0", "player_0"], "bots": {"player_1": "idle"}}, "two seats"),
        ({"seats": ["player_0", "player_1"], "bots": {"player_1": "idle"}}, "both a seat and a bot"),
        ({"bots": {"player_9": "idle"}}, "unknown agent"),
        ({"bots": {"player_1": "sneaky"}}, "unknown bot"),
        ({"default_inputs": [0]}, "one input per seat"),
        ({"default_inputs": [0, 5]}, "out of range"),
    ],
)
def test_bad_seat_and_bot_configurations_are_refused(options, words):
    with pytest.raises(ValueError, match=words):
        coin_game(verify=False, **options)


@pytest.mark.parametrize("bad", [[5, 0], [-1, 0], [1.0, 0], [True, 0], ["1", 0], [None, 0], [0], [0, 0, 0]])
def test_bad_human_inputs_raise_value_error(bad):
    game = coin_game()
    game.reset(0)
    with pytest.raises(ValueError):
        game.step(bad)


def test_numpy_integer_inputs_are_accepted_as_ints():
    game = coin_game()
    game.reset(0)
    result = game.step([np.int64(2), np.uint8(4)])
    assert result.actions == {"player_0": 2, "player_1": 4}
    assert all(type(a) is int for a in result.actions.values())


def test_stepping_after_the_episode_ends_needs_a_reset():
    game = make_game(make_env({"max_steps": 3}))
    with pytest.raises(RuntimeError, match="reset"):
        game.step([0, 0])
    game.reset(0)
    results = [game.step([0, 0]) for _ in range(3)]
    assert [r.episode_over for r in results] == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        game.step([0, 0])
    game.reset(1)
    assert not game.step([0, 0]).episode_over


def test_bots_act_from_the_previous_observation_with_the_games_rng():
    seen = []

    def spy(observation, rng):
        seen.append(observation)
        return int(rng.integers(5))

    game = coin_game(bots={"player_1": spy})
    seen.clear()  # verification at build time already exercised the bot
    reset = game.reset(4)
    first = game.step([0])
    second = game.step([0])
    assert seen[0] is reset.observations["player_1"]
    assert seen[1] is first.observations["player_1"]
    assert len(seen) == 2 and "player_1" in second.actions


def test_bot_actions_are_checked():
    game = coin_game(bots={"player_1": lambda obs, rng: 7}, verify=False)
    game.reset(0)
    with pytest.raises(ValueError, match="out of range"):
        game.step([0])
    game = coin_game(bots={"player_1": lambda obs, rng: "up"}, verify=False)
    game.reset(0)
    with pytest.raises(ValueError, match="not an action index"):
        game.step([0])


def test_bots_are_reseeded_from_the_episode_seed():
    def trace(seed):
        game = coin_game(bots={"player_0": RandomPolicy(5), "player_1": CoinChasePolicy(epsilon=0.5)})
        game.reset(seed)
        return [tuple(game.step([]).actions.values()) for _ in range(40)]

    assert trace(1) == trace(1), "two peers building the same game agree"
    assert trace(1) != trace(2)


def test_describe_lists_seats_bots_and_snapshot_method():
    game = coin_game(bots={"player_1": CoinChasePolicy()})
    info = game.describe()
    assert info["seats"] == ["player_0"]
    assert info["bots"] == {"player_1": "CoinChasePolicy"}
    assert info["action_counts"] == [5, 5]
    assert info["snapshot_method"] == "explicit"
    assert info["action_names"] == list(game.env.action_names) and len(info["action_names"]) == game.input_count(0)
    assert make_game(gym.make("CartPole-v1")).describe()["action_names"] is None
    digest(info)  # the description is exportable as canonical JSON


# -- PettingZoo-style parallel envs ------------------------------------------------------------------------------------


def test_parallel_results_are_keyed_by_agent_and_match_the_env():
    env = make_env()
    game = make_game(env, verify=False)
    reset = game.reset(9)
    twin = make_env()
    twin_obs, _ = twin.reset(seed=9)
    assert digest(reset.observations) == digest(twin_obs)
    result = game.step([2, 3])
    obs, rewards, terminated, truncated, infos = twin.step({"player_0": 2, "player_1": 3})
    assert digest(result.observations) == digest(obs)
    assert result.rewards == rewards and result.terminated == terminated and result.truncated == truncated
    assert digest(result.infos) == digest(infos)
    assert result.actions == {"player_0": 2, "player_1": 3}


def test_integer_agent_ids_become_strings_but_the_env_gets_its_own_ids():
    env = shapes.IntIdsEnv()
    game = make_game(env, verify=False)
    assert game.agents == ("0", "1")
    reset = game.reset(0)
    assert set(reset.observations) == {"0", "1"}
    first = game.step([1, 0])
    assert env.received[-1] == {0: 1, 1: 0}
    assert first.observations == {"0": 11, "1": 10}
    second = game.step([0, 1])
    assert second.terminated == {"0": False, "1": True} and not second.episode_over


def test_agents_that_leave_get_no_action_and_the_episode_ends_when_all_are_done():
    env = shapes.IntIdsEnv()
    game = make_game(env, bots={1: ConstantPolicy(1)}, verify=False)
    game.reset(0)
    assert game.step([1]).actions == {"0": 1, "1": 1}
    game.step([1])
    third = game.step([0])
    assert env.received[-1] == {0: 0}, "agent 1 left, so neither its bot nor a seat acts for it"
    assert third.actions == {"0": 0} and not third.episode_over
    assert game.step([0]).episode_over


def test_discrete_spaces_with_a_start_offset():
    env = shapes.TeamEnv()
    game = make_game(env, verify=False)
    assert [game.input_count(s) for s in range(2)] == [2, 4]
    game.reset(0)
    result = game.step([1, 0])
    assert env.received[-1] == (1, 1), "input 0 of Discrete(4, start=1) is action 1"
    assert result.actions == {"player_0": 1, "player_1": 0}


# -- gymnasium multi-agent (Dict / Tuple) ------------------------------------------------------------------------------


def test_rllib_style_returns_use_all_for_the_episode_end():
    env = shapes.DuelEnv(length=8)
    game = make_game(env, verify=False)
    assert game.agents == ("left", "right")
    game.reset(0)
    results = [game.step([2, 1]) for _ in range(8)]
    assert env.received[0] == {"left": 2, "right": 1}
    assert results[5].terminated["left"] and not results[5].episode_over, "one agent done is not the episode"
    assert [r.episode_over for r in results] == [False] * 7 + [True]
    assert "__all__" not in results[-1].terminated
    assert set(results[0].infos) == {"left", "right"} and "crit" in results[0].infos["left"]


class RelayEnv(gym.Env):
    """RLlib-style: only the agent whose turn it is gets an observation; truncation comes through ``__all__``."""

    def __init__(self):
        self.action_space = gym.spaces.Dict({"x": gym.spaces.Discrete(2), "y": gym.spaces.Discrete(2)})
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"x": 0}, {}

    def step(self, action):
        self.t += 1
        turn = "x" if self.t % 2 == 0 else "y"
        over = self.t >= 4
        return {turn: self.t}, {turn: 1.0}, {"__all__": False}, {"__all__": over}, {}


def test_partial_per_agent_observations_and_all_truncation():
    seen = []

    def bot(observation, rng):
        seen.append(observation)
        return 1

    game = make_game(RelayEnv(), bots={"y": bot}, verify=False)
    reset = game.reset(0)
    assert reset.observations == {"x": 0}
    first = game.step([0])
    assert seen == [], "y had no observation, so its bot did not act"
    assert first.actions == {"x": 0, "y": 0}, "the env still received a full Dict action"
    assert first.observations == {"y": 1} and first.rewards == {"x": 0.0, "y": 1.0}
    second = game.step([1])
    assert seen == [1] and second.actions == {"x": 1, "y": 1}
    assert [game.step([0]).episode_over for _ in range(2)] == [False, True]


def test_shared_values_are_given_to_every_agent():
    env = shapes.TeamEnv()
    game = make_game(env, verify=False)
    game.reset(3)
    result = game.step([1, 3])
    assert result.observations["player_0"] is result.observations["player_1"]
    assert np.array_equal(result.observations["player_0"], env.state)
    assert result.rewards["player_0"] == result.rewards["player_1"] == float(env.state.sum())
    assert result.infos == {"player_0": {"phase": "play"}, "player_1": {"phase": "play"}}
    assert result.terminated == {"player_0": False, "player_1": False}


# -- single-agent gymnasium --------------------------------------------------------------------------------------------


def test_cartpole_with_one_human_seat():
    game = make_game(gym.make("CartPole-v1"))
    assert game.agents == game.seats == ("player_0",)
    assert game.input_count(0) == 2
    twin = gym.make("CartPole-v1")
    obs, _ = twin.reset(seed=5)
    assert np.array_equal(game.reset(5).observations["player_0"], obs)
    for action in [0, 1, 1, 0, 1]:
        result = game.step([action])
        obs, reward, terminated, truncated, _ = twin.step(action)
        assert np.array_equal(result.observations["player_0"], obs)
        assert result.rewards == {"player_0": reward}
        assert result.episode_over == (terminated or truncated)


def test_single_agent_env_played_entirely_by_a_bot():
    game = make_game(gym.make("CartPole-v1"), bots={"player_0": "random"})
    assert game.seats == ()
    game.reset(0)
    frames = 0
    while not game.step([]).episode_over:
        frames += 1
    assert frames > 0
    game.reset(0)
    with pytest.raises(ValueError, match="expected 0 inputs"):
        game.step([0])


def test_render_passes_the_envs_frame_through():
    game = coin_game()
    game.reset(0)
    assert game.render() == game.env.render()
    assert game.render()[0]["type"] == "canvas"
    cartpole = make_game(gym.make("CartPole-v1"))
    cartpole.reset(0)
    assert cartpole.render() is None, "no render mode: nothing to draw, and no warning per frame"
