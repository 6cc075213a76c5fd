"""Snapshot methods, global RNG capture, and the start-up verification that refuses unfaithful snapshots."""

from __future__ import annotations

import random
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyodide_runtime.bots import CoinChasePolicy, RandomPolicy
from pyodide_runtime.canonical import digest
from pyodide_runtime.envs.base import Game, ResetResult, StepResult
from pyodide_runtime.examples.coin_chase import make_env
from pyodide_runtime.envs.loading import make_game
from pyodide_runtime.envs.snapshot_check import result_fields, verify_snapshots
from pyodide_runtime.snapshot import (
    AttributeSnapshotter,
    DeepcopySnapshotter,
    ExplicitSnapshotter,
    GlobalRngState,
    PickleSnapshotter,
    SnapshotError,
    WrappedExplicitSnapshotter,
    choose_snapshotter,
)

from env_fixtures import rollback_breakers, shapes


def trace(game: Game, plan: Sequence[Sequence[int]]) -> list[str]:
    out = []
    for inputs in plan:
        result = game.step(inputs)
        out.append(digest(result_fields(result)))
        if result.episode_over:
            break
    return out


# -- choosing a method -------------------------------------------------------------------------------------------------


def test_auto_picks_explicit_then_wrapped_explicit_then_pickle():
    assert type(choose_snapshotter(make_env())) is ExplicitSnapshotter
    assert type(choose_snapshotter(shapes.make_wrapped_counter())) is WrappedExplicitSnapshotter
    assert type(choose_snapshotter(gym.make("CartPole-v1"))) is PickleSnapshotter
    assert type(choose_snapshotter(make_env(), "deepcopy")) is DeepcopySnapshotter
    assert type(choose_snapshotter(make_env(), "pickle")) is PickleSnapshotter
    assert type(choose_snapshotter(make_env(), "attributes")) is AttributeSnapshotter


def test_bad_method_requests():
    with pytest.raises(ValueError, match="unknown snapshot method"):
        choose_snapshotter(make_env(), "magic")
    with pytest.raises(SnapshotError, match="get_state"):
        choose_snapshotter(gym.make("CartPole-v1"), "explicit")


@pytest.mark.parametrize(
    ("method", "chosen"),
    [("pickle", "pickle"), ("deepcopy", "deepcopy"), ("attributes", "attributes"), ("auto", "attributes")],
)
def test_cartpole_snapshots_restore_faithfully(method, chosen):
    game = make_game(gym.make("CartPole-v1"), snapshot=method)
    assert game.snapshot_method == chosen
    game.reset(3)
    game.step([1])
    snapshot = game.get_state()
    plan = [[k % 2] for k in range(6)]
    first = trace(game, plan)
    live = game.env
    game.set_state(snapshot)
    if chosen == "attributes":
        assert game.env is live, "attributes are written back into the same env objects"
    else:
        assert game.env is not live, "pickle and deepcopy swap in a fresh copy of the env"
    assert trace(game, plan) == first
    game.set_state(snapshot)
    assert trace(game, plan) == first


def test_auto_without_verification_pickles():
    assert make_game(gym.make("CartPole-v1"), verify=False).snapshot_method == "pickle"


class SlotsEnv:
    """A gymnasium-style env without ``__dict__``: attributes cannot be copied, but it pickles."""

    __slots__ = ("action_space", "np_random", "x")

    def __init__(self):
        self.action_space = gym.spaces.Discrete(2)
        self.np_random = np.random.Generator(np.random.PCG64(0))
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        self.np_random = np.random.Generator(np.random.PCG64(seed))
        self.x = 0.0
        return self.x, {}

    def step(self, action):
        self.x += action - 0.5 + self.np_random.normal()
        return self.x, -abs(self.x), False, abs(self.x) > 5, {}


def test_auto_falls_back_to_pickle_when_attributes_do_not_fit():
    assert make_game(SlotsEnv()).snapshot_method == "pickle"
    with pytest.raises(SnapshotError, match="cannot be copied"):
        verify_snapshots(make_game(SlotsEnv(), snapshot="attributes", verify=False))


def test_attribute_snapshots_handle_envs_that_do_not_pickle():
    game = make_game(rollback_breakers.UnpicklableEnv())
    assert game.snapshot_method == "attributes"
    game.reset(0)
    snapshot = game.get_state()
    first = trace(game, [[2, 0]] * 10)
    game.set_state(snapshot)
    assert trace(game, [[2, 0]] * 10) == first


