"""The page keeps no per-frame records once they are encoded, and its export stays byte-identical."""

from __future__ import annotations

import csv
import gc
import io
import json
import random
import tracemalloc

import pytest

import pyodide_runtime.bridge as bridge_module
from pyodide_runtime.bridge import Bridge, recover_bundle
from pyodide_runtime.export.textstore import TextStore
from pyodide_runtime.framelog import FrameLog
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate
from test_export_support import unzip

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
FAULTY = LinkSpec(latency_ms=60, jitter_ms=20, loss=0.15)
MARKED = 20  # a frame seat 0's log marks as desynced long after it was encoded (and, by default, released)


def _study(episodes: int, max_steps: int) -> str:
    return json.dumps({
        "study": "memory_test",
        "env": {"spec": COIN_CHASE, "function": "make_env", "file": None},
        "players": 2,
        "config": {"env_config": {"max_steps": max_steps},
                   "session": {"players": 2, "fps": 30, "episodes": episodes, "seed": 9}},
    })


def _retain_everything(bridge: Bridge) -> None:
    """Make the page keep every record, as CPython tools do (the bridge releases them by default)."""
    exporter = bridge.exporter
    update = type(exporter).update
    exporter.update = lambda log, release=False: update(exporter, log)  # type: ignore[method-assign]


def play(release: bool, *, leave_at_ms: float | None = 9_000.0, away: tuple[float, float] = (3_000.0, 4_500.0),
         episodes: int = 3, max_steps: int = 120, link: LinkSpec = FAULTY) -> tuple[list[Bridge], dict]:
    """Two bridges over a lossy, late link; seat 1 hides during ``away`` and leaves at ``leave_at_ms``.

    Wall-clock stamps are fixed, so two runs of the same session give comparable bundles.
    """
    saved = bridge_module._utc_now
    bridge_module._utc_now = lambda: "2000-01-01T00:00:00.000+00:00"
    try:
        bridges = [Bridge(_study(episodes, max_steps), s, room="room", participant=f"p{s}",
                          page={"user_agent": "test"}) for s in range(2)]
        if not release:
            for b in bridges:
                _retain_everything(b)
        net = Network(seed=3, default=link)
        rng = random.Random(11)
        inputs = [0, 0]
        outs: dict[int, list[dict]] = {0: [], 1: []}
        next_tick = [0.0, 7.0]
        marked = False
        while not all(b.session.ended for b in bridges) and min(next_tick) < 120_000:
            seat = 0 if next_tick[0] <= next_tick[1] else 1
            now = next_tick[seat]
            if seat == 1 and leave_at_ms is not None and now >= leave_at_ms and not bridges[1].session.ended:
                out = bridges[1].close(now, "participant left")
                outs[1].append(out)
            else:
                hidden = seat == 1 and away[0] <= now < away[1]
                if rng.random() < 0.2:
                    inputs[seat] = rng.randrange(5)
                out = bridges[seat].tick(now, inputs[seat], net.deliver(now, seat), hidden)
                outs[seat].append(out)
                hidden_next = seat == 1 and away[0] <= now + 1000 / 30 < away[1]
                next_tick[seat] = now + (1000.0 if hidden_next else 1000 / 30)
            for to, data, _reliable in out["messages"]:
                net.send(now, seat, to, data)
            if seat == 0 and not marked and bridges[0].session.confirmed_frames > MARKED + 150:
                bridges[0].session.log.mark_desync(MARKED)
                marked = True
            if seat == 1 and bridges[1].session.ended:
                next_tick[1] = float("inf")
        return bridges, outs
    finally:
        bridge_module._utc_now = saved


def _final(outs: list[dict]) -> bytes:
    bundles = [o["bundle"] for o in outs if o.get("bundle") is not None]
    assert len(bundles) == 1
    return bundles[0]


@pytest.fixture(scope="module")
def both_modes():
    return play(release=True), play(release=False)


def test_a_released_page_exports_the_same_bytes_as_one_that_kept_every_record(both_modes, tmp_path):
    (released, r_outs), (kept, k_outs) = both_modes
    # the faults happened: rollbacks, an away period with a fast-forward, a partner leaving mid-episode
    assert sum(b.session.stats["rollbacks"] for b in released) > 0
    assert sum(b.session.stats["fast_forward_frames"] for b in released) > 0
    assert released[0].session.outcome == "partial"
    tails = [len(b.session.log.unconfirmed_tail()) for b in released]
    assert any(tails), "a seat ends with an unconfirmed tail"
    # the page dropped its records; the reference kept every one
    for b in released:
        log = b.session.log
        assert log.confirmed_base == log.confirmed_count > 200 and log.confirmed == []
    assert all(b.session.log.confirmed_base == 0 for b in kept)
    for seat in (0, 1):
        r_bundle, k_bundle = _final(r_outs[seat]), _final(k_outs[seat])
        assert r_bundle == k_bundle, f"seat {seat}: the bundle differs between modes"
        assert [o["checkpoint"] for o in r_outs[seat] if o.get("checkpoint")] == \
               [o["checkpoint"] for o in k_outs[seat] if o.get("checkpoint")]
        files = unzip(r_bundle)
        meta = json.loads(files["metadata.json"])
        assert meta["canonical"]["status"] == "partial"
        path = tmp_path / f"seat{seat}.zip"
        path.write_bytes(r_bundle)
        assert validate(str(path)).ok
    for seat in (0, 1):
        tail_rows = unzip(_final(r_outs[seat]))["unconfirmed_tail.csv"].decode().splitlines()[1:]
        assert len({row.split(",")[4] for row in tail_rows}) == tails[seat], "the tail is flagged, frame by frame"
    # every confirmed frame is in the export, whatever was released
    rows = list(csv.DictReader(io.StringIO(unzip(_final(r_outs[0]))["frames.csv"].decode())))
    assert len({r["global_frame"] for r in rows}) == released[0].session.log.confirmed_count
    # the peers agree on every frame both confirmed (the one that left confirmed fewer)
    short, long = sorted((unzip(_final(r_outs[s]))["frames.csv"] for s in (0, 1)), key=len)
    assert long.startswith(short) and short.count(b"\n") > 200


