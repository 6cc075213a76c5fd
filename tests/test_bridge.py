"""The page's Python facade: two bridges wired back to back over a seeded network, as two pages would be."""

from __future__ import annotations

import json
import random

from pyodide_runtime.bridge import Bridge, recover_bundle, session_id_for_room
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"


def study(episodes: int = 2, max_steps: int = 60, **session) -> dict:
    return {
        "study": "bridge_test",
        "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
        "players": 2,
        "config": {"env_config": {"max_steps": max_steps},
                   "session": {"players": 2, "fps": 30, "episodes": episodes, "seed": 5, **session}},
    }


def run_pair(desc: dict, *, link: LinkSpec = LinkSpec(), away: tuple[float, float] | None = None,
             max_ms: float = 60_000.0, tick_ms: float = 1000 / 30, bridges: list[Bridge] | None = None):
    """Two bridges (built from ``desc`` unless given) ticking at ``tick_ms``; seat 1 is hidden (ticks at 1 Hz)
    during ``away``."""
    if bridges is None:
        bridges = [Bridge(json.dumps(desc), s, room="room-token", participant=f"p{s}", page={"user_agent": "test"})
                   for s in range(2)]
    net = Network(seed=3, default=link)
    rng = random.Random(11)
    inputs = [0, 0]
    outs: dict[int, list[dict]] = {0: [], 1: []}
    next_tick = [0.0, 7.0]
    now = 0.0
    while now < max_ms and not all(b.session.ended for b in bridges):
        seat = 0 if next_tick[0] <= next_tick[1] else 1
        now = next_tick[seat]
        hidden = away is not None and seat == 1 and away[0] <= now < away[1]
        if rng.random() < 0.2:
            inputs[seat] = rng.randrange(5)
        out = bridges[seat].tick(now, inputs[seat], net.deliver(now, seat), hidden)
        outs[seat].append(out)
        for to, data, _reliable in out["messages"]:
            net.send(now, seat, to, data)
        next_tick[seat] = now + (1000.0 if hidden else tick_ms)
    return bridges, outs


def test_two_bridges_finish_with_identical_bundles_under_latency(tmp_path):
    bridges, outs = run_pair(study(), link=LinkSpec(latency_ms=60, jitter_ms=10, loss=0.1))
    assert all(b.session.outcome == "complete" for b in bridges)
    assert sum(b.session.stats["rollbacks"] for b in bridges) > 0, "latency must have caused rollbacks"
    paths = []
    for seat, b in enumerate(bridges):
        final = [o for o in outs[seat] if o["bundle"] is not None]
        assert len(final) == 1, "the bundle is handed over exactly once"
        assert final[0]["filename"] == b.filename and final[0]["filename"].endswith(f"seat{seat}.zip")
        path = tmp_path / final[0]["filename"]
        path.write_bytes(final[0]["bundle"])
        paths.append(path)
        assert validate(str(path)).ok
        checkpoints = [o["checkpoint"] for o in outs[seat] if o["checkpoint"]]
        assert len(checkpoints) >= 1, "an episode end stores a checkpoint"
    assert compare(str(paths[0]), str(paths[1])).identical
    assert bridges[0].session_id == bridges[1].session_id == session_id_for_room("room-token")
    assert "room-token" not in bridges[0].session_id


def test_tick_output_is_plain_data_for_the_page():
    bridges, outs = run_pair(study(episodes=1, max_steps=30))
    rendered = [o for o in outs[0] if o["render"] is not None]
    assert rendered and all(o["render_kind"] == "draw" for o in rendered)
    shapes = json.loads(rendered[-1]["render"])
    assert shapes[0]["type"] == "canvas"
    sent = [m for o in outs[0] for m in o["messages"]]
    assert all(isinstance(seat, int) and isinstance(data, bytes) and isinstance(rel, bool) for seat, data, rel in sent)
    assert any(rel for _, _, rel in sent) and any(not rel for _, _, rel in sent), "hello/goodbye reliable, inputs not"
    assert outs[0][0]["hud"]["waiting"] is True
    status = json.loads(bridges[0].status_json())
    assert status["phase"] == "ended" and status["outcome"] == "complete"
    assert status["confirmed_frames"] == 30 and status["episodes_done"] == 1
    assert {"rollbacks", "fast_forward_frames", "transport", "rtt_ms", "away", "partner_away"} <= set(status)
    measured = {"tick_cost_ms": {"count": 3, "mean": 1.5, "max": 2.0}, "conditioner": None, "phase": "forged"}
    with_worker = json.loads(bridges[0].status_json(json.dumps(measured)))
    assert with_worker == {**status, "tick_cost_ms": measured["tick_cost_ms"], "conditioner": None}
    records = bridges[0].session.records()
    assert status["score"] == sum(r.rewards["player_0"] for r in records if r.episode == records[-1].episode)
    assert status["episode"] == 1


