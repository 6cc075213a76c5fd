"""A partner who leaves the study page: the server's notice ends the session at once (``Session.peer_left``).

The leaving page sends nothing to its peers (it is being unloaded); only the study server's notice says it is
gone. The partner must end partial within a tick of that notice, long before any silence timeout, with every
confirmed frame equal to a fault-free reference and the unconfirmed tail kept apart and flagged.
"""

from __future__ import annotations

import pytest

from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.host.data import load
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import ExportContext, Exporter
from pyodide_runtime.session import HandshakeFailed, Session, SessionEnded
from pyodide_runtime.host.testing import LinkSpec, random_policy, replay, run_peers
from pyodide_runtime.host.validate import validate

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
LINK = LinkSpec(latency_ms=60, jitter_ms=15)  # enough latency that the last frames are still predicted
LEAVE_MS = 4_000.0
NOTICE_MS = 250.0  # the server's notice reaches the partner this long after the page closed (a far server)


def make_game(seat: int = 0):
    return load_game(COIN_CHASE, {"max_steps": 300, "target_score": 1_000})


def rows(records) -> list[bytes]:
    return [canonical_bytes(r.canonical()) for r in records]


def leave_run(config: SessionConfig, seed: int = 8, notices: int = 1):
    """Seat 1's page closes at LEAVE_MS without a goodbye; seat 0 gets the server's notice NOTICE_MS later.

    Returns the run and, per notice, ``(time, applied, events of the tick right after it)``.
    """
    told: list[tuple[float, bool, list]] = []

    def notify(seat: int, now_ms: float, session: Session) -> None:
        if seat == 0 and now_ms >= LEAVE_MS + NOTICE_MS and len(told) < notices:
            applied = session.peer_left(1, now_ms)
            # The harness stops ticking an ended session; the page ticks once more and gets the events.
            told.append((now_ms, applied, session.tick(now_ms + 1.0, 0).events))

    result = run_peers(make_game, config, link=LINK, seed=seed, policy=random_policy(seed),
                       disconnect={1: (LEAVE_MS, False)}, on_tick=notify)
    return result, told


def test_the_notice_ends_the_partner_partial_at_once_keeping_every_confirmed_frame(tmp_path):
    config = SessionConfig(episodes=2)
    result, told = leave_run(config)
    partner = result.peers[0]
    session = partner.session
    (notice_ms, applied, events), = told
    assert applied and not any(isinstance(e, SessionEnded) for e in partner.events), "it ended by the notice"
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert [(e.outcome, e.reason) for e in ended] == [("partial", "seat 1 left the study page")]
    assert session.end_reason == "seat 1 left the study page"
    # It ended on the tick that applied the notice: far sooner than the silence timeout would have.
    assert result.end_ms == notice_ms < LEAVE_MS + config.disconnect_timeout_ms
    assert not any(isinstance(e, HandshakeFailed) for e in partner.events + events)

    confirmed = session.log.confirmed
    assert len(confirmed) > 60, "the pair played for seconds before the page closed"
    # Every confirmed frame equals the fault-free run that plays the same inputs...
    assert rows(confirmed) == rows(replay(make_game(), config, confirmed).confirmed)
    # ... and the run where nobody leaves, frame for frame.
    full = run_peers(make_game, config, link=LINK, seed=8, policy=random_policy(8))
    assert full.peers[0].outcome == "complete"
    assert rows(confirmed) == full.peers[0].rows[: len(confirmed)]

    tail = session.unconfirmed_tail()
    assert tail, "with 60 ms latency the last frames were still predicted"
    assert tail[0].global_frame == len(confirmed)
    assert [r.global_frame for r in tail] == list(range(len(confirmed), len(confirmed) + len(tail)))

    context = ExportContext.from_session(session, study="s", session_id="room", participant="p0")
    path = tmp_path / "seat0.zip"
    path.write_bytes(Exporter(context).bundle(session.log))
    report = validate(str(path))
    assert report.ok, report
    bundle = load(path, backend="python")
    assert bundle.metadata["canonical"]["status"] == "partial"
    assert {r["global_frame"] for r in bundle.frames} == set(range(len(confirmed)))
    flagged = bundle.tail or []
    assert flagged and all(r["confirmed"] is False for r in flagged)
    assert {r["global_frame"] for r in flagged} == {r.global_frame for r in tail}


def test_repeated_notices_change_nothing():
    config = SessionConfig(episodes=2)
    result, told = leave_run(config, notices=3)
    assert [applied for _, applied, _ in told] == [True]  # the session ended: the run stopped ticking it
    session = result.peers[0].session
    confirmed, reason = len(session.log.confirmed), session.end_reason
    assert session.peer_left(1, 99_000.0) is False
    assert session.peer_left(1, 99_000.0, "did not come back") is False
    assert (len(session.log.confirmed), session.end_reason) == (confirmed, reason)
    assert session.tick(99_100.0, 0).events == []


def _started_pair() -> list[Session]:
    config = SessionConfig(episodes=1)
    sessions = [Session(make_game(), config, s) for s in range(2)]
    now = 0.0
    for _ in range(10):
        for src in sessions:
            for dst, data in src.tick(now, 0).messages:
                sessions[dst].receive(now, data, src.seat)
        now += 33.0
    assert all(s.started for s in sessions)
    return sessions


@pytest.mark.parametrize("seat", [0, 2, -1, 255, "1", None, 1.0, True])
def test_unknown_seats_and_our_own_seat_are_ignored(seat):
    a, _ = _started_pair()
    before = (a.frame, a.state, dict(a.stats["rejected"]))
    assert a.peer_left(seat, 500.0) is False
    assert (a.frame, a.state, a.stats["rejected"]) == before
    assert not any(isinstance(e, SessionEnded) for e in a.tick(533.0, 0).events) and not a.ended


def test_a_seat_leaving_before_the_session_started_ends_it_partial():
    config = SessionConfig()
    a = Session(make_game(), config, 0)
    a.tick(0.0, 0)
    assert not a.started
    assert a.peer_left(1, 10.0) is True
    events = a.tick(20.0, 0).events
    assert [(type(e), e.outcome) for e in events if isinstance(e, SessionEnded)] == [(SessionEnded, "partial")]
    assert a.end_reason == "seat 1 left the study page before the session started"
    assert not any(isinstance(e, HandshakeFailed) for e in events), "leaving is not an incompatible peer"


def test_once_every_episode_is_confirmed_a_leaving_partner_completes_the_session():
    """Draining (our data complete, waiting for the partner's acks): the notice stops the wait, outcome complete."""
    config = SessionConfig(episodes=1)
    a, b = (Session(load_game(COIN_CHASE, {"max_steps": 40}), config, s) for s in range(2))
    now = 0.0
    while a.state != "draining" and now < 60_000:
        for src, dst in ((a, b), (b, a)):
            for _, data in src.tick(now, 0).messages:
                if src is a and a.frame > 30:  # b stops hearing a: its acks never reach 40, a keeps draining
                    continue
                dst.receive(now, data, src.seat)
        now += 33.0
    assert a.state == "draining"
    assert a.peer_left(1, now) is True
    ended = [e for e in a.tick(now + 33.0, 0).events if isinstance(e, SessionEnded)]
    assert [(e.outcome, e.reason) for e in ended] == [("complete", "all episodes confirmed")]
    assert a.confirmed_frames == 40
