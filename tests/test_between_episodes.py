"""The hold between episodes and the interim bundles, on two bridges over a seeded lossy, late network."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile

import pytest

from pyodide_runtime.bridge import Bridge
from pyodide_runtime.config import ConfigError, SessionConfig
from pyodide_runtime.export.bundle import open_bundle
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
HOLD_MS = 1500
EPISODES = 3
LENGTH = 40


def study(**session) -> dict:
    return {
        "study": "between_test",
        "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
        "players": 2,
        "config": {"env_config": {"max_steps": LENGTH},
                   "session": {"players": 2, "fps": 30, "episodes": EPISODES, "seed": 7, **session}},
    }


def run_pair(desc: dict, link: LinkSpec, max_ms: float = 60_000.0):
    """Two bridges ticking every frame (seat 1 offset by 7 ms); returns the bridges and every tick output."""
    bridges = [Bridge(json.dumps(desc), s, room="room-between", participant=f"p{s}") for s in range(2)]
    net = Network(seed=5, default=link)
    rng = random.Random(3)
    inputs = [0, 0]
    outs: dict[int, list[tuple[float, dict]]] = {0: [], 1: []}
    next_tick = [0.0, 7.0]
    while not all(b.session.ended for b in bridges):
        seat = 0 if next_tick[0] <= next_tick[1] else 1
        now = next_tick[seat]
        assert now < max_ms, "the session did not end"
        if rng.random() < 0.3:
            inputs[seat] = rng.randrange(5)
        out = bridges[seat].tick(now, inputs[seat], net.deliver(now, seat))
        outs[seat].append((now, out))
        for to, data, _reliable in out["messages"]:
            net.send(now, seat, to, data)
        next_tick[seat] = now + 1000 / 30
    return bridges, outs


@pytest.fixture(scope="module")
def held():
    return run_pair(study(between_episodes_ms=HOLD_MS), LinkSpec(latency_ms=70, jitter_ms=20, loss=0.1))


def test_config_range_and_digest():
    assert SessionConfig().between_episodes_ms == 0
    with pytest.raises(ConfigError, match="between_episodes_ms"):
        SessionConfig(between_episodes_ms=600_001)
    with pytest.raises(ConfigError, match="between_episodes_ms"):
        SessionConfig(between_episodes_ms=-1)
    # The handshake compares the digest: peers with different holds do not start together.
    assert SessionConfig(between_episodes_ms=1).digest() != SessionConfig().digest()


def test_both_peers_hold_between_episodes_and_export_identical_data(held, tmp_path):
    bridges, outs = held
    assert all(b.session.outcome == "complete" for b in bridges)
    assert sum(b.session.stats["rollbacks"] for b in bridges) > 0, "latency and loss must cause rollbacks"
    for seat, b in enumerate(bridges):
        status = b.status()
        assert status["between_episodes_ms"] == HOLD_MS
        assert status["between_episode_holds"] == EPISODES - 1
        shown = [(now, o["hud"]["between"], o["frame"]) for now, o in outs[seat] if "between" in o["hud"]]
        assert sorted({h["episode"] for _, h, _ in shown}) == list(range(1, EPISODES)), seat
        for episode in range(1, EPISODES):
            spans = [(now, h, f) for now, h, f in shown if h["episode"] == episode]
            # The frame stands still for the whole hold, which lasts (about) between_episodes_ms of wall time.
            assert len({f for _, _, f in spans}) == 1
            assert spans[-1][0] - spans[0][0] >= HOLD_MS - 2 * 1000 / 30
            assert 0 < spans[-1][1]["remaining_ms"] <= spans[0][1]["remaining_ms"] <= HOLD_MS
            assert isinstance(spans[0][1]["scores"], float)
    finals = [b.bundle()[0] for b in bridges]
    for seat, data in enumerate(finals):
        path = tmp_path / f"seat{seat}.zip"
        path.write_bytes(data)
        assert validate(str(path)).ok, validate(str(path)).problems
    digests = [json.loads(open_bundle(d)["manifest.json"])["canonical_digest"] for d in finals]
    assert digests[0] == digests[1]
    assert compare(str(tmp_path / "seat0.zip"), str(tmp_path / "seat1.zip")).identical


def test_the_metadata_records_the_hold_and_episodes_keep_their_length(held):
    bridges, _ = held
    meta = json.loads(open_bundle(bridges[0].bundle()[0])["metadata.json"])["canonical"]
    assert meta["config"]["between_episodes_ms"] == HOLD_MS
    assert [e["frames"] for e in meta["episodes"]] == [LENGTH] * EPISODES


def test_interim_bundles_hold_exactly_the_confirmed_episodes(held, tmp_path):
    bridges, outs = held
    for seat in range(2):
        interims = [o for _, o in outs[seat] if o.get("interim") is not None]
        assert [o["interim_label"] for o in interims] == [f"episode{n}" for n in range(1, EPISODES)]
        for n, o in enumerate(interims, start=1):
            path = tmp_path / f"interim{seat}-{n}.zip"
            path.write_bytes(o["interim"])
            result = validate(str(path))
            assert result.ok, result.problems
            assert result.summary["status"] == "interim"
            files = open_bundle(o["interim"])
            meta = json.loads(files["metadata.json"])["canonical"]
            assert meta["status"] == "interim"
            assert [e["episode"] for e in meta["episodes"]] == list(range(n))
            assert all(e["ended"] for e in meta["episodes"])
            assert meta["confirmed_frames"] == n * LENGTH
            assert "unconfirmed_tail.csv" not in files
            assert hashlib.sha256(o["interim"]).hexdigest() == o["interim_sha256"]
            # The interim's frames are the final bundle's first frames, byte for byte.
            final = open_bundle(bridges[seat].bundle()[0])["frames.csv"]
            assert final.startswith(files["frames.csv"])
        final = [o for _, o in outs[seat] if o["bundle"] is not None]
        assert len(final) == 1 and final[0]["interim"] is None, "the last episode's end makes the final bundle only"


def test_validate_refuses_an_interim_that_claims_a_partial_episode(held):
    bridges, outs = held
    data = next(o["interim"] for _, o in outs[0] if o.get("interim") is not None)
    files = open_bundle(data)
    meta = json.loads(files["metadata.json"])
    meta["canonical"]["status"] = "complete"
    files["metadata.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    problems = validate(buf.getvalue()).problems
    assert any("status 'complete'" in p for p in problems), problems


def test_no_hold_without_the_setting():
    bridges, outs = run_pair(study(episodes=2), LinkSpec(latency_ms=30))
    assert all(b.status()["between_episode_holds"] == 0 for b in bridges)
    assert not any("between" in o["hud"] for seat in outs for _, o in outs[seat])


def test_peers_with_different_holds_do_not_start():
    from pyodide_runtime.envs.loading import load_game
    from pyodide_runtime.host.testing import run_peers
    from pyodide_runtime.session import HandshakeFailed, Session

    def game():
        return load_game(COIN_CHASE, {"max_steps": 20}, verify=False)

    configs = [SessionConfig(episodes=2, between_episodes_ms=0), SessionConfig(episodes=2, between_episodes_ms=500)]
    sessions = [Session(game(), configs[s], s) for s in range(2)]
    result = run_peers(lambda s: game(), configs[0], sessions=sessions, max_ms=5_000)
    for peer in result.peers:
        assert peer.count(HandshakeFailed) == 1 and peer.session.confirmed_frames == 0
