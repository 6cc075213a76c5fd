"""Property tests: whatever the network, inputs and away schedule, the peers confirm byte-identical records.

Every scenario also asserts that the faults it injects really happened (rollbacks under latency, losses,
duplicates, fast-forwards), so parity is never proved on a run that exercised nothing.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.host.commands.simulate import DEFAULT_ENV as COIN_CHASE
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.host.testing import AwaySpan, LinkSpec, Network, random_policy, replay, run_peers
from pyodide_runtime.host.testing.games import tiny_grid_factory


@dataclass(frozen=True)
class Scenario:
    players: int
    input_delay: int
    max_prediction: int
    episodes: int
    length: int
    latency_ms: float
    back_latency_ms: float
    jitter_ms: float
    loss: float
    duplicate: float
    reorder: float
    away: tuple[AwaySpan, ...]
    prediction: str
    frame_hash: str
    hold: int
    tick_jitter_ms: float
    clock_rate: float
    example_env: bool
    seed: int
    adaptive: bool = False


@st.composite
def scenarios(draw, players=st.sampled_from([2, 2, 2, 3])):
    delay = draw(st.integers(0, 3))
    frame_ms = 1000 / 30
    # one-way latency beyond the input delay, so remote inputs are predicted and rollbacks must happen
    low = delay * frame_ms + 45
    away_mode = draw(st.sampled_from([None, "hidden", "worker", "frozen"]))
    n = draw(players)
    away = ()
    length = draw(st.integers(60, 110))
    if away_mode is not None:
        # after the handshake (at most about a second here) and well before the end of the session
        start = draw(st.floats(1500, 2500))
        away = (AwaySpan(draw(st.integers(0, n - 1)), start, start + draw(st.floats(700, 2000)), away_mode),)
        length = draw(st.integers(160, 200))
    return Scenario(
        players=n,
        input_delay=delay,
        max_prediction=draw(st.integers(2, 10)),
        episodes=draw(st.integers(1, 2)),
        length=length,
        latency_ms=draw(st.floats(low, low + 200)),
        back_latency_ms=draw(st.floats(low, low + 200)),
        jitter_ms=draw(st.sampled_from([0.0, 10.0, 40.0])),
        loss=draw(st.sampled_from([0.0, 0.05, 0.2])),
        duplicate=draw(st.sampled_from([0.0, 0.1])),
        reorder=draw(st.sampled_from([0.0, 0.2])),
        away=away,
        prediction=draw(st.sampled_from(["repeat", "default"])),
        frame_hash=draw(st.sampled_from(["sampled", "full", "bytes"])),
        hold=draw(st.integers(1, 8)),
        tick_jitter_ms=draw(st.sampled_from([0.0, 6.0])),
        clock_rate=draw(st.sampled_from([1.0, 1.0, 1.03])),
        example_env=draw(st.sampled_from([False, False, True])),
        seed=draw(st.integers(0, 2**31)),
        adaptive=draw(st.sampled_from([False, False, True])),
    )


def run_scenario(sc: Scenario):
    cfg = SessionConfig(
        players=sc.players, input_delay=sc.input_delay, max_prediction=sc.max_prediction, episodes=sc.episodes,
        seed=sc.seed % 1000, prediction=sc.prediction, frame_hash=sc.frame_hash, hash_interval=15,
        adaptive_delay=sc.adaptive, min_input_delay=0, max_input_delay=8,
    )
    net = Network(seed=sc.seed, default=LinkSpec(sc.latency_ms, sc.jitter_ms, sc.loss, sc.duplicate, sc.reorder))
    net.links[(1, 0)] = LinkSpec(sc.back_latency_ms, sc.jitter_ms, sc.loss, sc.duplicate, sc.reorder)
    if sc.example_env:
        env_cfg = {"players": sc.players, "max_steps": sc.length, "target_score": 10_000}
        make = lambda seat: load_game(COIN_CHASE, env_cfg, verify=False)  # noqa: E731
    else:
        make = tiny_grid_factory(length=sc.length, players=sc.players)
    result = run_peers(
        make, cfg, network=net, seed=sc.seed, policy=random_policy(sc.seed, (1, sc.hold)), away=sc.away,
        tick_jitter_ms=sc.tick_jitter_ms, clock_rate=[1.0] + [sc.clock_rate] * (sc.players - 1),
    )
    return cfg, make, result


def check_scenario(sc: Scenario) -> None:
    cfg, make, result = run_scenario(sc)
    # the faults happened
    assert result.total("rollbacks") > 0, "latency beyond the input delay must cause rollbacks"
    if sc.loss:
        assert result.network["lost"] > 0
    if sc.duplicate:
        assert result.network["duplicated"] > 0
        assert sum(p.session.stats["rejected"]["duplicate"] for p in result.peers) > 0
    if sc.away and sc.away[0].mode in ("hidden", "frozen"):
        assert result.peers[sc.away[0].seat].session.stats["fast_forward_frames"] > 0
    if sc.away:
        assert any(r.away[sc.away[0].seat] for r in result.peers[0].records)
    if sc.adaptive:  # every change is one frame, within the bounds, and recorded
        for peer in result.peers:
            changes = peer.session.diagnostics()["input_delays"]
            delays = [sc.input_delay] + [c["delay"] for c in changes]
            assert all(abs(b - a) == 1 and 0 <= b <= 8 for a, b in zip(delays, delays[1:])), delays
            assert peer.session.input_delay == delays[-1]
    # and parity held
    for peer in result.peers:
        assert peer.outcome == "complete", peer.session.end_reason
        assert peer.session.stats["desyncs"] == 0
        assert not peer.tail
        rejected = peer.session.stats["rejected"]
        assert sum(rejected[k] for k in ("malformed", "conflict", "invalid_input", "wrong_seat")) == 0
    assert result.identical()
    records = result.peers[0].records
    assert len(records) == sc.episodes * sc.length
    rows = [canonical_bytes(r.canonical()) for r in records]
    assert [canonical_bytes(r.canonical()) for r in replay(make(0), cfg, records).confirmed] == rows


@settings(max_examples=60)
@given(scenarios())
def test_random_fault_schedules_keep_byte_parity(sc):
    check_scenario(sc)


def test_seeded_sweep_of_many_short_scenarios():
    """A thousand short seeded scenarios over the same space (cheap: short episodes, no away).

    Each scenario asserts that the loss, duplication and reordering it injects happened, that both peers complete
    with byte-identical confirmed records (compared in memory; no export is built) and the expected record count.
    Rollbacks are checked in aggregate: a scenario whose holds are long may never mispredict, so at least 90 % of
    the scenarios must have rolled back. A third of the scenarios choose their input delay adaptively (somewhat
    longer, so that the round trips can be measured and acted on): most of them must have changed it."""
    count, rollbacks, adaptive, changed = 1000, 0, 0, 0
    for i in range(count):
        rng = random.Random(i)
        delay = rng.randint(0, 3)
        low = delay * 1000 / 30 + 45
        players = 3 if i % 10 == 0 else 2
        cfg = SessionConfig(
            players=players, input_delay=delay, max_prediction=rng.randint(1, 9), episodes=rng.randint(1, 2),
            seed=i, prediction=rng.choice(["repeat", "default"]), hash_interval=rng.choice([5, 30]),
        )
        link = LinkSpec(rng.uniform(low, low + 150), rng.choice([0.0, 20.0]), rng.choice([0.0, 0.1, 0.3]),
                        rng.choice([0.0, 0.2]), rng.choice([0.0, 0.2]))
        length = rng.randint(12, 30)
        if i % 3 == 1:
            adaptive += 1
            low_delay = rng.randint(0, delay)
            cfg = dataclasses.replace(cfg, adaptive_delay=True, min_input_delay=low_delay,
                                      max_input_delay=delay + rng.randint(1, 5))
            length = rng.randint(100, 130)  # past the two seconds the adaptive delay does not measure
        make = tiny_grid_factory(length=length, players=players)
        result = run_peers(make, cfg, link=link, seed=i, policy=random_policy(i, (1, rng.randint(1, 5))))
        # each scenario's network faults happened (latency applies to every packet by construction): the loss,
        # duplication and reordering delay it asks for were each applied at least once, and none it did not ask for
        net = result.network
        assert net["sent"] > 0 and net["delivered"] > 0, f"scenario {i}"
        assert (net["lost"] > 0) == (link.loss > 0), f"scenario {i}: loss {link.loss}, lost {net['lost']}"
        assert (net["duplicated"] > 0) == (link.duplicate > 0), f"scenario {i}: duplicated {net['duplicated']}"
        assert (net["reordered"] > 0) == (link.reorder > 0), f"scenario {i}: reordered {net['reordered']}"
        assert result.identical(), f"scenario {i}"
        assert all(p.outcome == "complete" for p in result.peers), f"scenario {i}"
        assert len(result.peers[0].records) == length * cfg.episodes
        rollbacks += result.total("rollbacks") > 0
        if cfg.adaptive_delay:
            delays = [p.session.input_delay for p in result.peers]
            assert all(cfg.min_input_delay <= d <= cfg.max_input_delay for d in delays), f"scenario {i}"
            changed += result.total("input_delay_changes") > 0
    # short episodes with long holds may see no misprediction, but nearly all scenarios must roll back
    assert rollbacks >= count * 0.9
    assert changed >= adaptive * 0.95, f"the delay changed in {changed} of {adaptive} adaptive scenarios"
