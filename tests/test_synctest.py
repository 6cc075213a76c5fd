"""The sync test passes deterministic games and catches each kind of rollback bug at any distance."""

from __future__ import annotations

import gymnasium as gym
import pytest

from pyodide_runtime.bots import CoinChasePolicy
from pyodide_runtime.examples.coin_chase import make_env
from pyodide_runtime.envs.loading import load_game, make_game
from pyodide_runtime.host.synctest import SyncTestReport, main, run_sync_test

from env_fixtures import rollback_breakers

DISTANCES = [1, 2, 3, 5, 8]


def assert_passed(report: SyncTestReport) -> None:
    assert report.passed, str(report)
    assert report.mismatch is None
    assert "passed" in str(report)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("players", [2, 3, 4])
def test_coin_chase_passes(players, distance):
    game = load_game(
        "pyodide_runtime.examples.coin_chase:make_env",
        {"players": players, "max_steps": 60, "target_score": 4, "hazard_move_prob": 0.3},
        bots={"player_1": CoinChasePolicy(epsilon=0.3)},
    )
    report = run_sync_test(game, frames=200, distance=distance, seed=players)
    assert_passed(report)
    assert report.state_checked, "coin chase snapshots are canonical, so states are compared too"
    assert report.episodes > 1, "rollbacks near episode starts are exercised"
    assert report.frames <= report.checks <= report.frames * distance
    assert report.checks > report.frames or distance == 1


@pytest.mark.parametrize("distance", DISTANCES)
def test_cartpole_passes_with_a_human_seat_and_with_a_bot(distance):
    human = run_sync_test(make_game(gym.make("CartPole-v1")), frames=150, distance=distance)
    assert_passed(human)
    assert human.episodes > 1
    assert not human.state_checked, "pickled snapshots are not canonical, so only results are compared"
    bot = run_sync_test(make_game(gym.make("CartPole-v1"), bots={"player_0": "random"}), frames=150, distance=distance)
    assert_passed(bot)


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0", "FrozenLake-v1", "CliffWalking-v1", "Blackjack-v1"])
def test_gymnasium_classics_pass_with_generic_snapshots(env_id):
    game = make_game(gym.make(env_id))
    assert game.snapshot_method == "attributes"
    assert_passed(run_sync_test(game, frames=120, distance=3))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize(
    ("env_class", "fields"),
    [
        (rollback_breakers.ClockEnv, {"infos"}),
        (rollback_breakers.UnsnapshottedRngEnv, {"observations", "rewards", "infos"}),
        (rollback_breakers.HiddenStateEnv, {"rewards"}),
    ],
)
def test_rollback_bugs_are_caught(env_class, fields, distance):
    game = make_game(env_class(), verify=False)
    report = run_sync_test(game, frames=300, distance=distance, seed=distance)
    assert not report.passed
    mismatch = report.mismatch
    assert mismatch.field in fields, str(report)
    assert mismatch.detail.startswith(mismatch.field)
    assert 0 <= mismatch.frame - mismatch.rollback_to < distance
    assert mismatch.frame < report.frames <= 300
    assert f"FAILED at frame {mismatch.frame}" in str(report)


def test_hidden_state_is_named_down_to_the_agent():
    report = run_sync_test(make_game(rollback_breakers.HiddenStateEnv(), verify=False), frames=100, distance=4)
    assert report.mismatch.detail.startswith("rewards.a:"), report.mismatch.detail


class CountingEnv(rollback_breakers.LineEnv):
    """Counts its own steps in its state, but set_state() forgets the count; results never show it."""

    def reset(self, seed=None, options=None):
        self.count = 0
        return super().reset(seed, options)

    def step(self, actions):
        self.count += 1
        return super().step(actions)

    def get_state(self):
        return (*super().get_state(), self.count)

    def set_state(self, state):
        super().set_state(state[:-1])


@pytest.mark.parametrize("distance", [1, 4])
def test_state_comparison_catches_what_results_do_not_show(distance):
    report = run_sync_test(make_game(CountingEnv(), verify=False), frames=50, distance=distance)
    assert report.mismatch is not None and report.mismatch.field == "state"
    game = make_game(CountingEnv(), verify=False)
    without_state = run_sync_test(game, frames=50, distance=distance, check_state=False)
    assert_passed(without_state)


def test_global_random_is_caught_unless_the_game_captures_it():
    raw = make_game(rollback_breakers.GlobalRandomEnv(), verify=False)
    assert not run_sync_test(raw, frames=100, distance=2).passed
    verified = make_game(rollback_breakers.GlobalRandomEnv())  # verification detects and captures the global generator
    assert_passed(run_sync_test(verified, frames=100, distance=2))


def test_an_env_error_during_resimulation_is_reported():
    class FragileEnv(rollback_breakers.LineEnv):
        """Refuses to step twice from the same frame counter, as a broken restore might cause."""

        def reset(self, seed=None, options=None):
            self.seen = set()
            return super().reset(seed, options)

        def step(self, actions):
            if self.t in self.seen:
                raise RuntimeError(f"frame {self.t} stepped twice")
            self.seen.add(self.t)
            return super().step(actions)

    report = run_sync_test(make_game(FragileEnv(), verify=False), frames=20, distance=2)
    assert report.mismatch.field == "exception"
    assert "stepped twice" in report.mismatch.detail


def test_input_policy_drives_the_inputs_and_reports_are_reproducible():
    calls = []

    def policy(frame, seat, rng):
        calls.append((frame, seat))
        return (frame + seat) % 5

    game = make_game(make_env({"max_steps": 30}))
    first = run_sync_test(game, frames=40, distance=3, input_policy=policy)
    assert calls == [(f, s) for f in range(40) for s in range(2)]
    assert_passed(first)
    assert run_sync_test(game, frames=40, distance=3, input_policy=policy) == first
    assert run_sync_test(game, frames=40, distance=3, seed=5) == run_sync_test(game, frames=40, distance=3, seed=5)


def test_distance_must_be_positive():
    with pytest.raises(ValueError):
        run_sync_test(make_game(make_env()), distance=0)


def test_command_line(capsys):
    coin_chase = "pyodide_runtime.examples.coin_chase:make_env"
    assert main([coin_chase, "--frames", "60", "--distance", "1,3", "--bot", "player_1=random"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("passed" in line for line in lines)
    assert "distance 3" in lines[1]

    hidden = "env_fixtures.rollback_breakers:make_hidden_state"
    assert main([hidden, "--frames", "60"]) == 1
    assert capsys.readouterr().out.startswith("refused: ")
    assert main([hidden, "--frames", "60", "--distance", "2", "--no-verify"]) == 1
    assert "FAILED at frame" in capsys.readouterr().out


def test_command_line_usage_errors_exit_2(capsys):
    from pyodide_runtime.host.cli import main as cli_main

    coin_chase = "pyodide_runtime.examples.coin_chase:make_env"
    assert cli_main(["synctest", coin_chase, "--bot", "player_1"]) == 2
    assert "AGENT=BOT" in capsys.readouterr().err
    assert cli_main(["synctest", coin_chase, "--distance", "1,x"]) == 2
    assert "--distance" in capsys.readouterr().err
    assert cli_main(["synctest", coin_chase, "--config", "{not json"]) == 2
    assert "--config" in capsys.readouterr().err
    assert cli_main(["synctest", "no_such_module_xyz:make"]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
