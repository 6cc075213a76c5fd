"""Hosted seats: an ONNX policy plays the third seat of a session, run by the owning page (seat 0).

Two bridges (the two participant pages) over a seeded lossy network; the owning page's inference requests are
answered by CPython onnxruntime a few ticks later, as the worker answers them with onnxruntime-web. The tests
assert what the design promises: both exports identical and valid despite rollbacks, the policy seat's inputs
exactly those its decision log implies, and every decision the model's choice for the recorded observation.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from pyodide_runtime.bridge import Bridge
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.data import load
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.onnx_models import mlp_policy
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate
from pyodide_runtime.hosted import SeatRouter, expected_inputs
from pyodide_runtime.policies import OnnxRuntimeModel, PolicySpec, map_observation, resolve_policy

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
KEYS = ["position", "coins"]


def study_with_policy(tmp_path, *, frame_skip: int = 1, episodes: int = 2, max_steps: int = 90):
    from pyodide_runtime.envs.loading import load_game

    env_config = {"players": 3, "max_steps": max_steps}
    game = load_game(COIN_CHASE, env_config)
    observation = game.reset(5).observations["player_2"]
    size = sum(np.asarray(observation[k], dtype=np.float32).size for k in KEYS)
    model = tmp_path / "policy.onnx"
    mlp_policy(model, size, game.input_count(2), hidden=(16,), seed=3)
    spec = PolicySpec.from_table("player_2", {"model": model.name, "keys": KEYS, "frame_skip": frame_skip},
                                 tmp_path)
    resolved = resolve_policy(spec, 2, game.input_count(2), observation).to_json()
    resolved["url"] = f"/policies/{resolved['model_sha256']}.onnx"
    desc = {
        "study": "hosted_test",
        "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
        "players": 3, "pages": 2, "policies": [resolved],
        "config": {"env_config": env_config, "policies": ["player_2"],
                   "session": {"players": 3, "fps": 30, "episodes": episodes, "seed": 5, "input_delay": 2}},
    }
    return desc, resolved, model


def run_pages(desc: dict, model_path, *, link: LinkSpec, inference_ticks: int = 2, max_ms: float = 120_000.0):
    """The two pages; seat 0 answers its inference requests ``inference_ticks`` of its ticks later."""
    bridges = [Bridge(json.dumps(desc), s, room="room-ai", participant=f"p{s}") for s in range(2)]
    model = OnnxRuntimeModel(model_path)
    net = Network(seed=4, default=link)
    rng = random.Random(2)
    inputs = [0, 0]
    outs: dict[int, list[dict]] = {0: [], 1: []}
    pending: list[tuple[int, dict]] = []
    ticks = [0, 0]
    next_tick = [0.0, 11.0]
    now = 0.0
    while now < max_ms and not all(o and o[-1].get("filename") for o in outs.values()):
        seat = 0 if next_tick[0] <= next_tick[1] else 1
        now = next_tick[seat]
        if seat == 0:
            for due, request in [p for p in pending if p[0] <= ticks[0]]:
                pending.remove((due, request))
                bridges[0].policy_result(request["seat"], request["id"], model.run(request["feeds"]), 0.5)
        if rng.random() < 0.2:
            inputs[seat] = rng.randrange(5)
        out = bridges[seat].tick(now, inputs[seat], net.deliver(now, seat))
        ticks[seat] += 1
        outs[seat].append(out)
        for request in out["inference"]:
            pending.append((ticks[0] + inference_ticks, request))
        for to, data, _reliable in out["messages"]:
            net.send(now, seat, to, data)
        next_tick[seat] = now + 1000 / 30
    return bridges, outs


def saved(tmp_path, outs) -> list:
    paths = []
    for seat in (0, 1):
        final = [o for o in outs[seat] if o["bundle"] is not None]
        assert len(final) == 1, f"seat {seat} hands over its bundle exactly once"
        path = tmp_path / final[0]["filename"]
        path.write_bytes(final[0]["bundle"])
        paths.append(path)
    return paths


def observation_before(bundle, episode: int, t: int) -> dict:
    """The policy agent's observation before frame ``t`` of ``episode``, from the export (reset or frames)."""
    if t == 0:
        rows = [r for r in bundle.resets if r["episode"] == episode and r["agent"] == "player_2"]
    else:
        rows = [r for r in bundle.frames if r["episode"] == episode and r["frame"] == t - 1 and r["agent"] == "player_2"]
    assert len(rows) == 1
    return rows[0]["observation"]


