"""Rejoin after a reload: a page dies mid-episode, its new page resumes from its checkpoint and the partner's echo,
and both exports come out identical and complete, as if nothing happened."""

from __future__ import annotations

import json
import random

import pytest

import pyodide_runtime.bridge as bridge_module
from pyodide_runtime.bridge import Bridge, recover_bundle
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.export import ExportContext, Exporter
from pyodide_runtime.export.checkpoint import resume_point
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.games import TinyGridGame
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate
from pyodide_runtime.protocol import AWAY_BIT
from pyodide_runtime.session import (
    EndCause, FastForward, PeerReconnecting, PeerRejoined, Resumed, ResumeError, Session, Stalled,
)

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
LINK = LinkSpec(latency_ms=60, jitter_ms=15, loss=0.05)


def study(seed: int = 5, grace: int = 20_000, episodes: int = 3, max_steps: int = 90) -> dict:
    return {
        "study": "rejoin_test",
        "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
        "players": 2,
        "config": {"env_config": {"max_steps": max_steps},
                   "session": {"players": 2, "fps": 30, "episodes": episodes, "seed": seed,
                               "rejoin_grace_ms": grace}},
    }


def bridge(desc: dict, seat: int, **kw) -> Bridge:
    return Bridge(json.dumps(desc), seat, room="room", participant=f"p{seat}", page={"user_agent": "test"}, **kw)


class Pair:
    """Two bridges over a seeded network; seat 0's page can die and come back."""

    def __init__(self, desc: dict, link: LinkSpec = LINK, seed: int = 3) -> None:
        self.desc = desc
        self.bridges: list[Bridge | None] = [bridge(desc, 0), bridge(desc, 1)]
        self.net = Network(seed=seed, default=link)
        self.rng = random.Random(seed)
        self.inputs = [0, 0]
        self.next_tick = [0.0, 11.0]
        self.now = 0.0
        self.outs: list[list[dict]] = [[], []]
        self.stored: list[bytes] = []  # what seat 0's page put in IndexedDB
        self.events: list[list[dict]] = [[], []]

    def run(self, until_ms: float, stop=None) -> None:
        while self.now < until_ms:
            live = [s for s in (0, 1) if self.bridges[s] is not None and not self.bridges[s].session.ended]
            if not live or (stop is not None and stop(self)):
                return
            seat = min(live, key=lambda s: self.next_tick[s])
            self.now = self.next_tick[seat]
            if self.rng.random() < 0.25:
                self.inputs[seat] = self.rng.randrange(5)
            out = self.bridges[seat].tick(self.now, self.inputs[seat], self.net.deliver(self.now, seat))
            self.outs[seat].append(out)
            self.events[seat].extend(out["events"])
            if seat == 0 and out["checkpoint"] is not None:
                self.stored.append(out["checkpoint"])
            for to, data, _ in out["messages"]:
                self.net.send(self.now, seat, to, data)
            self.next_tick[seat] = self.now + 1000 / 30

    def drop_seat0(self) -> Bridge:
        old, self.bridges[0] = self.bridges[0], None
        self.next_tick[0] = float("inf")
        return old

    def reload_seat0(self, **kw) -> Bridge:
        self.net.deliver(self.now, 0)  # the old page's connections are gone with it
        self.bridges[0] = bridge(self.desc, 0, resume=list(self.stored), **kw)
        self.next_tick[0] = self.now + 1
        return self.bridges[0]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def final_bundle(outs: list[dict]) -> bytes:
    bundles = [o["bundle"] for o in outs if o["bundle"] is not None]
    assert len(bundles) == 1
    return bundles[0]


@pytest.fixture
def episode_end_checkpoints_only(monkeypatch):
    """Checkpoints only at episode ends (no periodic ones), so the rejoin must take many inputs back by echo."""
    monkeypatch.setattr(bridge_module, "_REJOIN_CHECKPOINT_MS", 1e12)


