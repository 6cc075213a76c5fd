"""The Coin Chase example env: rules, episode ends, state protocol, rendering, PettingZoo API conformance."""

from __future__ import annotations

import random

import pytest
from pettingzoo.test import parallel_api_test

from pyodide_runtime.canonical import canonical_json, digest
from pyodide_runtime.examples.coin_chase import ACTION_NAMES, DEFAULT_CONFIG, CoinChaseEnv, make_env

STAY, UP, RIGHT, DOWN, LEFT = range(5)


def place(env: CoinChaseEnv, positions, coins, hazards, scores=None, stun=None, t=0) -> None:
    """Put the board in a chosen layout through the explicit state protocol (RNG state kept)."""
    n = len(env.possible_agents)
    rng_state = env.get_state()[7]
    scores = tuple(scores or [0] * n)
    stun = tuple(stun or [0] * n)
    env.set_state((t, tuple(positions), tuple(coins), tuple(hazards), scores, stun, False, rng_state))


def fresh(**config) -> CoinChaseEnv:
    env = make_env({"hazard_move_prob": 0.0, **config})
    env.reset(seed=1)
    return env


def act(env: CoinChaseEnv, *actions: int):
    return env.step(dict(zip(env.possible_agents, actions)))


@pytest.mark.parametrize("players", [2, 3, 4])
def test_follows_the_pettingzoo_parallel_api(players):
    parallel_api_test(make_env({"players": players}), num_cycles=400)


def test_same_seed_and_actions_give_the_same_episode_and_other_seeds_differ():
    rng = random.Random(7)
    plan = [[rng.randrange(5), rng.randrange(5)] for _ in range(200)]

    def run(seed):
        env = make_env()
        trace = [digest(env.reset(seed=seed))]
        for actions in plan:
            trace.append(digest(act(env, *actions)))
            if not env.agents:
                break
        return trace

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_observations_describe_the_board_from_each_players_view():
    env = make_env({"players": 3})
    observations, infos = env.reset(seed=5)
    _, positions, coins, hazards, scores, stun, _, _ = env.get_state()
    for i, agent in enumerate(env.possible_agents):
        obs = observations[agent]
        assert obs["position"] == list(positions[i])
        assert obs["others"] == [list(p) for j, p in enumerate(positions) if j != i]
        assert obs["coins"] == [list(c) for c in coins]
        assert obs["hazards"] == [list(h) for h in hazards]
        assert obs["time_left"] == DEFAULT_CONFIG["max_steps"]
        assert len(obs["other_scores"]) == 2
    cells = list(positions) + list(coins) + list(hazards)
    assert len(set(cells)) == len(cells), "players, coins and hazards start on distinct cells"


def test_moves_and_walls():
    env = fresh()
    place(env, [(0, 0), (8, 6)], [(4, 3)], [(6, 1), (2, 5)])
    _, _, _, _, infos = act(env, LEFT, RIGHT)
    assert env.get_state()[1] == ((0, 0), (8, 6))
    assert infos["player_0"]["blocked"] and infos["player_1"]["blocked"]
    act(env, DOWN, UP)
    assert env.get_state()[1] == ((0, 1), (8, 5))
    assert len(ACTION_NAMES) == env.action_space("player_0").n


@pytest.mark.parametrize(
    ("start", "actions", "end"),
    [
        ([(2, 2), (3, 2)], (RIGHT, LEFT), [(2, 2), (3, 2)]),  # swapping places
        ([(2, 2), (4, 2)], (RIGHT, LEFT), [(2, 2), (4, 2)]),  # both aiming at (3, 2)
        ([(2, 2), (3, 2)], (RIGHT, STAY), [(2, 2), (3, 2)]),  # walking into a player who stays
        ([(2, 2), (3, 2)], (RIGHT, RIGHT), [(3, 2), (4, 2)]),  # following a player who moves away
    ],
)
def test_simultaneous_moves_resolve_fairly(start, actions, end):
    env = fresh()
    place(env, start, [(0, 6)], [(8, 0), (8, 1)])
    _, _, _, _, infos = act(env, *actions)
    assert list(env.get_state()[1]) == end
    for i, agent in enumerate(env.possible_agents):
        assert infos[agent]["blocked"] == (actions[i] != STAY and end[i] == start[i])


def test_three_players_blocked_in_a_chain():
    env = fresh(players=3)
    # p2 stays, so p1 cannot enter p2's cell, so p0 cannot enter p1's cell
    place(env, [(1, 3), (2, 3), (3, 3)], [(0, 0)], [(8, 0), (8, 1)])
    act(env, RIGHT, RIGHT, STAY)
    assert env.get_state()[1] == ((1, 3), (2, 3), (3, 3))


def test_collecting_a_coin_scores_and_respawns_it_on_a_free_cell():
    env = fresh()
    place(env, [(2, 2), (8, 6)], [(3, 2), (0, 6), (5, 5)], [(8, 0), (7, 0)], scores=[4, 1])
    _, rewards, _, _, infos = act(env, RIGHT, STAY)
    t, positions, coins, hazards, scores, _, _, _ = env.get_state()
    assert scores == (5, 1)
    assert rewards == {"player_0": 1.0, "player_1": 0.0}
    assert infos["player_0"]["collected"] == 1 and infos["player_1"]["collected"] == 0
    assert len(coins) == 3 and (0, 6) in coins and (5, 5) in coins
    new = [c for c in coins if c not in ((0, 6), (5, 5))][0]
    assert new not in positions and new not in hazards
    assert 0 <= new[0] < env.width and 0 <= new[1] < env.height


