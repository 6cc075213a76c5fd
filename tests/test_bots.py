"""Bot policies: the protocol, the shipped policies, and resolving bots by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyodide_runtime.bots import (
    CoinChasePolicy,
    ConstantPolicy,
    FunctionPolicy,
    Policy,
    RandomPolicy,
    as_policy,
    bot_rng,
    resolve_bot,
)
from pyodide_runtime.examples.coin_chase import make_env
from pyodide_runtime.envs.loading import make_game

UP, RIGHT, DOWN, LEFT = 1, 2, 3, 4


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def board(position, coins, hazards=(), others=(), stunned=0):
    return {
        "position": list(position),
        "coins": [list(c) for c in coins],
        "hazards": [list(h) for h in hazards],
        "others": [list(o) for o in others],
        "stunned": stunned,
    }


def distance(a, b) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


MOVES = {UP: (0, -1), RIGHT: (1, 0), DOWN: (0, 1), LEFT: (-1, 0)}


def test_random_policy_draws_only_from_the_given_rng():
    draws = [RandomPolicy(5).act(None, rng(s)) for s in range(20)]
    assert draws == [RandomPolicy(5).act(None, rng(s)) for s in range(20)]
    policy = RandomPolicy(5)
    generator = rng(7)
    actions = [policy.act(None, generator) for _ in range(500)]
    assert set(actions) == set(range(5))


def test_random_policy_holds_its_choice_and_snapshots_that():
    policy = RandomPolicy(5, hold=4)
    generator = rng(1)
    actions = [policy.act(None, generator) for _ in range(40)]
    for block in range(10):
        assert len(set(actions[block * 4 : block * 4 + 4])) == 1
    policy.act(None, generator)
    saved, saved_rng = policy.get_state(), generator.bit_generator.state
    ahead = [policy.act(None, generator) for _ in range(9)]
    policy.set_state(saved)
    generator.bit_generator.state = saved_rng
    assert [policy.act(None, generator) for _ in range(9)] == ahead
    policy.reset()
    assert policy.get_state()[1] == 0
    with pytest.raises(ValueError):
        RandomPolicy(0)


@pytest.mark.parametrize(
    ("position", "coins"),
    [((4, 4), [(4, 1)]), ((4, 4), [(8, 4), (0, 0)]), ((2, 3), [(0, 6), (3, 2)]), ((6, 1), [(1, 1)])],
)
def test_coin_chaser_steps_towards_the_nearest_coin(position, coins):
    action = CoinChasePolicy(epsilon=0).act(board(position, coins), rng())
    nearest = min(distance(position, c) for c in coins)
    dx, dy = MOVES[action]
    moved = (position[0] + dx, position[1] + dy)
    assert min(distance(moved, c) for c in coins) == nearest - 1


def test_coin_chaser_steps_around_hazards_and_players():
    policy = CoinChasePolicy(epsilon=0)
    # the coin is up and right; the cell above is a hazard, so it goes right
    assert policy.act(board((2, 2), [(4, 0)], hazards=[(2, 1)]), rng()) == RIGHT
    assert policy.act(board((2, 2), [(4, 0)], others=[(3, 2)]), rng()) == UP
    # boxed in on both useful sides: it waits
    assert policy.act(board((2, 2), [(4, 0)], hazards=[(2, 1)], others=[(3, 2)]), rng()) == 0
    assert policy.act(board((2, 2), [(4, 0)], stunned=2), rng()) == 0


def test_coin_chaser_explores_with_probability_epsilon():
    policy = CoinChasePolicy(epsilon=0.5)
    generator = rng(5)
    obs = board((4, 4), [(4, 0)])
    actions = [policy.act(obs, generator) for _ in range(400)]
    greedy = actions.count(UP)
    assert len(set(actions)) == 5
    assert 0.5 * len(actions) < greedy < len(actions)


def test_coin_chaser_beats_a_random_player():
    game = make_game(make_env({"max_steps": 200}), bots={"player_0": CoinChasePolicy(), "player_1": RandomPolicy(5)})
    wins = 0
    for seed in range(6):
        game.reset(seed)
        result = None
        while result is None or not result.episode_over:
            result = game.step([])
        state = game.env.get_state()
        wins += state[4][0] > state[4][1]
    assert wins >= 5


def test_functions_and_objects_become_policies():
    def lazy(observation, generator):
        return 0

    policy = as_policy(lazy)
    assert isinstance(policy, FunctionPolicy) and policy.name.endswith("<locals>.lazy")
    assert policy.act(None, rng()) == 0
    chaser = CoinChasePolicy()
    assert as_policy(chaser) is chaser and isinstance(chaser, Policy)
    with pytest.raises(TypeError):
        as_policy(42)


def test_bots_by_name(tmp_path: Path):
    assert isinstance(resolve_bot("random", 3), RandomPolicy) and resolve_bot("random", 3).n == 3
    idle = resolve_bot("idle", 4)
    assert isinstance(idle, ConstantPolicy) and idle.act(None, rng()) == 0
    assert isinstance(resolve_bot("pyodide_runtime.bots:CoinChasePolicy", 5), CoinChasePolicy)
    module = tmp_path / "my_bot.py"
    module.write_text("def always_up(observation, rng):\n    return 1\n")
    bot = resolve_bot(f"{module}:always_up", 5)
    assert bot.act(None, rng()) == 1
    with pytest.raises(ValueError, match="unknown bot"):
        resolve_bot("smart", 5)


def test_bot_rngs_differ_per_agent_and_per_seed_and_repeat_exactly():
    keys = [(seed, index) for seed in (1, 2) for index in (0, 1)]
    draws = {key: bot_rng(*key).integers(1 << 30, size=4).tolist() for key in keys}
    assert len({tuple(v) for v in draws.values()}) == 4
    assert bot_rng(1, 0).integers(1 << 30, size=4).tolist() == draws[(1, 0)]
