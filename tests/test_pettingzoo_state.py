"""Rollbacks across an episode end restore the PettingZoo ``agents`` list the adapter reads, whatever the env's own
snapshot covers: peers stay identical and records match a run without rollback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyodide_runtime.canonical import canonical_bytes, digest
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.envs.loading import load_game, make_game
from pyodide_runtime.session import EpisodeEnded, RollbackEvent
from pyodide_runtime.host.synctest import run_sync_test
from pyodide_runtime.host.testing import LinkSpec, SimulationResult, random_policy, replay, run_peers

FAULTY = LinkSpec(latency_ms=120, jitter_ms=30, loss=0.15)


def rows(records: list) -> list[bytes]:
    return [canonical_bytes(r.canonical()) for r in records]


def rollbacks_across_an_end(result: SimulationResult) -> list[RollbackEvent]:
    """Rollbacks that restored a snapshot from before an episode's last frame while that frame was simulated."""
    crossing = []
    for peer in result.peers:
        ends = [e.last_frame for e in peer.events if isinstance(e, EpisodeEnded)]
        for event in peer.events:
            if isinstance(event, RollbackEvent) and any(event.frame <= end < event.frame + event.depth for end in ends):
                crossing.append(event)
    return crossing


def run_with_rollbacks(make: Callable[[int], Game], config: SessionConfig, seeds: range) -> SimulationResult:
    """The first faulty run (over ``seeds``) whose rollbacks cross an episode end."""
    for seed in seeds:
        result = run_peers(make, config, link=FAULTY, seed=seed, policy=random_policy(seed, (1, 3)))
        if rollbacks_across_an_end(result):
            return result
    raise AssertionError(f"no run over seeds {seeds} rolled back across an episode end")


def assert_parity(result: SimulationResult, make: Callable[[int], Game], config: SessionConfig) -> None:
    for peer in result.peers:
        assert peer.outcome == "complete"
        assert len([e for e in peer.events if isinstance(e, EpisodeEnded)]) == config.episodes
    assert result.identical()
    records = result.peers[0].records
    assert rows(replay(make(0), config, records).confirmed) == rows(records)  # the same as without rollback


# -- a purpose-built env whose own snapshot leaves `agents` out ------------------------------------------------------


def forgets_agents(length: int) -> Callable[[int], Game]:
    return lambda seat: load_game("env_fixtures.forgets_agents:make_env", {"max_steps": length}, verify=False)


def test_a_rollback_across_an_episode_end_restores_agents():
    config = SessionConfig(input_delay=1, max_prediction=8, episodes=3)
    make = forgets_agents(30)
    result = run_with_rollbacks(make, config, range(4))
    assert result.total("rollbacks") > 0
    assert rollbacks_across_an_end(result)
    assert_parity(result, make, config)


def test_the_game_snapshot_holds_agents_and_stays_canonical():
    game = load_game("env_fixtures.forgets_agents:make_env", {"max_steps": 3}, verify=False)
    game.reset(0)
    before = game.get_state()
    for _ in range(3):
        result = game.step([1, 1])
    assert result.episode_over and game.env.agents == []
    game.set_state(before)
    assert game.env.agents == ["a", "b"]
    assert type(game.env.agents) is list
    game.env.agents.append("z")  # the restored list is a fresh one, not the snapshot's
    game.set_state(before)
    assert game.env.agents == ["a", "b"]
    assert digest(before) == digest(game.get_state())


@pytest.mark.parametrize("snapshot", ["explicit", "attributes", "pickle", "deepcopy"])
def test_every_snapshot_method_passes_the_sync_test_across_episode_ends(snapshot):
    game = load_game("env_fixtures.forgets_agents:make_env", {"max_steps": 12}, snapshot=snapshot)
    assert game.snapshot_method == snapshot
    report = run_sync_test(game, frames=60, distance=4)
    assert report.passed, str(report)
    assert report.episodes > 1


def test_agents_behind_a_pettingzoo_wrapper_are_restored_on_the_env_that_holds_them():
    from pettingzoo.utils.wrappers import BaseParallelWrapper

    from env_fixtures.forgets_agents import ForgetsAgentsEnv

    inner = ForgetsAgentsEnv({"max_steps": 3})
    game = make_game(BaseParallelWrapper(inner), verify=False, snapshot="pickle")
    game.reset(0)
    before = game.get_state()
    for _ in range(3):
        game.step([1, 1])
    game.set_state(before)
    assert game.env.env.agents == ["a", "b"]
    assert "agents" not in vars(game.env)  # not shadowed on the wrapper


# -- a real third-party env: cogrid's Overcooked ---------------------------------------------------------------------