def test_hidden_partner_is_reported_and_checkpointed_then_fast_forwards(tmp_path):
    bridges, outs = run_pair(study(episodes=1, max_steps=240), away=(2000.0, 5000.0))
    assert all(b.session.outcome == "complete" for b in bridges)
    assert any(o["hud"]["partner_away"] for o in outs[0]), "seat 0 saw its partner away"
    assert any(e["type"] == "peer_away" for o in outs[0] for e in o["events"])
    hidden_checkpoints = [o for o in outs[1] if o["checkpoint"] and o["hud"]["away"]]
    assert hidden_checkpoints, "going hidden stores a checkpoint"
    paths = []
    for seat, b in enumerate(bridges):
        data, name, _sha = b.bundle()
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    assert compare(str(paths[0]), str(paths[1])).identical


def test_checkpoints_recover_a_bundle_after_a_crash(tmp_path):
    bridges, outs = run_pair(study(episodes=2, max_steps=40))
    stored = [o["checkpoint"] for o in outs[0] if o["checkpoint"]]
    assert len(stored) >= 1
    data, name = recover_bundle(stored)
    assert name.endswith("-recovered.zip")
    path = tmp_path / name
    path.write_bytes(data)
    assert validate(str(path)).ok


def test_close_hands_over_goodbyes_and_a_partial_bundle(tmp_path):
    b = Bridge(study(), 0, room="r")
    b.tick(0.0, 0, [], False)
    out = b.close(100.0, "participant left")
    assert out["messages"] and all(rel for _, _, rel in out["messages"])
    assert out["bundle"] and out["filename"].endswith("seat0.zip")
    assert b.status()["outcome"] == "partial"
    assert b.close(200.0)["bundle"] is None, "the bundle is handed over once"


def test_bad_local_input_and_garbage_from_peers_do_not_raise():
    b = Bridge(study(), 0, room="r")
    out = b.tick(0.0, 99, [(1, b"\x00garbage"), (1, memoryview(b"xx"))], False)
    assert out["messages"]
    assert b.status()["rejected"] == 2


def test_rgb_frames_become_rgba_bytes_and_hidden_pages_render_nothing():
    import numpy as np

    a, b = (Bridge(study(), seat, room="r") for seat in range(2))
    now, to_a, to_b = 0.0, [], []
    while not (a.session.started and b.session.started):
        now += 10.0
        to_b += [(0, d) for _, d, _ in a.tick(now, 0, [], False)["messages"]]
        to_a += [(1, d) for _, d, _ in b.tick(now, 0, to_b, False)["messages"]]
        to_b = []
        a.tick(now + 1, 0, to_a, False)
        to_a = []
    a.session.render = lambda: np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    a._dirty = True
    out = a.tick(now + 2, 0, [], False)
    assert out["render_kind"] == "rgba" and (out["render_w"], out["render_h"]) == (3, 2)
    pixels = np.frombuffer(out["render"], dtype=np.uint8).reshape(2, 3, 4)
    assert (pixels[..., :3] == np.arange(18).reshape(2, 3, 3)).all() and (pixels[..., 3] == 255).all()
    a._dirty = True
    assert a.tick(now + 3, 0, [], True)["render"] is None, "nothing is rendered for a hidden page"
    assert a.tick(now + 4, 0, [], False)["render"] is not None, "the frame is rendered again once visible"
