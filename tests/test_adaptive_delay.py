"""Adaptive input delay: each peer's delay follows the measured round trip and frame cost, the data stays exact.

Every scenario runs two sessions over the seeded simulated network, asserts that the delay really changed (or
really stayed within its bounds), then that both peers confirmed byte-identical records that a replay of their
inputs reproduces. Also here: the resimulation's skipped snapshots, and that the feature off changes nothing.
"""

from __future__ import annotations

import json
import zipfile

import pytest

from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import ConfigError, SessionConfig
from pyodide_runtime.export import Diagnostics, ExportContext, Exporter
from pyodide_runtime.framelog import FrameLog
from pyodide_runtime.host.study_config import load_study_config
from pyodide_runtime.host.testing import LinkSpec, Network, random_policy, replay, run_peers
from pyodide_runtime.host.testing.games import TinyGridGame, tiny_grid_factory
from pyodide_runtime.session import InputDelayChanged, RollbackEvent, Session
from pyodide_runtime.sync import InputQueues, Timeline, make_predictor
from pyodide_runtime.sync.input_delay import DelayController, frames_needed

FRAME_MS = 1000 / 30
LENGTH = 480  # 16 s at 30 fps


class PhasedNetwork(Network):
    """A network whose links change at given times: ``phases`` is ``[(from_ms, LinkSpec), ...]``, sorted."""

    def __init__(self, seed: int, phases: list[tuple[float, LinkSpec]]) -> None:
        super().__init__(seed=seed, default=phases[0][1])
        self.phases = phases

    def send(self, now_ms: float, src: int, dst: int, data: bytes) -> None:
        self.default = [spec for start, spec in self.phases if start <= now_ms][-1]
        super().send(now_ms, src, dst, data)


def adaptive(**kw) -> SessionConfig:
    return SessionConfig(**{"episodes": 1, "seed": 5, "input_delay": 2, "adaptive_delay": True,
                            "min_input_delay": 1, "max_input_delay": 8, **kw})


def run(config: SessionConfig, *, link=None, network=None, seed=5, length=LENGTH, costs=(0.0, 0.0), on_tick=None):
    make = tiny_grid_factory(length=length)
    sessions = [Session(make(s), config, s) for s in range(config.players)]
    for s, cost in zip(sessions, costs):
        if cost:
            s.note_frame_cost(cost)
    result = run_peers(make, config, link=link, network=network, seed=seed, policy=random_policy(seed, (1, 10)),
                       sessions=sessions, on_tick=on_tick)
    return make, result


def assert_parity(make, config, result, frames):
    for p in result.peers:
        assert p.outcome == "complete", p.session.end_reason
        assert p.session.stats["desyncs"] == 0 and not p.tail
    assert result.identical()
    records = result.peers[0].records
    assert len(records) == frames
    rows = [canonical_bytes(r.canonical()) for r in records]
    assert [canonical_bytes(r.canonical()) for r in replay(make(0), config, records).confirmed] == rows


def delay_events(peer) -> list[InputDelayChanged]:
    return [e for e in peer.events if isinstance(e, InputDelayChanged)]


# -- the controller -------------------------------------------------------------------------------------------
def test_frames_needed_covers_half_a_round_trip_and_one_tick():
    assert frames_needed(0, FRAME_MS) == 1
    assert frames_needed(2 * FRAME_MS, FRAME_MS) == 2
    assert frames_needed(100, FRAME_MS) == 3  # 50 + 33.3 ms = 2.5 frames
    assert frames_needed(200, FRAME_MS) == 4


def _controller(samples: list[float], cost: float = 0.0, **kw) -> DelayController:
    c = DelayController(2, 1, 8, FRAME_MS, **kw)
    c.sent(len(samples), 0.0)
    for i, rtt in enumerate(samples, 1):
        c.acked(1, i, rtt)
    c.note_frame_cost(cost)
    return c


def test_controller_uses_a_high_percentile_and_the_frame_cost():
    steady = [100.0] * 50 + [400.0] * 2  # two late acks out of 52: below the 90th percentile
    assert _controller(steady).target() == 3
    # a cheap frame: rollbacks of any depth fit in one frame, the tail does not count
    assert _controller(steady, cost=1.0).target() == 3
    # 11 ms a frame: rollbacks of up to 2 frames fit in 33 ms; the 400 ms tail needs 7 frames, so at least 5
    assert _controller(steady, cost=11.0).target() == 5
    # a frame that takes longer than a third of the budget: only 1 frame of rollback fits
    assert _controller(steady, cost=12.0).target() == 6
    # too few samples: no opinion yet
    assert _controller([400.0] * 7).target() == 2