def overcooked(length: int) -> Callable[[int], Game]:
    pytest.importorskip("cogrid")
    from cogrid.envs import registry

    def make(seat: int) -> Game:
        env: Any = registry.make("Overcooked-CrampedRoom-V0")
        env.max_steps = length  # read when reset() builds the step function
        return make_game(env, verify=False)

    return make


def test_cogrid_overcooked_under_latency_and_loss():
    config = SessionConfig(input_delay=1, max_prediction=8, episodes=2)
    make = overcooked(20)
    result = run_with_rollbacks(make, config, range(4))
    assert result.total("rollbacks") > 0
    assert rollbacks_across_an_end(result)
    assert_parity(result, make, config)


def test_cogrid_overcooked_passes_the_sync_test_across_episode_ends():
    game = overcooked(10)(0)
    report = run_sync_test(game, frames=40, distance=3)
    assert report.passed, str(report)
    assert report.episodes > 1


# -- messages that name what diverged ----------------------------------------------------------------------------------


def test_the_sync_test_names_the_attribute_set_state_misses():
    game = load_game("env_fixtures.forgets_score:make_env", verify=False)
    report = run_sync_test(game, frames=120, distance=4)
    mismatch = report.mismatch
    assert mismatch is not None and mismatch.field == "observations"
    assert mismatch.cause.startswith("ForgetsScoreEnv.set_state() does not restore `score` (")
    assert "when the snapshot was taken" in mismatch.cause
    assert f"FAILED at frame {mismatch.frame}" in str(report) and mismatch.cause in str(report)
    assert mismatch.fix.startswith("return `score` from ForgetsScoreEnv.get_state() and restore it in set_state()")
    assert "implement" not in mismatch.fix


def test_start_up_verification_names_the_attribute_and_does_not_ask_for_state_methods():
    from pyodide_runtime.envs.snapshot_check import verify_snapshots
    from pyodide_runtime.snapshot import SnapshotError

    game = load_game("env_fixtures.forgets_score:make_env", verify=False)
    with pytest.raises(SnapshotError) as caught:
        verify_snapshots(game, warmup=(4,))
    error = caught.value
    assert "snapshot taken at frame 4" in str(error)
    assert "ForgetsScoreEnv.set_state() does not restore `score`" in error.reason
    assert "implement" not in str(error) and "`score`" in error.fix


def test_a_set_state_that_misses_agents_is_named(monkeypatch):
    """What the sync test reports for an env whose own snapshot leaves out ``agents``, had the adapter not kept it."""
    from pyodide_runtime.envs.parallel import ParallelEnvGame

    monkeypatch.setattr(ParallelEnvGame, "_restore_api_state", lambda self, state: None)
    game = load_game("env_fixtures.forgets_agents:make_env", {"max_steps": 10}, verify=False)
    report = run_sync_test(game, frames=40, distance=3)
    mismatch = report.mismatch
    assert mismatch is not None and mismatch.field == "exception" and "KeyError" in mismatch.detail
    assert mismatch.frame <= 9 < mismatch.frame + 3  # the rollback crossed the end of the 10-frame episode
    assert mismatch.cause == (
        "ForgetsAgentsEnv.set_state() does not restore `agents` (['a', 'b'] when the snapshot was taken, [] after "
        "restoring it)"
    )
    assert "implement" not in mismatch.fix


def test_check_env_fixes_name_the_attribute_for_an_env_with_state_methods():
    from pyodide_runtime.host.checkenv import FAIL, EnvTarget
    from pyodide_runtime.host.checkenv.rollback import check_hidden_state, check_snapshot, check_sync

    target = EnvTarget("env_fixtures.forgets_score:make_env")
    results = [check_snapshot(target), check_sync(target, (1, 4), 120, 0), check_hidden_state(target, 0)]
    for result in results:
        assert result.status == FAIL, result.message
        assert "`score`" in result.message and "`score`" in result.fix, result
        assert "implement" not in result.fix, result.fix
    assert "ForgetsScoreEnv.set_state() does not restore `score`" in results[0].message
    assert results[0].fix not in results[0].message  # said once, on the fix line


def test_an_env_without_state_methods_is_still_told_to_add_them():
    from env_fixtures.rollback_breakers import ClockEnv

    explicit = run_sync_test(make_game(ClockEnv(), verify=False), frames=20, distance=2).mismatch
    assert explicit is not None and explicit.field == "infos"
    assert "ClockEnv has get_state()/set_state()" in explicit.cause and "implement" not in explicit.fix
    assert "the clock" in explicit.fix
    pickled = run_sync_test(make_game(ClockEnv(), verify=False, snapshot="pickle"), frames=20, distance=2).mismatch
    assert pickled is not None and pickled.fix.startswith("implement get_state()/set_state() on the env")