def test_attribute_snapshots_keep_shared_references_and_drop_new_attributes():
    env = gym.make("CartPole-v1")
    game = make_game(env, snapshot="attributes", verify=False)
    game.reset(0)
    inner = env.unwrapped
    inner.history = [inner.state]
    inner.latest = inner.history
    snapshot = game.get_state()
    inner.history.append(inner.state)
    inner.added_later = 1
    game.set_state(snapshot)
    assert inner.latest is inner.history and len(inner.history) == 1
    assert not hasattr(inner, "added_later")


def test_wrapper_counters_are_part_of_an_explicit_snapshot():
    max_steps = 5
    game = make_game(shapes.make_wrapped_counter({"max_steps": max_steps}))
    assert game.snapshot_method == "explicit+wrappers"
    game.reset(0)
    for _ in range(3):
        game.step([2])
    snapshot = game.get_state()
    ends = [game.step([1]).truncated["player_0"] for _ in range(max_steps - 3)]
    assert ends == [False, True]
    game.set_state(snapshot)
    assert [game.step([1]).truncated["player_0"] for _ in range(max_steps - 3)] == ends


def test_wrappers_that_forward_attributes_still_save_their_own_state():
    from pettingzoo.utils.wrappers import BaseParallelWrapper

    class Countdown(BaseParallelWrapper):
        """Ends the episode after a fixed number of frames; its counter lives in the wrapper."""

        def reset(self, seed=None, options=None):
            self.left = 6
            return self.env.reset(seed=seed, options=options)

        def step(self, actions):
            self.left -= 1
            obs, rewards, terminated, truncated, infos = self.env.step(actions)
            return obs, rewards, terminated, {a: self.left <= 0 for a in truncated}, infos

    wrapped = Countdown(make_env())
    assert hasattr(wrapped, "get_state"), "the wrapper forwards get_state to the env inside"
    game = make_game(wrapped)
    assert game.snapshot_method == "explicit+wrappers"
    game.reset(0)
    game.step([0, 0])
    snapshot = game.get_state()
    ends = [game.step([1, 1]).episode_over for _ in range(5)]
    game.set_state(snapshot)
    assert [game.step([1, 1]).episode_over for _ in range(5)] == ends == [False] * 4 + [True]


def test_bot_rngs_and_policy_state_are_in_the_snapshot():
    game = make_game(
        make_env(), bots={"player_0": RandomPolicy(5, hold=3), "player_1": CoinChasePolicy(epsilon=0.5)}
    )
    game.reset(2)
    for _ in range(4):
        game.step([])
    snapshot = game.get_state()
    first = [game.step([]).actions for _ in range(30)]
    game.set_state(snapshot)
    assert [game.step([]).actions for _ in range(30)] == first


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**31 - 1),
    before=st.lists(st.integers(0, 4), max_size=60),
    after=st.lists(st.integers(0, 4), min_size=1, max_size=40),
)
def test_restoring_any_snapshot_replays_the_same_future(seed, before, after):
    game = make_game(make_env({"hazard_move_prob": 0.2, "max_steps": 80}), bots={"player_1": "random"}, verify=False)
    game.reset(seed)
    for action in before:
        if game.step([action]).episode_over:
            game.reset(seed + 1)
    snapshot = game.get_state()
    expected = digest(snapshot)
    first = trace(game, [[a] for a in after])
    assert digest(snapshot) == expected
    game.set_state(snapshot)
    assert digest(game.get_state()) == expected
    assert trace(game, [[a] for a in after]) == first


# -- global generators -------------------------------------------------------------------------------------------------


def test_global_rng_state_capture_restore_and_seed():
    rngs = GlobalRngState(python=True, numpy=True)
    saved = rngs.capture()
    draws = (random.random(), np.random.random())
    rngs.restore(saved)
    assert (random.random(), np.random.random()) == draws
    rngs.seed(42)
    seeded = (random.random(), np.random.random())
    rngs.seed(42)
    assert (random.random(), np.random.random()) == seeded
    assert not GlobalRngState() and GlobalRngState().capture() == (None, None)