def test_a_desync_marked_after_release_still_reaches_the_diagnostics(both_modes):
    (released, r_outs), _ = both_modes
    assert released[0].session.log.desynced_frames == [MARKED]
    diag = list(csv.DictReader(io.StringIO(unzip(_final(r_outs[0]))["diagnostics/frames.csv"].decode())))
    flags = {int(r["global_frame"]): r["desynced"] for r in diag}
    assert flags[MARKED] == "true" and flags[MARKED + 1] == "false"
    assert released[0].session.log.hash_at(29) is not None, "hash points stay answerable after release"


def test_checkpoints_of_a_released_page_recover_a_valid_bundle(both_modes, tmp_path):
    (released, r_outs), _ = both_modes
    stored = [o["checkpoint"] for o in r_outs[0] if o.get("checkpoint")]
    assert len(stored) >= 2
    data, name = recover_bundle(stored)
    assert name.endswith("-recovered.zip")
    path = tmp_path / name
    path.write_bytes(data)
    assert validate(str(path)).ok
    recovered = unzip(data)["frames.csv"]
    assert json.loads(unzip(data)["metadata.json"])["participant_local"]["recovered_from_checkpoint"] is True
    assert unzip(_final(r_outs[0]))["frames.csv"].startswith(recovered)


def _retained_bytes_per_frame(release: bool, frames: tuple[int, int]) -> float:
    desc = _study(episodes=100, max_steps=600)
    bridges = [Bridge(desc, s, room="room", participant=f"p{s}", page={}) for s in range(2)]
    if not release:
        for b in bridges:
            _retain_everything(b)
    net = Network(seed=3, default=LinkSpec(latency_ms=40, jitter_ms=10, loss=0.05))
    rng = random.Random(11)
    inputs, next_tick, samples = [0, 0], [0.0, 7.0], []
    tracemalloc.start()
    try:
        while len(samples) < 2:
            seat = 0 if next_tick[0] <= next_tick[1] else 1
            now = next_tick[seat]
            if rng.random() < 0.2:
                inputs[seat] = rng.randrange(5)
            out = bridges[seat].tick(now, inputs[seat], net.deliver(now, seat), False)
            for to, data, _reliable in out["messages"]:
                net.send(now, seat, to, data)
            next_tick[seat] = now + 1000 / 30
            if bridges[0].session.confirmed_frames == frames[len(samples)]:
                gc.collect()
                samples.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return (samples[1] - samples[0]) / (frames[1] - frames[0]) / 2  # per page


def test_a_page_retains_a_few_hundred_bytes_per_confirmed_frame_at_most():
    frames = (600, 2400)
    released = _retained_bytes_per_frame(True, frames)
    kept = _retained_bytes_per_frame(False, frames)
    assert kept > 2000, f"the reference keeps its records ({kept:.0f} B/frame)"
    assert released < 400 and released < kept / 10, f"{released:.0f} B/frame retained vs {kept:.0f} kept"


def test_text_store_reads_back_exactly_what_was_appended_from_any_mark():
    store = TextStore(seal_chars=1000)
    chunks = [(m * 3, "".join(f"s1,{m},{i},agent_{i},é,{m * 0.25!r},[{m},{i},{m % 7}],false\n" for i in range(m % 5 + 1))) for m in range(200)]
    for mark, text in chunks:
        store.append(mark, text)
    full = "".join(t for _, t in chunks)
    assert store.text() == full
    assert store.to_bytes("head\n") == ("head\n" + full).encode()
    assert list(store.chunks()) == chunks
    for mark in (0, 1, 3, 299, 300, 598, 1000):
        assert store.since(mark) == "".join(t for m, t in chunks if m >= mark)
    assert store.kept_bytes < len(full.encode()) / 2, "sealed text is kept compressed"


def test_release_keeps_counts_and_refuses_to_hand_out_dropped_records():
    log = FrameLog()
    assert log.release(10) == 0
    bridges, _ = play(release=True, leave_at_ms=None, episodes=1, max_steps=40, link=LinkSpec())
    log = bridges[0].session.log
    assert log.confirmed_count == 40 and log.confirmed_base == 40
    with pytest.raises(ValueError, match="released"):
        log.confirmed_since(0)
    assert log.hash_at(39) is not None and log.hash_at(38) is None  # episode end kept, ordinary frame not