def test_controller_raises_fast_and_lowers_slowly_one_frame_at_a_time():
    c = DelayController(2, 1, 8, FRAME_MS, lower_after=5)
    c.sent(10, 0.0)
    for i in range(1, 11):
        c.acked(1, i, 300.0)  # need 6
    changes = [c.update() for _ in range(6)]
    assert changes == [3, 4, 5, 6, None, None]
    c.sent(100, 300.0)
    for i in range(11, 100):
        c.acked(1, i, 300.0 + 10.0)  # 10 ms after the send: fast now (the old samples leave the window)
    changes = [c.update() for _ in range(12)]
    assert changes == [None] * 4 + [5] + [None] * 4 + [4] + [None, None]


def test_the_start_is_not_measured_and_the_cost_weighs_the_tail_not_the_single_worst():
    c = DelayController(2, 1, 8, FRAME_MS, warmup=20)
    c.sent(40, 0.0)
    for i in range(1, 21):
        c.acked(1, i, 700.0)  # the partner's first ticks: slow acks of the first 20 frames' inputs
    assert c.target() == 2 and c.rtt_ms is None  # not measured
    c.sent(80, 1000.0)
    for i in range(41, 80):
        c.acked(1, i, 1100.0)  # 100 ms round trips once both run
    assert c.target() == 3 and c.rtt_ms == 100.0
    # one stray 600 ms ack among 60 samples is not the tail a heavy env must absorb (the 97th percentile is)
    samples = [100.0] * 59 + [600.0]
    assert _controller(samples, cost=11.0).target() == 3
    assert _controller([100.0] * 56 + [600.0] * 4, cost=11.0).target() == frames_needed(600.0, FRAME_MS) - 2


def test_pauses_and_repeated_acks_are_not_measured():
    c = DelayController(2, 1, 8, FRAME_MS)
    c.sent(10, 0.0)
    c.interrupt(50.0)  # what was sent before the pause
    for i in range(1, 11):
        c.acked(1, i, 5000.0)
    c.sent(30, 6000.0)
    for i in range(11, 31):
        c.acked(1, i, 6050.0)
    c.acked(1, 5, 9999.0)  # an old ack (a rejoined partner) adds nothing
    assert c.target() == 2 and c.rtt_ms == 50.0


# -- config ---------------------------------------------------------------------------------------------------
def test_config_fields_are_validated_with_the_field_named():
    with pytest.raises(ConfigError, match="adaptive_delay"):
        SessionConfig(adaptive_delay=1)
    with pytest.raises(ConfigError, match="max_input_delay"):
        SessionConfig(min_input_delay=4, max_input_delay=3)
    with pytest.raises(ConfigError, match="min_input_delay"):
        SessionConfig(min_input_delay=-1)
    with pytest.raises(ConfigError, match="input_delay.*between min_input_delay"):
        SessionConfig(adaptive_delay=True, input_delay=9, max_input_delay=8)
    SessionConfig(input_delay=9)  # the bounds apply only with adaptive_delay


def test_study_toml_session_table_accepts_the_fields(tmp_path):
    path = tmp_path / "study.toml"
    body = '[env]\nspec = "pyodide_runtime.examples.coin_chase:CoinChase"\n[session]\n'
    path.write_text(body + "adaptive_delay = true\nmin_input_delay = 1\nmax_input_delay = 5\n")
    page = load_study_config(path).page
    assert page["session"] == {"adaptive_delay": True, "min_input_delay": 1, "max_input_delay": 5}
    path.write_text(body + 'adaptive_delay = "yes"\n')
    with pytest.raises(Exception, match="session.adaptive_delay: must be true or false"):
        load_study_config(path)
    path.write_text(body + "adaptive_delay = true\ninput_delay = 6\nmax_input_delay = 5\n")
    with pytest.raises(Exception, match="session.input_delay"):
        load_study_config(path)