def test_a_reloaded_page_rejoins_and_both_exports_are_identical_and_complete(tmp_path, episode_end_checkpoints_only):
    pair = Pair(study())
    # Play into episode 1 (one checkpoint stored at the end of episode 0), then seat 0's page dies mid-episode.
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 90 + 45)
    old = pair.drop_seat0()
    assert len(pair.stored) == 1
    assert sum(b.session.stats["rollbacks"] for b in (old, pair.bridges[1])) > 0, "the link must cause rollbacks"
    old_own = old.session.queues.values(0, 0, old.session.queues.count(0))
    b = pair.bridges[1]
    assert b.peer_left(0, "disconnected")
    pair.run(pair.now + 4_000)  # four seconds without seat 0: B waits, it does not end
    assert not b.session.ended
    assert "stalled" in types(pair.events[1]) and "peer_reconnecting" in types(pair.events[1])
    b_frame = b.session.frame

    a = pair.reload_seat0()
    c = a.session.stats["resumed"]["from_frame"]
    assert c == 90 and a.session.confirmed_frames == c and not a.session.started
    assert a.hud()["resuming"] and a.hud()["waiting"] and not b.hud()["resuming"]
    pair.run(pair.now + 60_000)
    assert a.session.outcome == "complete" and b.session.outcome == "complete" and not a.hud()["resuming"]

    resumed = [e for e in pair.events[0] if e["type"] == "resumed"]
    assert resumed == [{"type": "resumed", "from_frame": c, "replayed_frames": c,
                        "echoed_frames": resumed[0]["echoed_frames"]}]
    echoed = resumed[0]["echoed_frames"]
    assert echoed > 0, "the partner held inputs of seat 0 past the checkpoint"
    # Those inputs are the old page's own, as it had sent them, not new ones.
    assert a.session.queues.values(0, c, c + echoed) == old_own[c:c + echoed]
    assert a.session.stats["resumed"]["echoed_frames"] == echoed
    assert a.session.stats["fast_forward_frames"] > 0 and "fast_forward" in types(pair.events[0])
    assert a.session.stats["desyncs"] == b.session.stats["desyncs"] == 0
    assert a.session.stats["resumed"]["partner_frame"] >= b_frame - 1
    assert "peer_rejoined" in types(pair.events[1])
    rejoined = [e for e in pair.events[1] if e["type"] == "peer_rejoined"]
    assert len(rejoined) == 1 and rejoined[0]["gap_ms"] >= 4_000

    paths = []
    for seat, outs in enumerate((pair.outs[0], pair.outs[1])):
        path = tmp_path / f"seat{seat}.zip"
        path.write_bytes(final_bundle(outs))  # seat 0: the old page never handed a bundle over, the new one did
        assert validate(str(path)).ok
        paths.append(path)
    result = compare(str(paths[0]), str(paths[1]))
    assert result.identical, result.differences
    meta = json.loads(_member(paths[0], "metadata.json"))
    assert meta["canonical"]["status"] == "complete" and meta["canonical"]["confirmed_frames"] == 270
    assert meta["participant_local"]["stats"]["resumed"]["from_frame"] == c
    network = json.loads(_member(paths[0], "diagnostics/network.json"))
    assert [r["event"] for r in network["rejoins"]] == ["resumed"]
    # The new page's checkpoints, stored after the old page's, replace them for a recovered download.
    recovered, _ = recover_bundle(pair.stored)
    assert json.loads(_member(recovered, "metadata.json"))["canonical"]["confirmed_frames"] == 270
    network_b = json.loads(_member(paths[1], "diagnostics/network.json"))
    assert [r["event"] for r in network_b["rejoins"]] == ["peer_reconnecting", "peer_rejoined"]


def _member(source, name: str) -> bytes:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as z:
        return z.read(name)


def test_without_a_rejoin_grace_the_partner_ends_partial_on_silence_as_before():
    pair = Pair(study(grace=0))
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 100)
    pair.drop_seat0()
    b = pair.bridges[1]
    assert not b.peer_left(0, "disconnected"), "the notice changes nothing without a grace"
    pair.run(pair.now + 30_000)
    assert b.session.outcome == "partial" and b.session.end.cause is EndCause.PEER_SILENT
    assert b.session.end.detail["limit_ms"] == SessionConfig().disconnect_timeout_ms
    assert "peer_reconnecting" not in types(pair.events[1])


