"""Fault survival: each fault ends in a defined outcome (complete or partial) with every confirmed frame kept.

"Kept" is checked against a fault-free reference: the same game and config replayed with every input the faulty
run confirmed known up front (``pyodide_runtime.host.testing.replay``); the faulty run's confirmed records must equal
the reference's byte for byte. Covered elsewhere and not repeated here: a partner that crashes or leaves mid-episode
(``test_scenarios.py::test_partner_disconnect_mid_episode``), a single away span across an episode boundary and
the away timeout (``test_scenarios.py``).
"""

from __future__ import annotations

import zipfile
from io import BytesIO

import pytest

from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import Exporter, ExportContext
from pyodide_runtime.export.checkpoint import recover
from pyodide_runtime.protocol.messages import AWAY_BIT
from pyodide_runtime.session import FastForward, PeerAway, PeerBack, Session, Stalled
from pyodide_runtime.host.testing import AwaySpan, LinkSpec, Network, random_policy, replay, run_peers

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
LINK = LinkSpec(latency_ms=40, jitter_ms=15, loss=0.02)


def make_game(seat: int = 0):
    return load_game(COIN_CHASE, {"max_steps": 300, "target_score": 1_000})


def rows(records) -> list[bytes]:
    return [canonical_bytes(r.canonical()) for r in records]


def reference_rows(config: SessionConfig, records) -> list[bytes]:
    """Rows of the fault-free run that plays the inputs (and away flags) of ``records``: the same timeline, game
    and frame log with every input known up front, so no network, prediction or rollback."""
    return rows(replay(make_game(), config, records).confirmed)


def assert_kept(result, config: SessionConfig) -> None:
    """Peers agree on every frame both confirmed, and those frames match the fault-free reference."""
    assert result.common_prefix_identical()
    longest = max(result.peers, key=lambda p: len(p.records))
    assert longest.records, "nothing was confirmed"
    assert rows(longest.records) == reference_rows(config, longest.records)[: len(longest.records)]


@pytest.mark.parametrize("seconds, outcome", [(1, "complete"), (5, "complete"), (30, "partial")])
def test_network_partition(seconds, outcome):
    config = SessionConfig(episodes=2, disconnect_timeout_ms=10_000)
    net = Network(seed=21, default=LINK)
    net.partition(3_000, 3_000 + seconds * 1000, [0], [1])
    result = run_peers(make_game, config, network=net, seed=21, policy=random_policy(21))
    assert result.network["outage_drops"] > 0
    for peer in result.peers:
        assert peer.count(Stalled) >= 1  # both sides ran into the prediction window and waited
        assert peer.outcome == outcome
        if outcome == "partial":
            assert "disconnected" in peer.session.end_reason
            assert peer.records[-1].global_frame == len(peer.records) - 1 and 60 < len(peer.records) < 600
    if outcome == "complete":
        assert result.identical() and len(result.peers[0].records) == 600
    assert_kept(result, config)


def test_repeated_away_and_back_cycles():
    config = SessionConfig(episodes=3)
    modes = ("hidden", "worker", "frozen")
    away = [AwaySpan(i % 2, 1_500 + i * 3_500, 1_500 + i * 3_500 + 2_000, modes[i % 3]) for i in range(8)]
    result = run_peers(make_game, config, link=LINK, away=away, seed=22, policy=random_policy(22))
    assert all(p.outcome == "complete" for p in result.peers) and result.identical()
    for peer in result.peers:
        other = 1 - peer.seat
        assert peer.count(PeerAway) >= 3 and peer.count(PeerBack) >= 3  # the partner's four spans, seen here
        assert sum(r.away[other] for r in peer.records) > 100
    assert sum(p.count(FastForward) for p in result.peers) >= 2  # the frozen spans caught up
    assert_kept(result, config)


class JumpingClock(Session):
    """A session whose page clock jumps by ``jump_ms`` at ``at_ms`` (a system clock change or a suspend)."""

    def __init__(self, *args, at_ms: float, jump_ms: float, **kw) -> None:
        super().__init__(*args, **kw)
        self.at_ms, self.jump_ms = at_ms, jump_ms

    def tick(self, now_ms, local_input, incoming=(), away=False):
        return super().tick(now_ms + (self.jump_ms if now_ms >= self.at_ms else 0.0), local_input, incoming, away)