def test_off_by_default_is_the_previous_behaviour():
    legacy = {"players", "fps", "input_delay", "max_prediction", "episodes", "seed", "prediction",
              "away_lease_frames", "away_timeout_ms", "disconnect_timeout_ms", "away_silence_timeout_ms",
              "hash_interval", "frame_hash", "max_frames_per_tick", "fast_forward_threshold", "time_sync_threshold",
              "handshake_resend_ms", "between_episodes_ms", "rejoin_grace_ms"}
    off = SessionConfig(episodes=1, seed=5)
    assert set(off.to_dict()) == legacy  # so the digest and the export's config are what they were
    on = adaptive()
    assert on.to_dict()["adaptive_delay"] is True and on.digest() != off.digest()
    # the bounds alone change nothing while the feature is off: same records, stats, events and packets
    link = LinkSpec(90, 20)
    packets: list[list[bytes]] = []
    for config in (off, SessionConfig(episodes=1, seed=5, min_input_delay=0, max_input_delay=20)):
        sent: list[bytes] = []

        class Recording(Network):
            def send(self, now_ms, src, dst, data):
                sent.append(data)
                super().send(now_ms, src, dst, data)

        make, result = run(config, network=Recording(seed=5, default=link), length=200)
        costs = [p.session.note_frame_cost(30.0) for p in result.peers]  # recorded nowhere when off
        assert costs == [None, None]
        assert_parity(make, config, result, 200)
        assert result.total("rollbacks") > 0
        for p in result.peers:
            d = p.session.diagnostics()
            assert "input_delays" not in d and "input_delay" not in d and "frame_cost_ms" not in d
            assert p.session.input_delay == 2 and not delay_events(p)
        packets.append(sent)
    assert packets[0] == packets[1]


# -- scenarios ------------------------------------------------------------------------------------------------
def test_delay_rises_under_high_latency_and_falls_when_it_drops():
    config = adaptive()
    network = PhasedNetwork(5, [(0.0, LinkSpec(120, 10)), (7000.0, LinkSpec(5, 0))])
    make, result = run(config, network=network)
    for p in result.peers:
        changes = delay_events(p)
        delays = [e.delay for e in changes]
        top = delays.index(max(delays))
        assert max(delays) >= 5, delays  # 240 ms round trips need 5 frames
        assert all(b == a + 1 for a, b in zip(delays[:top], delays[1:top + 1])), delays  # one frame a change
        assert delays[top:] == list(range(max(delays), delays[-1] - 1, -1)), delays
        assert delays[-1] <= 2 and p.session.input_delay == delays[-1]
        drop = changes[top + 1]
        assert drop.frame * FRAME_MS > 7000 and drop.rtt_ms < 100
        rise = changes[0]
        assert rise.rtt_ms >= 240
        stats = p.session.stats
        assert stats["input_delay"] == delays[-1] and stats["input_delay_changes"] == len(changes)
        assert p.session.diagnostics()["input_delays"] == [
            {"frame": e.frame, "delay": e.delay, "rtt_ms": e.rtt_ms} for e in changes]
    assert_parity(make, config, result, LENGTH)


def test_fewer_rollbacks_and_resimulated_frames_than_the_fixed_delay():
    link = LinkSpec(100, 20, 0.05)
    fixed = SessionConfig(episodes=1, seed=5, input_delay=2)
    make, fixed_run = run(fixed, link=link)
    assert_parity(make, fixed, fixed_run, LENGTH)
    config = adaptive()
    make, adaptive_run = run(config, link=link)
    assert_parity(make, config, adaptive_run, LENGTH)
    assert all(delay_events(p) for p in adaptive_run.peers)
    assert fixed_run.total("rollbacks") > 50
    assert adaptive_run.total("rollbacks") < fixed_run.total("rollbacks") / 3
    assert adaptive_run.total("resimulated_frames") < fixed_run.total("resimulated_frames") / 3


def test_bounds_are_respected():
    config = adaptive(max_input_delay=3)
    make, result = run(config, link=LinkSpec(200, 0), length=300)
    for p in result.peers:
        assert [e.delay for e in delay_events(p)] == [3] and p.session.input_delay == 3
    assert_parity(make, config, result, 300)
    config = adaptive(input_delay=4, min_input_delay=3, max_input_delay=6)
    make, result = run(config, link=LinkSpec(0, 0), length=300)
    for p in result.peers:
        assert [e.delay for e in delay_events(p)] == [3] and p.session.input_delay == 3  # not below the bound
    assert_parity(make, config, result, 300)


def test_frame_cost_raises_the_delay_and_peers_on_different_delays_stay_in_step():
    link = LinkSpec(60, 80)  # round trips from 120 to 280 ms
    config = adaptive()
    make, cheap = run(config, link=link)
    assert_parity(make, config, cheap, LENGTH)
    gaps: list[int] = []
    sessions: dict[int, Session] = {}

    def watch(seat: int, now_ms: float, session: Session) -> None:
        sessions[seat] = session
        if seat == 1 and now_ms > 2000 and 0 in sessions and session.started and not session.ended:
            gaps.append(abs(sessions[0].frame - session.frame))

    make, heavy = run(config, link=link, costs=(25.0, 0.0), on_tick=watch)  # only seat 0's frames are heavy
    assert_parity(make, config, heavy, LENGTH)
    cheap_top = max(e.delay for e in delay_events(cheap.peers[0]))
    heavy_top = max(e.delay for e in delay_events(heavy.peers[0]))
    assert heavy_top > cheap_top, (heavy_top, cheap_top)
    assert heavy.peers[0].session.stats["frame_cost_ms"] == 25.0
    # seat 1 (cheap frames) chose a lower delay than seat 0, and time sync kept the two within a few frames
    assert max(e.delay for e in delay_events(heavy.peers[1])) < heavy_top
    assert gaps and max(gaps) <= 4, max(gaps)
    with pytest.raises(ValueError, match="note_frame_cost"):
        heavy.peers[0].session.note_frame_cost(-1.0)
    with pytest.raises(ValueError, match="note_frame_cost"):
        heavy.peers[0].session.note_frame_cost(float("nan"))