def test_with_a_grace_the_partner_waits_that_long_then_ends_partial():
    pair = Pair(study(grace=8_000))
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 100)
    pair.drop_seat0()
    b = pair.bridges[1]
    dropped = pair.now
    assert b.peer_left(0, "disconnected")
    pair.run(pair.now + 30_000)
    assert b.session.outcome == "partial" and b.session.end.cause is EndCause.PEER_SILENT
    assert b.session.end.detail["limit_ms"] == 8_000
    ended_at = [o for o in pair.outs[1] if o["ended"]][0]
    assert pair.outs[1].index(ended_at) > 0
    assert pair.now - dropped >= 7_000


def test_periodic_checkpoints_bound_the_replay_gap_and_the_rejoin_is_still_exact():
    pair = Pair(study())
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 90 + 75)
    pair.drop_seat0()
    assert len(pair.stored) >= 3, "with rejoin on, the page stores a checkpoint every 2 s as well as at episode ends"
    point = resume_point(pair.stored)
    assert 90 < point.confirmed <= 90 + 75
    assert pair.bridges[1].peer_left(0, "disconnected")
    pair.run(pair.now + 3_000)
    a = pair.reload_seat0()
    assert a.session.stats["resumed"]["from_frame"] == point.confirmed
    pair.run(pair.now + 60_000)
    b = pair.bridges[1]
    assert a.session.outcome == b.session.outcome == "complete"
    bundles = [a.bundle()[0], b.bundle()[0]]
    assert compare(bundles[0], bundles[1]).identical


def test_a_checkpoint_of_another_session_is_refused():
    pair = Pair(study())
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 100)
    assert pair.stored
    with pytest.raises(ResumeError, match="seed"):
        bridge(study(seed=6), 0, resume=list(pair.stored))
    with pytest.raises(ResumeError, match="seat"):
        bridge(study(), 1, resume=list(pair.stored))
    point = resume_point(pair.stored)
    config = SessionConfig(**point.config)
    with pytest.raises(ResumeError, match="env"):
        Session.resume(TinyGridGame(), config, 0, point)
    # the same checkpoint resumes fine
    assert bridge(study(), 0, resume=list(pair.stored)).session.confirmed_frames == point.confirmed
    # A row that differs where no hash looks (frame 5's info, between hash points) is still caught: the replayed
    # frames must encode to the stored rows byte for byte.
    cp = json.loads(pair.stored[0])
    lines = cp["frames_csv"].split("\n")
    assert lines[10].split(",")[3] == "5" and '""ignored_action"":false' in lines[10]
    lines[10] = lines[10].replace('""ignored_action"":false', '""ignored_action"":true')
    cp["frames_csv"] = "\n".join(lines)
    with pytest.raises(ResumeError, match="encode"):
        bridge(study(), 0, resume=[json.dumps(cp).encode() + b"\n"])


# -- replay, with sessions and the in-memory checkpoint (no network) --------------------------------------------
class UrandomGrid(TinyGridGame):
    """Plays a different game in every process: its reset ignores the seed."""

    def reset(self, seed):
        import os

        return super().reset(int.from_bytes(os.urandom(4), "big"))


class ScoreAtTen(TinyGridGame):
    """Same id, other rules: a point for free at step 10 of every episode."""

    def step(self, inputs):
        if self.t == 10:
            self.score[0] += 1
        return super().step(inputs)