def test_a_policy_seat_gives_identical_exact_exports_under_latency_and_loss(tmp_path):
    desc, resolved, model_path = study_with_policy(tmp_path)
    bridges, outs = run_pages(desc, model_path, link=LinkSpec(latency_ms=70, jitter_ms=15, loss=0.05))
    assert [b.session.outcome for b in bridges] == ["complete", "complete"]
    hosted = bridges[0].hosted[2]
    assert hosted.session.outcome == "complete"
    assert not bridges[1].hosted, "only the owning page runs the policy"
    assert sum(b.session.stats["rollbacks"] for b in bridges) > 0, "latency must have caused rollbacks"
    assert hosted.session.stats["rollbacks"] > 0, "the policy's own session rolled back too"
    a, b = saved(tmp_path, outs)
    assert validate(str(a)).ok and validate(str(b)).ok
    assert compare(str(a), str(b)).identical

    bundle = load(str(a), backend="python", decode_json=True)
    meta = bundle.metadata
    policies = meta["canonical"]["policies"]
    assert policies == [{"agent": "player_2", "seat": 2, "model_sha256": resolved["model_sha256"],
                         "model_bytes": model_path.stat().st_size, "action": "argmax", "frame_skip": 1,
                         "default_action": 0, "owner_seat": 0}]
    assert load(str(b), backend="python").metadata["canonical"]["policies"] == policies
    assert load(str(b), backend="python").metadata["participant_local"]["extra"]["policies"] == []
    report = meta["participant_local"]["extra"]["policies"][0]
    decisions, applied = report["decisions"], report["applied"]
    assert len(decisions) > 20 and len({d["action"] for d in decisions}) > 1, "the policy's actions vary"

    frames = [r for r in bundle.frames if r["agent"] == "player_2"]
    executed = [int(r["input"]) for r in sorted(frames, key=lambda r: r["global_frame"])]
    assert executed == expected_inputs(applied, len(executed), resolved["default_action"])
    assert {int(r["action"]) for r in frames} == set(executed)

    onnx_model = OnnxRuntimeModel(model_path)
    from pyodide_runtime.policies import ResolvedPolicy

    policy = ResolvedPolicy.from_json(resolved)
    for d in decisions:
        observation = observation_before(bundle, d["episode"], d["frame_in_episode"])
        logits = np.frombuffer(onnx_model.run(map_observation(policy, observation))[0]["data"], dtype=np.float32)
        assert int(np.argmax(logits)) == d["action"], f"decision {d} is the model's choice for its observation"


def test_the_router_frames_packets_only_when_a_page_hosts_seats():
    plain = SeatRouter(2)
    assert plain.frame(1, b"abcdef") == (1, b"abcdef")
    assert plain.unframe(1, b"abcdef") == (-1, 1, b"abcdef")
    router = SeatRouter(3, hosted=[2])
    assert router.pages == 2 and router.host_of(2) == 0 and router.host_of(1) == 1
    page, framed = router.frame(2, b"\x01\x02\x03\x01rest")
    assert page == 0 and framed == b"\x02\x01\x02\x03\x01rest"
    assert router.unframe(1, framed) == (2, 1, b"\x01\x02\x03\x01rest")
    # Page 1 may not speak for seat 2 (sender byte 3 of the packet), nor address seat 7.
    assert router.unframe(1, b"\x00\x01\x02\x03\x02rest") is None
    assert router.unframe(1, b"\x07\x01\x02\x03\x01rest") is None
    assert router.unframe(0, b"\x01\x01\x02\x03\x02rest") == (1, 2, b"\x01\x02\x03\x02rest")
    with pytest.raises(ValueError):
        SeatRouter(2, hosted=[0])


