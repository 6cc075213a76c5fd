"""PolicyRunner: decisions on due frames, seeded choices, recurrent state per episode, and the one-in-flight rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from policy_models import linear, recurrent

from pyodide_runtime.policies import (
    OnnxRuntimeModel,
    PolicyError,
    PolicyRunner,
    PolicySpec,
    argmax_action,
    recompute_decisions,
    resolve_policy,
    to_tensor,
)


def scores(*values: float) -> list[dict]:
    return [to_tensor("logits", np.asarray([values], dtype=np.float32))]


@pytest.fixture
def flat(tmp_path: Path):
    """A policy over 4 actions whose logits are the observation itself (identity weights)."""
    model = linear(tmp_path / "id.onnx", np.eye(4))

    def make(**table):
        spec = PolicySpec.from_table("bot", {"model": str(model), **table}, tmp_path)
        return resolve_policy(spec, 1, 4, np.zeros(4)), OnnxRuntimeModel(model)

    return make


def test_argmax_ties_go_to_the_lowest_index_and_nan_never_wins():
    assert argmax_action(np.array([0.5, 2.0, 2.0, 1.0])) == 1
    assert argmax_action(np.array([np.nan, 0.1, -3.0])) == 1


def test_the_model_chooses_and_the_action_is_held_between_decisions(flat):
    resolved, model = flat(frame_skip=3, default_action=2)
    runner = PolicyRunner(resolved, seed=0)
    runner.reset(0)
    assert runner.action == 2  # default before the first result
    assert [runner.due(f) for f in range(7)] == [True, False, False, True, False, False, True]
    feeds = runner.request(0, 0, 0, np.array([0, 0, 0, 9.0]))
    assert runner.action == 2 and runner.in_flight  # still the default while the request is in flight
    assert runner.deliver(model.run(feeds), 0.25) == 3 and runner.action == 3
    assert runner.decisions == [{"episode": 0, "frame": 0, "frame_in_episode": 0, "action": 3, "inference_ms": 0.25}]
    feeds = runner.request(0, 3, 3, np.array([0, 5.0, 0, 0]))
    assert runner.deliver(model.run(feeds)) == 1
    runner.reset(1)
    assert runner.action == 2  # back to the default at the next episode start


def test_one_request_in_flight_later_decision_points_are_skipped(flat):
    resolved, model = flat()
    runner = PolicyRunner(resolved, seed=0)
    first = runner.request(0, 0, 0, np.array([1.0, 0, 0, 0]))
    assert first is not None
    assert runner.request(0, 1, 1, np.array([0, 1.0, 0, 0])) is None
    assert runner.request(0, 2, 2, np.array([0, 1.0, 0, 0])) is None
    assert runner.stats["skipped"] == 2 and runner.stats["requests"] == 1
    assert runner.deliver(model.run(first)) == 0
    assert runner.request(0, 3, 3, np.array([0, 1.0, 0, 0])) is not None


def test_a_result_that_comes_after_a_reset_is_dropped(flat):
    resolved, model = flat(default_action=1)
    runner = PolicyRunner(resolved, seed=0)
    old = runner.request(0, 10, 10, np.array([0, 0, 0, 1.0]))
    runner.reset(1)
    assert not runner.in_flight
    assert runner.deliver(model.run(old)) == 1  # dropped: the current (default) action
    assert runner.decisions == [] and runner.stats["dropped"] == 1 and runner.action == 1
    # The same, when the new episode already has its own request in flight: the episode tells them apart.
    old = runner.request(1, 20, 20, np.array([0, 0, 0, 1.0]))
    runner.reset(2)
    new = runner.request(2, 21, 0, np.array([0, 0, 1.0, 0]))
    assert runner.deliver(model.run(old), episode=1) == 1 and runner.in_flight
    assert runner.deliver(model.run(new), episode=2) == 2
    assert [(d["episode"], d["frame"], d["action"]) for d in runner.decisions] == [(2, 21, 2)]
    with pytest.raises(PolicyError, match=r"request for episode 1 but the runner is in episode 2; call reset\(1\)"):
        runner.request(1, 30, 0, np.zeros(4))


def _draws(resolved, seed: int, episode: int, n: int = 40) -> list[int]:
    runner = PolicyRunner(resolved, seed)
    runner.reset(episode)
    out = []
    for frame in range(n):
        runner.request(episode, frame, frame, np.zeros(4))
        out.append(runner.deliver(scores(0.0, 0.5, 1.0, 0.2)))
    return out


def test_sampling_is_seeded_by_seed_episode_and_seat(flat):
    resolved, _ = flat(action="sample", temperature=2.0)
    a = _draws(resolved, seed=7, episode=3)
    assert a == _draws(resolved, seed=7, episode=3)  # reproducible
    assert len(set(a)) > 1  # and a real sample
    assert a != _draws(resolved, seed=8, episode=3)
    assert a != _draws(resolved, seed=7, episode=4)
    other_seat = type(resolved).from_json({**resolved.to_json(), "seat": 0})
    assert a != _draws(other_seat, seed=7, episode=3)
    # reset reseeds: the second episode's draws do not depend on how many the first made
    runner = PolicyRunner(resolved, 7)
    runner.reset(3)
    runner.request(3, 0, 0, np.zeros(4))
    runner.deliver(scores(0.0, 0.5, 1.0, 0.2))
    runner.reset(3)
    runner.request(3, 0, 0, np.zeros(4))
    assert runner.deliver(scores(0.0, 0.5, 1.0, 0.2)) == a[0]


def test_low_temperature_sampling_follows_the_best_score(flat):
    resolved, _ = flat(action="sample", temperature=0.01)
    assert set(_draws(resolved, seed=1, episode=0)) == {2}
    argmax, _ = flat()
    assert set(_draws(argmax, seed=1, episode=0)) == {2}


def test_recurrent_state_is_carried_and_reset_at_each_episode(tmp_path):
    # h_out = h_in + obs; logits = h_out @ W with W = identity: the action is the largest accumulated input.
    model_path = recurrent(tmp_path / "rnn.onnx", np.eye(3))
    spec = PolicySpec.from_table("bot", {"model": str(model_path), "recurrent": {"h_in": "h_out"}}, tmp_path)
    resolved = resolve_policy(spec, 0, 3, np.zeros(3))
    assert resolved.recurrent == ({"input": "h_in", "output": "h_out", "dtype": "float32", "dims": (1, 3)},)
    model = OnnxRuntimeModel(model_path)
    runner = PolicyRunner(resolved, seed=0)
    steps = [np.array([0, 0, 1.0]), np.array([2.0, 0, 0]), np.array([0, 0, 0.5]), np.array([0, 1.5, 0])]
    actions = []
    for frame, obs in enumerate(steps):
        feeds = runner.request(0, frame, frame, obs)
        assert [f["name"] for f in feeds] == ["obs", "h_in"]
        actions.append(runner.deliver(model.run(feeds)))
    # memory: [0,0,1] -> 2; [2,0,1] -> 0; [2,0,1.5] -> 0; [2,1.5,1.5] -> 0  (a memoryless policy: 2, 0, 2, 1)
    assert actions == [2, 0, 0, 0]
    assert runner.state["h_in"].tolist() == [[2.0, 1.5, 1.5]]
    runner.reset(1)
    assert runner.state["h_in"].tolist() == [[0.0, 0.0, 0.0]]
    feeds = runner.request(1, 4, 0, np.array([0, 0.1, 0]))
    assert runner.deliver(model.run(feeds)) == 1  # no memory of the previous episode


def test_recompute_reproduces_decisions_and_finds_a_changed_one(tmp_path):
    model_path = recurrent(tmp_path / "rnn.onnx", np.eye(3))
    spec = PolicySpec.from_table("bot", {"model": str(model_path), "recurrent": {"h_in": "h_out"},
                                         "action": "sample"}, tmp_path)
    resolved = resolve_policy(spec, 0, 3, np.zeros(3))
    model = OnnxRuntimeModel(model_path)
    runner = PolicyRunner(resolved, seed=5)
    rng = np.random.default_rng(0)
    observations = {}
    for episode in range(2):
        runner.reset(episode)
        for f in range(15):
            frame = episode * 100 + f
            observations[frame] = rng.normal(size=3)
            runner.deliver(model.run(runner.request(episode, frame, f, observations[frame])))
    assert recompute_decisions(resolved, model_path, observations, runner.decisions, seed=5) == []
    changed = [dict(d) for d in runner.decisions]
    changed[17]["action"] = (changed[17]["action"] + 1) % 3
    mismatches = recompute_decisions(resolved, model, observations, changed, seed=5)
    assert [(m["index"], m["frame"]) for m in mismatches] == [(17, 102)]
    assert recompute_decisions(resolved, model, observations, runner.decisions, seed=6) != []
