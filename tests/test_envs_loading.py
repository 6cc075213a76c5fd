"""Loading env factories from specs, choosing adapters, and recording provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path

import gymnasium as gym
import pytest

from pyodide_runtime.envs import loading
from pyodide_runtime.envs.base import Game
from pyodide_runtime.examples import coin_chase
from pyodide_runtime.envs.gym_multi import MultiDiscreteGymGame
from pyodide_runtime.envs.loading import EnvLoadError, load_factory, load_game, make_game
from pyodide_runtime.envs.parallel import ParallelEnvGame
from pyodide_runtime.envs.single import SingleAgentGame
from pyodide_runtime.snapshot import SnapshotError

from env_fixtures import rollback_breakers, shapes

FIXTURES = Path(__file__).parent / "env_fixtures"
COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_module_spec_resolves_the_factory():
    assert load_factory(COIN_CHASE) is coin_chase.make_env
    assert load_factory("pyodide_runtime.examples.coin_chase:CoinChaseEnv.get_state") is (
        coin_chase.CoinChaseEnv.get_state
    )


def test_file_spec_loads_the_file_once_under_a_stable_name():
    first = load_factory(f"{FIXTURES / 'standalone_env.py'}:make_env")
    second = load_factory(f"{FIXTURES / 'standalone_env.py'}:make_env")
    assert first is second
    env = first({"digits": 4})
    assert env.action_space.n == 4


def test_relative_file_spec(monkeypatch):
    monkeypatch.chdir(FIXTURES.parent)
    assert callable(load_factory("env_fixtures/standalone_env.py:make_env"))


@pytest.mark.parametrize(
    ("spec", "error", "words"),
    [
        ("no_colon_here", ValueError, "module:function"),
        (":make_env", ValueError, "module:function"),
        ("pyodide_runtime.examples.coin_chase:", ValueError, "module:function"),
        ("missing/file.py:make_env", EnvLoadError, "env file not found: missing/file.py"),
        ("surely_not_an_installed_module_xyz:make_env", EnvLoadError, "no module named"),
        ("pyodide_runtime.examples.coin_chase:make_envv", EnvLoadError, "make_env"),
        ("pyodide_runtime.examples.coin_chase:DEFAULT_CONFIG", TypeError, "not a callable"),
        ("env_fixtures.broken_import:make_env", EnvLoadError, "this_module_does_not_exist_anywhere"),
    ],
)
def test_bad_specs_give_clear_errors(spec, error, words):
    with pytest.raises(error, match=words):
        load_factory(spec)


def test_broken_file_reports_the_underlying_import_error():
    with pytest.raises(EnvLoadError, match="ModuleNotFoundError.*this_module_does_not_exist_anywhere"):
        load_factory(f"{FIXTURES / 'broken_import.py'}:make_env")


def test_load_game_records_spec_config_and_the_factory_source_hash():
    game = load_game(COIN_CHASE, {"players": 3, "max_steps": 50})
    info = game.describe()
    assert info["factory"] == COIN_CHASE
    assert info["config"] == {"players": 3, "max_steps": 50}
    assert info["source_hash"] == sha256(Path(coin_chase.__file__))
    assert info["env_id"] == "coin_chase" and info["env_version"] == coin_chase.CoinChaseEnv.metadata["version"]
    assert game.agents == ("player_0", "player_1", "player_2")
    assert info["snapshot_method"] == "explicit"


def test_load_game_from_a_file_hashes_that_file():
    path = FIXTURES / "standalone_env.py"
    game = load_game(f"{path}:make_env")
    assert game.describe()["source_hash"] == sha256(path)
    assert game.describe()["env_id"] == "guess"
    assert isinstance(game, SingleAgentGame)


def test_load_game_without_config_calls_the_factory_with_no_argument():
    game = load_game("env_fixtures.shapes:make_without_config")
    assert isinstance(game, MultiDiscreteGymGame)
    with pytest.raises(TypeError, match="takes no config"):
        load_game("env_fixtures.shapes:make_without_config", {"length": 3})


def test_factory_errors_propagate():
    with pytest.raises(RuntimeError, match="licence server"):
        load_game("env_fixtures.shapes:factory_that_fails")


def test_a_factory_may_return_a_ready_game():
    game = load_game("env_fixtures.shapes:make_ready_game")
    assert isinstance(game, ParallelEnvGame) and len(game.agents) == 3
    with pytest.raises(ValueError, match="ready Game"):
        make_game(game, bots={"player_0": "random"})


@pytest.mark.parametrize(
    ("make", "adapter"),
    [
        (lambda: coin_chase.make_env(), ParallelEnvGame),
        (lambda: shapes.IntIdsEnv(), ParallelEnvGame),
        (lambda: shapes.DuelEnv(), MultiDiscreteGymGame),
        (lambda: shapes.TeamEnv(), MultiDiscreteGymGame),
        (lambda: gym.make("CartPole-v1"), SingleAgentGame),
        (lambda: shapes.make_wrapped_counter(), SingleAgentGame),
    ],
)
def test_make_game_picks_the_adapter_for_the_env_shape(make, adapter):
    game = make_game(make())
    assert type(game) is adapter
    assert isinstance(game, Game)
    assert game.describe()["adapter"] == adapter.kind


def test_unplayable_shapes_are_refused_with_advice():
    with pytest.raises(TypeError, match="Discrete"):
        make_game(shapes.BoxEnv())
    with pytest.raises(TypeError, match="aec_to_parallel"):
        make_game(shapes.FakeAecEnv())
    with pytest.raises(TypeError, match="cannot play"):
        make_game(object())


def test_make_game_refuses_an_env_whose_snapshots_do_not_restore():
    with pytest.raises(SnapshotError, match="rewards.a"):
        make_game(rollback_breakers.HiddenStateEnv())
    assert make_game(rollback_breakers.HiddenStateEnv(), verify=False).agents == ("a", "b")


def test_env_identity_defaults_and_overrides():
    cartpole = make_game(gym.make("CartPole-v1"))
    assert cartpole.env_id == "CartPole-v1"
    assert cartpole.describe()["source_hash"] == loading.source_hash(type(cartpole.env.unwrapped))
    named = make_game(shapes.DuelEnv(), env_id="duel-study", env_version="7", source="abc")
    assert (named.env_id, named.env_version, named.describe()["source_hash"]) == ("duel-study", "7", "abc")
    assert make_game(shapes.IntIdsEnv()).env_id == "int_ids"