def test_stale_or_failed_inference_keeps_the_seat_playing_and_is_reported(tmp_path):
    desc, resolved, model_path = study_with_policy(tmp_path, episodes=1, max_steps=60)
    desc["players"], desc["pages"] = 3, 2
    owner = Bridge(json.dumps(desc), 0, room="room-x", participant="p0")
    other = Bridge(json.dumps(desc), 1, room="room-x", participant="p1")
    assert set(owner.hosted) == {2} and not other.hosted
    assert owner.policy_result(2, 999, [], 0.1) is None, "an unknown request id changes nothing"
    assert owner.policy_result(1, 1, [], 0.1) is None, "seat 1 is not a policy seat of this page"
    pages = {0: owner, 1: other}
    inboxes: dict[int, list] = {0: [], 1: []}
    clock = [0.0]

    def until_asked() -> list[dict]:
        """Tick both pages back to back (no latency) until the owner asks for an inference."""
        while clock[0] < 60_000:
            asked = []
            for seat, page in pages.items():
                out = page.tick(clock[0], 0, inboxes[seat])
                inboxes[seat] = []
                for to, data, _ in out["messages"]:
                    inboxes[to].append((seat, data))
                asked += out["inference"]
            clock[0] += 1000 / 30
            if asked:
                return asked
        return []

    asked = until_asked()
    assert asked, "the owning page asked for an inference"
    owner.policy_failed(2, "inference raised: out of memory")
    assert owner.policy_result(2, asked[0]["id"], [], 0.1) is None, "the failed request's late result is dropped"
    report = owner.diagnostics().extra["policies"][0]
    assert report["failures"] == ["inference raised: out of memory"]
    assert report["policy"]["model_sha256"] == resolved["model_sha256"] and report["decisions"] == []
    # The next decision point asks again, and outputs the policy cannot use are a failure, not an exception.
    again = until_asked()
    assert again, "after a failure the policy asks again"
    assert owner.policy_result(2, again[0]["id"], [{"name": "logits", "dtype": "float32", "dims": [1, 2],
                                                     "data": b"\0" * 8}], 0.1) is None
    report = owner.diagnostics().extra["policies"][0]
    assert len(report["failures"]) == 2 and "expected 5" in report["failures"][1], report["failures"]


def test_a_policy_study_refuses_rejoin_and_policies_on_any_seat_but_the_last(tmp_path):
    from pyodide_runtime.host.server.study import StudyError, load_study, validate_env
    from pyodide_runtime.host.study_config import StudyConfigError, load_study_config

    mlp_policy(tmp_path / "p.onnx", 4, 5)
    base = f'''[env]
spec = "{COIN_CHASE}"
config = {{ players = 3 }}
[session]
players = 3
'''
    study = tmp_path / "study.toml"
    study.write_text(base + "rejoin_grace_ms = 5000\n[policies.player_2]\nmodel = \"p.onnx\"\n")
    with pytest.raises(StudyConfigError, match="rejoin_grace_ms"):
        load_study_config(study)
    study.write_text(base + "[policies.player_0]\nmodel = \"p.onnx\"\n")
    with pytest.raises(StudyError, match="must play the last seats"):
        validate_env(load_study(None, study))
    study.write_text(base + "[bots]\nplayer_2 = \"random\"\n[policies.player_2]\nmodel = \"p.onnx\"\n")
    with pytest.raises(StudyConfigError, match="has a bot in \\[bots\\] too"):
        load_study_config(study)
    study.write_text(base + "[policies.player_2]\nmodel = \"p.onnx\"\nframe_skip = 0\n")
    with pytest.raises(StudyConfigError, match=r"study.toml: policies.player_2.frame_skip: must be an integer >= 1"):
        load_study_config(study)