def test_walking_onto_a_hazard_costs_points_and_stuns():
    stun_steps = 3
    env = fresh(stun_steps=stun_steps, hazard_penalty=2)
    place(env, [(2, 2), (8, 6)], [(0, 6)], [(3, 2), (8, 0)], scores=[3, 0])
    _, rewards, _, _, infos = act(env, RIGHT, STAY)
    state = env.get_state()
    assert rewards["player_0"] == -2.0 and state[4] == (1, 0)
    assert infos["player_0"]["hit_hazard"] and state[5] == (stun_steps, 0)
    for k in range(stun_steps):
        observations, _, _, _, infos = act(env, DOWN, STAY)
        assert observations["player_0"]["position"] == [3, 2]
        assert infos["player_0"]["ignored_action"]
        assert observations["player_0"]["stunned"] == stun_steps - k - 1
    observations, rewards, _, _, _ = act(env, DOWN, STAY)
    assert observations["player_0"]["position"] == [3, 3]
    assert rewards["player_0"] == 0.0, "leaving a hazard is free"


def test_score_never_goes_negative():
    env = fresh(hazard_penalty=5)
    place(env, [(2, 2), (8, 6)], [(0, 6)], [(3, 2), (8, 0)], scores=[1, 0])
    act(env, RIGHT, STAY)
    assert env.get_state()[4] == (0, 0)


def test_reaching_the_target_score_terminates_the_episode():
    target = DEFAULT_CONFIG["target_score"]
    env = fresh()
    place(env, [(2, 2), (8, 6)], [(3, 2)], [(8, 0), (7, 0)], scores=[target - 1, 2])
    _, _, terminated, truncated, infos = act(env, RIGHT, STAY)
    assert terminated == {"player_0": True, "player_1": True}
    assert truncated == {"player_0": False, "player_1": False}
    assert infos["player_0"]["winner"] and not infos["player_1"]["winner"]
    assert env.agents == []
    with pytest.raises(RuntimeError):
        act(env, STAY, STAY)


def test_episode_is_truncated_after_max_steps():
    max_steps = 7
    env = fresh(max_steps=max_steps)
    for frame in range(1, max_steps + 1):
        observations, _, terminated, truncated, _ = act(env, STAY, STAY)
        assert observations["player_0"]["time_left"] == max_steps - frame
        assert truncated["player_0"] == (frame == max_steps)
        assert not terminated["player_0"]
    assert env.agents == []


def test_bad_actions_are_refused():
    env = fresh()
    with pytest.raises(ValueError):
        act(env, 5, 0)
    with pytest.raises(ValueError):
        act(env, -1, 0)


def test_state_round_trip_reproduces_the_future_and_can_be_restored_twice():
    env = make_env({"hazard_move_prob": 0.3})
    env.reset(seed=11)
    rng = random.Random(2)
    for _ in range(20):
        act(env, rng.randrange(5), rng.randrange(5))
    snapshot = env.get_state()
    snapshot_digest = digest(snapshot)
    plan = [(rng.randrange(5), rng.randrange(5)) for _ in range(60)]

    def replay():
        out = []
        for actions in plan:
            out.append(digest(act(env, *actions)))
            if not env.agents:
                break
        return out

    first = replay()
    assert digest(snapshot) == snapshot_digest, "later steps must not change a snapshot"
    env.set_state(snapshot)
    assert replay() == first
    env.set_state(snapshot)
    assert replay() == first
    env.set_state(snapshot)
    draw = env.np_random.random()
    env.set_state(snapshot)
    assert env.np_random.random() == draw, "the RNG state is part of the snapshot"


def test_steps_draw_from_the_rng_every_frame():
    env = fresh(hazard_move_prob=0.5)
    before = env.np_random.bit_generator.state
    act(env, STAY, STAY)
    assert env.np_random.bit_generator.state != before


def test_render_is_a_json_draw_list_showing_every_piece():
    env = make_env({"players": 3, "cell_px": 20})
    env.reset(seed=2)
    shapes = env.render()
    canonical_json(shapes)
    assert shapes[0] == {"type": "canvas", "w": env.width * 20, "h": (env.height + 1) * 20, "fill": shapes[0]["fill"]}
    _, positions, coins, hazards, scores, _, _, _ = env.get_state()
    circles = [s for s in shapes if s["type"] == "circle"]
    assert len(circles) == len(positions) + len(coins)
    centres = {(s["x"], s["y"]) for s in circles}
    assert {(x * 20 + 10, y * 20 + 10) for x, y in positions + coins} == centres
    assert sum(s["type"] == "rect" for s in shapes) == len(hazards)
    assert any(s["type"] == "text" and "P3: 0" in s["text"] for s in shapes)
    assert make_env({"cell_px": 20}).render() is not None
    assert CoinChaseEnv(render_mode=None).render() is None


@pytest.mark.parametrize(
    "config",
    [
        {"players": 1},
        {"players": 5},
        {"width": 2},
        {"colour": "red"},
        {"max_steps": 0},
        {"coins": 30},
        {"players": 2.0},
    ],
)
def test_bad_config_is_refused(config):
    with pytest.raises(ValueError):
        make_env(config)