def _checkpoint(game, config: SessionConfig, frames: int, policy=lambda f: (f // 7) % 5) -> tuple[bytes, Session]:
    """A session alone (one player) run for ``frames`` confirmed frames, and its checkpoint."""
    session = Session(game, config, 0)
    exporter = Exporter(ExportContext.from_session(session, study="s", session_id="x", participant="p"))
    now = 0.0
    while session.confirmed_frames < frames:
        session.tick(now, policy(session.frame), away=(40 <= session.frame < 55))
        now += config.frame_ms
    return exporter.checkpoint(session.log), session


def test_replay_rebuilds_the_log_queues_and_game_of_the_checkpoint():
    config = SessionConfig(players=1, episodes=3)
    data, original = _checkpoint(TinyGridGame(players=1, length=40), config, 70)
    point = resume_point(data)
    assert point.confirmed == original.confirmed_frames
    assert any(v[0] & AWAY_BIT for v in point.inputs), "away frames are replayed as away"
    resumed = Session.resume(TinyGridGame(players=1, length=40), config, 0, point, nonce=7)
    c = point.confirmed
    assert [r.canonical() for r in resumed.log.confirmed] == [r.canonical() for r in original.log.confirmed[:c]]
    assert [s.canonical() for s in resumed.log.episode_starts] == [
        s.canonical() for s in original.log.episode_starts[:len(resumed.log.episode_starts)]]
    assert resumed.queues.values(0, 0, c) == original.queues.values(0, 0, c)
    assert resumed.frame == c and not resumed.started
    # A lone seat has nobody to ask: it runs on the first tick and finishes every episode.
    now = 10_000.0
    events = []
    while not resumed.ended:
        events += resumed.tick(now, 1).events
        now += config.frame_ms
    assert any(isinstance(e, Resumed) and e.from_frame == c and e.replayed_frames == c for e in events)
    assert resumed.outcome == "complete" and resumed.confirmed_frames == 120


def test_a_nondeterministic_env_is_refused_at_replay():
    config = SessionConfig(players=1, episodes=2)
    data, _ = _checkpoint(TinyGridGame(players=1, length=40), config, 45)
    point = resume_point(data)
    with pytest.raises(ResumeError, match="diverged|started episodes"):
        Session.resume(UrandomGrid(players=1, length=40), config, 0, point)
    with pytest.raises(ResumeError, match="diverged at frame 29"):  # the first sampled frame after the change
        Session.resume(ScoreAtTen(players=1, length=40), config, 0, point)


def test_rejoin_grace_is_part_of_the_config_digest():
    assert SessionConfig(rejoin_grace_ms=1).digest() != SessionConfig().digest()
    assert SessionConfig().rejoin_grace_ms == 0


def test_three_players_one_page_reloads_and_every_peer_echoes():
    """With three seats, both partners answer the Resume; the records of all three come out identical."""
    from pyodide_runtime.canonical import canonical_bytes

    config = SessionConfig(players=3, episodes=3, rejoin_grace_ms=20_000, seed=4)
    make = lambda: TinyGridGame(players=3, length=60)  # noqa: E731
    sessions = [Session(make(), config, s) for s in range(3)]
    exporter = Exporter(ExportContext.from_session(sessions[0], study="s", session_id="x", participant="p"))
    net = Network(seed=8, default=LinkSpec(latency_ms=50, jitter_ms=20, loss=0.05))
    rng = random.Random(2)
    inputs, events = [0, 0, 0], [[], [], []]
    stored: list[bytes] = []
    now, step = 0.0, config.frame_ms
    dropped_at = resumed_at = None
    while not all(s.ended for s in sessions) and now < 120_000:
        now += step
        for seat, s in enumerate(sessions):
            if s is None or s.ended or (dropped_at is not None and resumed_at is None and seat == 0):
                continue
            if rng.random() < 0.3:
                inputs[seat] = rng.randrange(5)
            res = s.tick(now, inputs[seat], net.deliver(now, seat))
            events[seat] += res.events
            for to, data in res.messages:
                net.send(now, seat, to, data)
            if seat == 0 and any(type(e).__name__ == "EpisodeEnded" for e in res.events):
                stored.append(exporter.checkpoint(s.log))
        if dropped_at is None and sessions[0].confirmed_frames >= 90:
            dropped_at, old = now, sessions[0]
            for seat in (1, 2):
                assert sessions[seat].peer_reconnecting(0, now)
        if dropped_at is not None and resumed_at is None and now - dropped_at >= 3_000:
            resumed_at = now
            net.deliver(now, 0)
            point = resume_point(stored)
            sessions[0] = Session.resume(make(), config, 0, point, now_ms=now)
    assert [s.outcome for s in sessions] == ["complete"] * 3
    assert sum(s.stats["rollbacks"] for s in sessions) > 0
    rows = [[canonical_bytes(r.canonical()) for r in s.log.confirmed] for s in sessions]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 180
    c = point.confirmed
    resumed = [e for e in events[0] if isinstance(e, Resumed)]
    assert len(resumed) == 1 and resumed[0].from_frame == c == 60 and resumed[0].echoed_frames > 0
    n = resumed[0].echoed_frames
    assert sessions[0].queues.values(0, c, c + n) == old.queues.values(0, c, c + n)
    for seat in (1, 2):
        assert sessions[seat].stats["peer_rejoins"] == 1, "every partner answered the Resume"
        kinds = [type(e) for e in events[seat]]
        assert PeerReconnecting in kinds and PeerRejoined in kinds and Stalled in kinds
    assert any(isinstance(e, FastForward) for e in events[0])


def test_a_resuming_page_nobody_answers_ends_partial_with_the_replayed_frames():
    pair = Pair(study())
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 100)
    a = bridge(study(), 0, resume=list(pair.stored))
    c = a.session.confirmed_frames
    now, outs = 50_000.0, []
    while not a.session.ended and now < 70_000:
        outs.append(a.tick(now, 1, []))
        now += 1000 / 30
    sent = [d for o in outs for _, d, reliable in o["messages"] if reliable]
    assert len(sent) > 40, "the Resume is resent until answered"
    assert a.session.outcome == "partial" and a.session.end.cause is EndCause.PEER_SILENT
    assert 55_000 <= now <= 56_000 and a.session.confirmed_frames == c
    meta = json.loads(_member(final_bundle(outs), "metadata.json"))
    assert meta["canonical"]["confirmed_frames"] == c


def test_echoes_are_checked_merged_in_any_order_and_taken_once_complete():
    from pyodide_runtime.protocol import Echo, encode

    pair = Pair(study())
    pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= 100)
    point = resume_point(pair.stored)
    c = point.confirmed
    game = bridge(study(), 0).game
    s = Session.resume(game, SessionConfig(**point.config), 0, point, nonce=5)
    rejected = s.stats["rejected"]
    values = (1, 1, 2, AWAY_BIT, AWAY_BIT, 3)
    s.receive(1.0, encode(Echo(1, 6, 900, c + 20, c + 6, c, values)), 1)  # another page's nonce
    s.receive(1.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, (1, 9))), 1)  # seat 0 has no action 9
    s.receive(1.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, (AWAY_BIT | 2,))), 1)  # away plays the default only
    assert (rejected["unexpected"], rejected["invalid_input"]) == (1, 2)
    assert not any(isinstance(e, Resumed) for e in s.tick(2.0, 0).events) and not s.started
    s.receive(3.0, encode(Echo(1, 5, 900, c + 20, c + 6, c + 3, values[3:])), 1)  # the second part first
    s.tick(4.0, 0)
    assert not s.started, "still waiting: frames c .. c+2 are missing"
    s.receive(5.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, values[:1])), 1)
    s.receive(5.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, (2, 2))), 1)  # contradicts the first value
    s.tick(5.5, 0)
    assert rejected["conflict"] == 1 and not s.started
    s.receive(6.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, values[:3])), 1)
    events = s.tick(7.0, 0).events
    assert s.started and [e for e in events if isinstance(e, Resumed)] == [Resumed(c, c, 6)]
    assert s.queues.values(0, c, c + 6) == list(values)
    assert s.peers[1].acked == c + 6 and s._seq == 901, "its first packet is numbered above the floor"
    assert s.pacer.catch_up_to == c + 20 and s.stats["fast_forward_frames"] > 0
    s.receive(8.0, encode(Echo(1, 5, 900, c + 20, c + 6, c, values)), 1)  # a late copy
    assert rejected["duplicate"] == 1


def test_a_page_reloaded_twice_rejoins_twice():
    """The second reload resumes from the first new page's checkpoints (a chain from frame 0 again)."""
    pair = Pair(study(episodes=4), seed=2)
    b = pair.bridges[1]
    resumed_from = []
    for until in (120, 200):
        pair.run(60_000, stop=lambda p: p.bridges[0].session.confirmed_frames >= until)
        pair.drop_seat0()
        assert b.peer_left(0, "disconnected")
        pair.run(pair.now + 2_500)
        resumed_from.append(pair.reload_seat0().session.stats["resumed"]["from_frame"])
    a = pair.bridges[0]
    pair.run(pair.now + 90_000)
    assert resumed_from[0] == 90 and resumed_from[1] >= 180
    assert a.session.outcome == b.session.outcome == "complete" and b.session.stats["peer_rejoins"] == 2
    bundles = [final_bundle(outs[-1:]) for outs in pair.outs]
    assert compare(bundles[0], bundles[1]).identical
