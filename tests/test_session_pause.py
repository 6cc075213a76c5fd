"""A session that was itself paused (its tab frozen) does not take its own pause for the partner's silence.

In the browser the first tick after a freeze runs before the packets the partner sent meanwhile reach the
worker, so that tick sees no packet for as long as the freeze lasted. The simulator delivers waiting packets in
the same tick, so these tests drive two sessions by hand.
"""

from __future__ import annotations

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.session import PeerAway, Session
from pyodide_runtime.host.testing.games import TinyGridGame

STEP = 33.0
CONFIG = SessionConfig(episodes=2)  # disconnect_timeout_ms 5000


def _pair() -> tuple[Session, Session]:
    return Session(TinyGridGame(length=200), CONFIG, 0), Session(TinyGridGame(length=200), CONFIG, 1)


def _run(a: Session, b: Session, start: float, end: float, *, a_away: bool = False, a_ticks: bool = True,
         b_sends: bool = True, to_a: list[bytes] | None = None) -> list:
    """Tick both every STEP ms in [start, end); b's packets for a are queued in ``to_a`` when given."""
    events = []
    t = start
    while t < end:
        if a_ticks:
            res = a.tick(t, 0, [], away=a_away)
            for _, data in res.messages:
                b.receive(t, data, 0)
        res = b.tick(t, 1)
        events += res.events
        for _, data in res.messages if b_sends else ():
            if to_a is None:
                a.receive(t, data, 1)
            else:
                to_a.append(data)
        t += STEP
    return events


def _freeze_a(seconds: float, b_sends: bool = True) -> tuple[Session, Session, list[bytes], float]:
    """Both play for 1 s; a is hidden for 1 s, then frozen for ``seconds``; b's packets to a wait meanwhile."""
    a, b = _pair()
    _run(a, b, 0, 1000)
    events = _run(a, b, 1000, 2000, a_away=True)
    assert any(isinstance(e, PeerAway) for e in events)
    waiting: list[bytes] = []
    end = 2000 + seconds * 1000
    _run(a, b, 2000, end, a_ticks=False, b_sends=b_sends, to_a=waiting)
    return a, b, waiting, end


def test_first_tick_after_a_freeze_longer_than_the_disconnect_timeout_keeps_the_session():
    a, b, waiting, now = _freeze_a(6.5)
    assert waiting  # b kept sending (a announced itself away, so b waits for it)
    a.tick(now, 0, [], away=True)  # the worker's timer fires before the waiting packets reach it
    assert not a.ended, a.end_reason
    for data in waiting:
        a.receive(now + 1, data, 1)
    _run(a, b, now + STEP, now + 3000)
    assert not a.ended and not b.ended
    assert a.stats["fast_forward_frames"] > 0
    assert a.confirmed_frames > 0 and b.confirmed_frames > 0


def test_a_partner_that_stays_silent_after_the_freeze_is_still_declared_disconnected():
    a, _, _, now = _freeze_a(6.5, b_sends=False)
    a.tick(now, 0, [], away=True)
    assert not a.ended
    t = now
    while not a.ended and t < now + 3 * CONFIG.disconnect_timeout_ms:
        t += STEP
        a.tick(t, 0, [], away=False)
    assert a.ended and a.outcome == "partial" and "disconnected" in (a.end_reason or "")
    assert t - now <= CONFIG.disconnect_timeout_ms + 10 * STEP
