"""The page's facade and the study server's ``peer-left`` notice: a partner who leaves ends the session at once."""

from __future__ import annotations

import json

import pytest

from pyodide_runtime.bridge import Bridge
from pyodide_runtime.host.data import load
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
STUDY = json.dumps({
    "study": "leave_test",
    "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
    "players": 2,
    "config": {"env_config": {"max_steps": 120},
               "session": {"players": 2, "fps": 30, "episodes": 2, "seed": 5}},
})
TICK_MS = 1000 / 30
LINK = LinkSpec(latency_ms=50, jitter_ms=10)


def play_until(frame: int, link: LinkSpec = LINK):
    """Two bridges over a seeded network until seat 1 reaches ``frame``; returns them, the network and the time."""
    bridges = [Bridge(STUDY, s, room="room", participant=f"p{s}") for s in range(2)]
    net = Network(seed=4, default=link)
    now = 0.0
    while bridges[1].session.frame < frame:
        for seat, b in enumerate(bridges):
            out = b.tick(now, (int(now) // 300 + seat) % 5, net.deliver(now, seat), False)
            for to, data, _ in out["messages"]:
                net.send(now, seat, to, data)
        now += TICK_MS
    return bridges, net, now


def test_a_left_notice_ends_the_partner_on_its_next_tick_with_a_valid_partial_bundle(tmp_path):
    (a, b), net, closed_at = play_until(90)  # seat 1's page is closed now: it never ticks again
    notice_at = closed_at + 30.0
    assert a.peer_left(1, "left") is True
    assert not a.session.ended, "the notice is applied by the next tick"
    out = a.tick(notice_at, 0, net.deliver(notice_at, 0), False)
    assert out["ended"] and out["bundle"] is not None
    assert [e for e in out["events"] if e["type"] == "ended"] == [
        {"type": "ended", "outcome": "partial", "reason": "seat 1 left the study page", "cause": "peer_gone"}]
    status = a.status()
    assert status["outcome"] == "partial" and status["end_reason"] == "seat 1 left the study page"
    assert status["left_notices"] == {"applied": 1, "ignored": 0}
    assert not out["messages"], "nobody is left to say goodbye to"

    path = tmp_path / out["filename"]
    path.write_bytes(out["bundle"])
    assert validate(str(path)).ok
    bundle = load(path, backend="python")
    assert bundle.metadata["canonical"]["status"] == "partial"
    confirmed = a.session.confirmed_frames
    assert confirmed >= 85 and {r["global_frame"] for r in bundle.frames} == set(range(confirmed))
    # The frames both confirmed are the same rows on both sides.
    both = min(confirmed, b.session.confirmed_frames)
    assert [r.canonical() for r in a.session.records()[:both]] == [r.canonical() for r in b.session.records()[:both]]
    assert bundle.metadata["participant_local"]["extra"]["left_notices"] == {"applied": 1, "ignored": 0}


def test_packets_that_arrive_with_the_notice_count_before_it():
    (a, b), net, now = play_until(60, link=LinkSpec())
    # Seat 1's last packet reaches seat 0 in the same tick as the notice.
    last = [(1, data) for to, data, _ in b.tick(now, 0, net.deliver(now, 1), False)["messages"] if to == 0]
    assert last
    known = a.session.queues.count(1)
    a.peer_left(1, "left")
    a.tick(now + 1.0, 0, last, False)
    assert a.session.ended and a.session.queues.count(1) > known


@pytest.mark.parametrize("seat, reason", [
    (0, "left"), (2, "left"), (-1, "left"), ("1", "left"), (1.5, "left"), (None, "left"), (True, "left"),
    (1, "gone"), (1, None), (1, 7),
])
def test_malformed_or_foreign_notices_are_ignored_and_counted(seat, reason):
    (a, _), net, now = play_until(20)
    assert a.peer_left(seat, reason) is False
    out = a.tick(now, 0, net.deliver(now, 0), False)
    assert not out["ended"] and a.status()["left_notices"] == {"applied": 0, "ignored": 1}


def test_a_disconnected_partner_keeps_its_grace():
    (a, _), net, now = play_until(20)
    assert a.peer_left(1, "disconnected") is False
    out = a.tick(now, 0, net.deliver(now, 0), False)
    assert not out["ended"] and a.status()["left_notices"] == {"applied": 0, "ignored": 0}


def test_an_expired_seat_ends_the_session_and_later_notices_change_nothing():
    (a, _), _, now = play_until(20)
    assert a.peer_left(1, "expired") and a.peer_left(1, "left")
    out = a.tick(now, 0, [], False)
    assert out["ended"] and a.session.end_reason == "seat 1 did not reconnect within the server's grace period"
    assert a.status()["left_notices"] == {"applied": 1, "ignored": 1}