@pytest.mark.parametrize("jump_ms", [20_000.0, -10_000.0])
def test_clock_jump(jump_ms):
    config = SessionConfig(episodes=2, disconnect_timeout_ms=15_000)
    sessions = [Session(make_game(), config, 0), JumpingClock(make_game(), config, 1, at_ms=4_000, jump_ms=jump_ms)]
    result = run_peers(None, config, link=LINK, sessions=sessions, seed=23, policy=random_policy(23))
    assert all(p.outcome == "complete" for p in result.peers) and result.identical()
    jumper, partner = result.peers[1], result.peers[0]
    if jump_ms > 0:
        # Forward: the session sees 20 s of lost time, starts to catch up by fast-forward (playing its away
        # default, announced to the partner), reaches the prediction window and waits there, and waiting
        # accrues no debt: the jump costs a few frames of away input, not 20 s of them.
        assert jumper.count(FastForward) >= 1 and jumper.session.stats["stalls"] >= 1
        assert partner.count(PeerAway) >= 1 and 0 < sum(r.away[1] for r in partner.records) < 60
    else:
        # Backward: the jumper's clock stands still until it catches up; its partner waits for it.
        assert partner.count(Stalled) >= 1 and partner.session.stats["stall_ticks"] > 100
    assert_kept(result, config)


def test_reload_mid_episode_recovers_every_checkpointed_frame():
    """Seat 1's page checkpoints at episode ends and when hidden, then is reloaded mid-episode (it stops without
    a goodbye). The recovered bundle holds every frame up to its last checkpoint, identical to its partner's."""
    config = SessionConfig(episodes=3, disconnect_timeout_ms=2_000)
    reload_at = 14_000.0  # mid-episode 2 (episodes are 10 s)
    stored: list[bytes] = []
    exporter: list[Exporter] = []

    def on_tick(seat: int, now_ms: float, session: Session) -> None:
        if seat != 1:
            return
        if not exporter:
            exporter.append(Exporter(ExportContext.from_session(session, study="s", session_id="r", participant="p1")))
        ended_episodes = sum(r.episode_over for r in session.log.confirmed)
        if ended_episodes > len(stored) or 12_000 <= now_ms < 12_000 + config.frame_ms:  # episode end; hidden once
            stored.append(exporter[0].checkpoint(session.log))

    away = [AwaySpan(1, 12_000, 12_500, "hidden")]
    result = run_peers(make_game, config, link=LINK, seed=24, policy=random_policy(24), away=away,
                       disconnect={1: (reload_at, False)}, on_tick=on_tick)
    partner = result.peers[0]
    assert partner.outcome == "partial" and "disconnected" in partner.session.end_reason
    assert len(stored) >= 2
    recovered = zipfile.ZipFile(BytesIO(recover(b"".join(stored))))
    frames = recovered.read("frames.csv").decode().splitlines()
    partner_ctx = ExportContext.from_session(partner.session, study="s", session_id="r", participant="p0")
    with zipfile.ZipFile(BytesIO(Exporter(partner_ctx).bundle(partner.session.log))) as zf:
        partner_frames = zf.read("frames.csv").decode().splitlines()
    # Every frame the reloaded page checkpointed is there, and agrees with the partner's data row for row.
    kept = len(frames) - 1
    assert kept >= 300 * 2  # the two finished episodes (300 frames x 2 agents each, plus the header)
    assert frames == partner_frames[: len(frames)]
    assert_kept(result, config)
    assert all(r.inputs[1] & AWAY_BIT == 0 for r in partner.records)  # inputs hold actions; away is a column


@pytest.mark.parametrize("frozen_s", [14, 40])
def test_long_freeze_after_hiding_completes(frozen_s):
    """Regression: a page frozen for more than ~13 s commits its away inputs up to wall time on return; those
    used to go out in one packet past the partner's window and were rejected forever (the partner then timed
    the returning page out as away). They now go out in window-sized packets."""
    config = SessionConfig(episodes=8)
    start = 4_000
    away = [AwaySpan(0, start, start + 2_000, "hidden"), AwaySpan(0, start + 2_000, start + 2_000 + frozen_s * 1000,
                                                                 "frozen")]
    result = run_peers(make_game, config, link=LINK, away=away, seed=25, policy=random_policy(25))
    assert [p.outcome for p in result.peers] == ["complete", "complete"] and result.identical()
    returning, partner = result.peers
    assert returning.session.stats["fast_forward_frames"] > 0
    assert sum(r.away[0] for r in partner.records) > frozen_s * 30 * 0.8  # the frozen time is recorded as away
    assert partner.count(PeerBack) >= 1
    assert partner.session.stats["rejected"]["out_of_window"] == 0
    assert_kept(result, config)