@pytest.mark.parametrize(
    ("env_class", "flags"),
    [(rollback_breakers.GlobalRandomEnv, (True, False)), (rollback_breakers.GlobalNumpyEnv, (False, True))],
)
def test_verification_detects_global_generators_and_captures_them(env_class, flags):
    game = make_game(env_class(), verify=False)
    assert not game.global_rng
    report = verify_snapshots(game)
    assert report.global_rng == flags
    assert (game.global_rng.python, game.global_rng.numpy) == flags
    described = game.describe()["global_rng"]
    assert (described["random"], described["numpy"]) == flags
    game.reset(1)
    snapshot = game.get_state()
    first = trace(game, [[k % 3, (k + 1) % 3] for k in range(20)])
    random.seed(999)
    np.random.seed(999)
    game.set_state(snapshot)
    assert trace(game, [[k % 3, (k + 1) % 3] for k in range(20)]) == first


def test_declared_global_generators_are_reseeded_on_reset_so_peers_agree():
    def run(noise: int) -> list[str]:
        random.seed(noise)  # whatever else happened in the tab before
        game = make_game(rollback_breakers.GlobalRandomEnv(), global_rng=(True, False), verify=False)
        game.reset(5)
        return trace(game, [[1, 1]] * 15)

    assert run(1) == run(2)


def test_games_sharing_a_process_keep_their_global_generators_apart():
    plan = [[k % 3, (k * 2) % 3] for k in range(40)]
    alone = make_game(rollback_breakers.GlobalRandomEnv())
    alone.reset(8)
    expected = trace(alone, plan)
    first, second = make_game(rollback_breakers.GlobalRandomEnv()), make_game(rollback_breakers.GlobalRandomEnv())
    first.reset(8)
    second.reset(8)
    traces: list[list[str]] = [[], []]
    for inputs in plan:  # interleaved, as simulated peers step
        for game, out in zip((first, second), traces):
            out.extend(trace(game, [inputs]))
        random.random()  # other code drawing in between changes nothing
    assert traces[0] == traces[1] == expected


class GlobalDiceGame(Game):
    """A hand-written Game that rolls the global ``random`` and cannot capture it."""

    agents = ("p",)
    seats = ("p",)

    def input_count(self, seat: int) -> int:
        return 2

    def reset(self, seed: int) -> ResetResult:
        self.total = 0
        return ResetResult({"p": 0}, {"p": {}})

    def step(self, inputs):
        self.total += random.randrange(6) + inputs[0]
        return StepResult({"p": inputs[0]}, {"p": self.total}, {"p": 0.0}, {"p": False}, {"p": False}, {"p": {}}, False)

    def get_state(self):
        return self.total

    def set_state(self, state):
        self.total = state


def test_a_game_that_cannot_capture_global_generators_is_refused():
    with pytest.raises(SnapshotError, match="global random"):
        verify_snapshots(GlobalDiceGame())


# -- refusing bad envs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_class", "words"),
    [
        (rollback_breakers.ClockEnv, r"infos\.a\.stamp"),
        (rollback_breakers.UnsnapshottedRngEnv, r"observations\.[ab]\[[01]\].*does not restore `gusts`"),
        (rollback_breakers.HiddenStateEnv, r"rewards\.a"),
        (rollback_breakers.AliasingEnv, "live mutable state"),
        (rollback_breakers.ForgetfulEnv, r"set_state\(\) then get_state\(\)"),
        (rollback_breakers.ClockResetEnv, "reset\\(seed\\) is not a function of the seed"),
        (rollback_breakers.UnpicklableEnv, "cannot be pickled"),
    ],
)
def test_verification_refuses_envs_that_cannot_be_rolled_back(env_class, words):
    game = make_game(env_class(), verify=False)
    with pytest.raises(SnapshotError, match=words) as caught:
        verify_snapshots(game)
    message = str(caught.value)
    assert "get_state" in message or "snapshot" in message


def test_divergence_messages_name_the_frame_and_what_to_do():
    game = make_game(rollback_breakers.HiddenStateEnv(), verify=False)
    with pytest.raises(SnapshotError) as caught:
        verify_snapshots(game, warmup=(4,))
    message = str(caught.value)
    assert "snapshot taken at frame 4" in message
    assert "np_random.bit_generator.state" in message


@pytest.mark.parametrize(
    "make",
    [
        make_env, lambda: gym.make("CartPole-v1"), shapes.DuelEnv, shapes.TeamEnv, shapes.IntIdsEnv,
        rollback_breakers.LineEnv,
    ],
)
def test_verification_accepts_faithful_envs(make):
    report = verify_snapshots(make_game(make(), verify=False))
    assert report.checks > 0 and report.global_rng == (False, False)
