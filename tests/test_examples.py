"""The example studies' envs and the human-AI partner: games that work, determinism, rollback parity."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest

from pyodide_runtime.host.cli import main
from pyodide_runtime.host.compare import compare
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.examples import kitchen, pong
from pyodide_runtime.examples.human_ai import Partner
from pyodide_runtime.host.synctest import run_sync_test
from pyodide_runtime.host.validate import validate

PONG = "pyodide_runtime.examples.pong:make_env"
KITCHEN = "pyodide_runtime.examples.kitchen:make_env"
HUMAN_AI = "pyodide_runtime.examples.human_ai:make_env"
PARTNER = "pyodide_runtime.examples.human_ai:Partner"


@pytest.mark.parametrize(("spec", "bots"), [(PONG, None), (KITCHEN, None), (HUMAN_AI, {"cook_1": PARTNER})])
@pytest.mark.parametrize("distance", [1, 4, 8])
def test_sync_test_passes(spec, bots, distance):
    game = load_game(spec, {"max_steps": 200}, bots=bots)
    report = run_sync_test(game, frames=500, distance=distance, seed=distance)
    assert report.passed, report.mismatch
    assert report.episodes >= 2 and report.checks >= 490


@pytest.mark.parametrize(("spec", "config"), [(PONG, {"max_steps": 150}), (KITCHEN, {"max_steps": 150})])
def test_two_peers_over_a_lossy_network_export_identical_bundles(tmp_path, capsys, spec, config):
    out = tmp_path / "run"
    code = main(["simulate", "--env", spec, "--env-config", json.dumps(config), "--episodes", "2", "--seed", "5",
                 "--latency-ms", "90", "--jitter-ms", "20", "--loss", "0.1", "--out", str(out)])
    assert code == 0, capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["network"]["lost"] > 0
    assert sum(p["rollbacks"] for p in summary["peers"]) > 0
    assert all(p["confirmed_frames"] == 300 for p in summary["peers"])
    a, b = sorted(out.glob("*.zip"))
    assert compare(a, b).identical
    assert validate(a).ok and validate(b).ok


def _run(env, policy, frames, seed=0):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rewards, infos = [], []
    for _ in range(frames):
        actions = {agent: policy(agent, obs[agent], rng) for agent in env.possible_agents}
        obs, reward, terminated, truncated, info = env.step(actions)
        rewards.append(reward)
        infos.append(info)
        if all(terminated.values()) or all(truncated.values()):
            break
    return obs, rewards, infos


def test_pong_tracking_paddles_return_the_ball_and_a_still_one_concedes():
    def policy(agent, obs, rng):
        if agent == "right":
            return 0  # never moves
        aim = obs["paddle"] * 16 + 2 * 16  # meet the ball with the paddle's upper end: it leaves at an angle
        return 1 if obs["ball"][1] < aim - 16 else 2 if obs["ball"][1] > aim + 16 else 0

    obs, rewards, infos = _run(pong.make_env({"target_score": 3}), policy, 3000)
    assert obs["left"]["score"][0] == 3, "the tracking player won"
    assert sum(r["left"] for r in rewards) == 3 - obs["left"]["score"][1]
    assert infos[-1]["left"]["winner"] and not infos[-1]["right"]["winner"]
    assert infos[-1]["left"]["returns"] > 0


def test_pong_render_is_a_draw_list_with_both_paddles_and_the_score():
    env = pong.make_env()
    env.reset(seed=1)
    shapes = env.render()
    assert shapes[0]["type"] == "canvas"
    assert sum(s["type"] == "rect" and s["h"] == 10 * 8 for s in shapes) == 2
    assert [s["text"] for s in shapes if s["type"] == "text"][:2] == ["0", "0"]


def test_kitchen_cooks_serve_orders_for_a_shared_reward():
    env = kitchen.make_env({"max_steps": 1200})
    partners = {"cook_0": Partner(), "cook_1": Partner()}
    _, rewards, infos = _run(env, lambda agent, o, rng: partners[agent].act(o, rng), 1200, seed=3)
    delivered = infos[-1]["cook_0"]["delivered"]
    assert delivered >= 5
    assert all(r["cook_0"] == r["cook_1"] for r in rewards), "the reward is shared"
    assert sum(r["cook_0"] for r in rewards) == 20 * delivered
    events = {info[a]["event"] for info in infos for a in info}
    assert {"took_onion", "took_tomato", "took_plate", "took_soup", "delivered"} <= events


def test_kitchen_interactions_follow_the_rules():
    env = kitchen.make_env({"cook_time": 3})
    env.reset(seed=0)
    s = env.get_state()
    # Cook 0 starts at (1, 1); its crate of onions is at (2, 0), above (2, 1).
    steps = [2, 1, kitchen.INTERACT]
    for a in steps:
        obs, *_ = env.step({"cook_0": a, "cook_1": 0})
    assert obs["cook_0"]["holding"] == "onion" and obs["cook_0"]["position"] == [2, 1]
    env.step({"cook_0": kitchen.INTERACT, "cook_1": 0})  # hands full: the crate gives nothing more
    assert env.get_state()[3][0] == "onion"
    # Walk to (4, 1) under the top pot at (4, 0) and put the onion in.
    for a in (2, 2, 1, kitchen.INTERACT):
        obs, *_ = env.step({"cook_0": a, "cook_1": 0})
    assert obs["cook_0"]["holding"] == "" and obs["cook_0"]["pots"][0] == ["O", 3]
    env.set_state(s)
    assert env.step({"cook_0": 0, "cook_1": 0})[0]["cook_0"]["pots"][0] == ["", 3], "set_state restored the pot"


def test_cooks_cannot_walk_through_each_other_or_counters():
    env = kitchen.make_env()
    env.reset(seed=0)
    obs, *_ = env.step({"cook_0": 1, "cook_1": 0})  # up, into the counter: turns only
    assert obs["cook_0"]["position"] == [1, 1] and obs["cook_0"]["facing"] == 1
    env.set_state(env.get_state()[:1] + (((3, 2), (4, 2)),) + env.get_state()[2:])
    obs, *_ = env.step({"cook_0": 2, "cook_1": 4})  # a swap is blocked
    assert obs["cook_0"]["position"] == [3, 2] and obs["cook_1"]["position"] == [4, 2]


def test_partner_is_a_pure_function_of_observation_and_rng():
    env = kitchen.make_env()
    obs, _ = env.reset(seed=2)
    partner = Partner(epsilon=0.3)
    seen = []
    for _ in range(300):
        o = obs["cook_1"]
        state = np.random.default_rng(7).bit_generator.state
        rng_a, rng_b = np.random.default_rng(), np.random.default_rng()
        rng_a.bit_generator.state = state
        rng_b.bit_generator.state = state
        action = partner.act(o, rng_a)
        assert Partner(epsilon=0.3).act(json.loads(json.dumps(o)), rng_b) == action
        seen.append(action)
        obs, *_ = env.step({"cook_0": 0, "cook_1": action})
    assert set(seen) >= {1, 2, 3, 4, kitchen.INTERACT}
    # Its randomness comes from the generator it is given: other generators, other choices.
    draws = {tuple(Partner(epsilon=0.5).act(obs["cook_1"], np.random.default_rng(s)) for _ in range(20))
             for s in range(5)}
    assert len(draws) > 1


def test_human_ai_bridge_sessions_are_reproducible():
    from pyodide_runtime.bridge import Bridge
    from pyodide_runtime.host.server.study import load_study
    from pyodide_runtime.host.study_config import example_config

    study = load_study(None, example_config("human_ai"), "human_ai").describe()
    study["config"]["env_config"]["max_steps"] = 90
    study["config"]["session"]["episodes"] = 1

    def play():
        bridge = Bridge(study, seat=0, room="r")
        for i in range(200):
            if bridge.tick(i * 1000 / 30, (i // 7) % 6)["ended"]:
                break
        assert bridge.session.outcome == "complete"
        # The page releases records once they are exported, so read what the participant downloads.
        with zipfile.ZipFile(io.BytesIO(bridge.bundle()[0])) as z:
            rows = list(csv.DictReader(io.StringIO(z.read("frames.csv").decode())))
        partner = [row for row in rows if row["agent"] == "cook_1"]
        assert len({row["action"] for row in partner}) >= 3, "the partner plays"
        return rows

    first = play()
    assert len({row["frame"] for row in first}) == 90 and first == play()


def test_the_sync_test_would_catch_a_partner_with_its_own_generator():
    """The rollback check above has teeth: a partner drawing from an unsnapshotted generator fails it."""

    class OwnGenerator(Partner):
        def __init__(self) -> None:
            super().__init__(epsilon=0.3)
            self.own = np.random.default_rng(0)

        def act(self, observation, rng):
            return super().act(observation, self.own)

    game = load_game(HUMAN_AI, {"max_steps": 200}, bots={"cook_1": OwnGenerator()}, verify=False)
    report = run_sync_test(game, frames=200, distance=4)
    assert not report.passed and report.mismatch.field in ("actions", "observations", "state")