def test_the_export_diagnostics_list_the_delay_changes():
    config = adaptive()
    make, result = run(config, link=LinkSpec(120, 10), length=200)
    bundles = []
    for p in result.peers:
        ctx = ExportContext(study="s", session="x", participant=f"p{p.seat}", seat=p.seat, config=config,
                            env=p.session.game.describe())
        data = Exporter(ctx).bundle(p.session.log, Diagnostics.from_events(p.events, stats=p.session.diagnostics()))
        bundles.append(data)
        with zipfile.ZipFile(_as_file(data)) as z:
            network = json.loads(z.read("diagnostics/network.json"))
            canonical = json.loads(z.read("metadata.json"))["canonical"]
        changes = network["stats"]["input_delays"]
        assert changes and changes == [
            {"frame": e.frame, "delay": e.delay, "rtt_ms": e.rtt_ms} for e in delay_events(p)]
        assert network["stats"]["input_delay"] == changes[-1]["delay"]
        assert canonical["config"]["adaptive_delay"] is True and canonical["input_delay"] == 2
    assert_parity(make, config, result, 200)


def _as_file(data):
    import io

    return io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data


# -- resimulation without snapshots it does not need ----------------------------------------------------------
class CountingGame(TinyGridGame):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.get_states = 0

    def get_state(self):
        self.get_states += 1
        return super().get_state()


def test_resimulation_does_not_snapshot_frames_whose_inputs_are_all_known():
    config = SessionConfig(players=2, input_delay=0, max_prediction=8)
    queues = InputQueues((0, 0), 0)
    stats = {"rollbacks": 0, "resimulated_frames": 0, "max_rollback_depth": 0}
    game = CountingGame(players=2, length=50)
    tl = Timeline(game, config, queues, FrameLog(), make_predictor("repeat", (0, 0)), stats)
    tl.start(0.0)
    for g in range(6):  # seat 1's inputs are predicted (0) for six frames: six snapshots
        queues.fill(0, g, 1)
        tl.advance(0.0)
    assert game.get_states == 6 and tl.snapshot_count == 6
    queues.accept(1, 0, (0, 2, 2, 2), 100)  # frames 0-3 are known now; frame 1 was mispredicted
    tl.check_inputs(1, 0, 4)
    before = game.get_states
    frame, depth, _ = tl.apply_rollback(0.0)
    assert (frame, depth) == (1, 5)
    # frames 1-3 resimulated without get_state, frames 4-5 (still predicted) with it
    assert game.get_states - before == 2 and stats["resim_snapshots_skipped"] == 3
    assert tl.snapshot_count == 3  # frames 0 (not rolled back), 4 and 5


def test_sessions_skip_resimulation_snapshots_and_stay_exact():
    config = SessionConfig(episodes=1, seed=9, input_delay=1)
    make, result = run(config, link=LinkSpec(110, 30, 0.1), seed=9, length=300)
    assert result.total("rollbacks") > 0 and any(isinstance(e, RollbackEvent) for e in result.peers[0].events)
    assert result.total("resim_snapshots_skipped") > 0
    for p in result.peers:
        assert p.session.diagnostics()["resim_snapshots_skipped"] == p.session.stats["resim_snapshots_skipped"]
    assert_parity(make, config, result, 300)


def test_send_times_are_bounded_and_old_acks_ignored():
    from pyodide_runtime.sync.input_delay import SENT_KEPT

    c = DelayController(2, 1, 8, FRAME_MS)
    for count in range(1, 3 * SENT_KEPT):
        c.sent(count, count * FRAME_MS)
    assert len(c._sent_at) == SENT_KEPT
    c.acked(1, 10, 1e9)  # its send time is no longer kept: not a sample
    assert not c._samples
    last = 3 * SENT_KEPT - 1
    for ack in range(last - 20, last + 1):
        c.acked(1, ack, ack * FRAME_MS + 70.0)  # frame ack - 1 was first sent at ack * FRAME_MS
    assert c.target() == 3 and c.rtt_ms == 70.0
