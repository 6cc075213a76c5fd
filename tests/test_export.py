"""The export bundle: byte-identical canonical files across peers, layout, encodings, tail, checkpoints."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.export import (
    Checkpoint, CheckpointError, Diagnostics, ExportContext, Exporter, bundle_name, recover, sanitize, write_bundle,
)
from pyodide_runtime.export import schema
from pyodide_runtime.export.cells import json_cell, parse_scalar, scalar_cell
from pyodide_runtime.host.testing import AwaySpan, LinkSpec, run_peers
from pyodide_runtime.host.validate import validate
from test_export_support import (
    OddGame, coin_bundle, coin_chase, context, drive_log, random_inputs, unzip,
)

CANONICAL = [f.path for f in schema.FILES if f.canonical and f.kind == "csv"]


def canonical_part(files: dict[str, bytes]) -> dict[str, bytes]:
    out = {p: files[p] for p in CANONICAL}
    out["metadata.canonical"] = canonical_json(json.loads(files["metadata.json"])["canonical"]).encode()
    return out


# -- two peers ------------------------------------------------------------------------------------------------
def test_different_speculative_histories_export_identical_canonical_files():
    a, _ = coin_bundle(0, frames=60)
    b, log_b = coin_bundle(1, frames=60, mispredict=[2, 10, 24, 30, 45])
    fa, fb = unzip(a), unzip(b)
    assert canonical_part(fa) == canonical_part(fb)
    assert fa["diagnostics/frames.csv"] != fb["diagnostics/frames.csv"]
    assert fa["diagnostics/rollbacks.csv"] != fb["diagnostics/rollbacks.csv"]
    assert json.loads(fa["manifest.json"])["canonical_digest"] == json.loads(fb["manifest.json"])["canonical_digest"]
    assert fa["metadata.json"] != fb["metadata.json"]  # participant_local differs
    assert validate(a).ok and validate(b).ok
    # the diagnostics say which frames were ever speculative on peer b
    rows = list(csv.DictReader(io.StringIO(fb["diagnostics/frames.csv"].decode())))
    assert {int(r["global_frame"]) for r in rows if r["speculative"] == "true"} == {2, 10, 24, 30, 45}
    assert all(r["resimulated"] == "1" for r in rows if r["speculative"] == "true")
    assert len(log_b.confirmed) == len(rows)


FAULTS = {
    "lossy-jittery": dict(link=LinkSpec(latency_ms=60, jitter_ms=40, loss=0.15, duplicate=0.05, reorder=0.1)),
    "slow-frozen-tab": dict(link=LinkSpec(latency_ms=120, loss=0.05), away=[AwaySpan(1, 800, 2600, "frozen")]),
    "hidden-tab": dict(link=LinkSpec(latency_ms=40, jitter_ms=10), away=[AwaySpan(0, 500, 3000, "hidden")]),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_real_harness_fault_matrix_gives_byte_identical_canonical_data(fault):
    config = SessionConfig(episodes=2, seed=7)
    result = run_peers(lambda seat: coin_chase(max_steps=50), config, seed=11, **FAULTS[fault])
    bundles = []
    for peer in result.peers:
        assert peer.outcome == "complete"
        ctx = ExportContext.from_session(peer.session, study="s", session_id="room-9", participant=f"p{peer.seat}")
        diag = Diagnostics.from_events(peer.events, stats=peer.stats, network={"rtt_ms": [50.0, 61.5]})
        bundles.append(unzip(write_bundle(peer.session.log, ctx, diag)))
    a, b = bundles
    assert canonical_part(a) == canonical_part(b)
    assert a["diagnostics/frames.csv"] != b["diagnostics/frames.csv"]  # timings and speculation are per peer
    for files in bundles:
        meta = json.loads(files["metadata.json"])
        assert meta["canonical"]["status"] == "complete" and "unconfirmed_tail.csv" not in files
    def rows(name: str) -> int:
        return sum(len(f[name].splitlines()) - 1 for f in bundles)

    assert rows("diagnostics/rollbacks.csv") > 0  # the scenario really exercised rollback
    if "away" in FAULTS[fault]:  # ... and tab-away periods with the fast-forward after them
        assert rows("diagnostics/away.csv") > 0 and rows("diagnostics/fast_forwards.csv") > 0
        away_frames = [r for r in csv.DictReader(io.StringIO(a["frames.csv"].decode())) if r["away"] == "true"]
        assert away_frames  # away is canonical data: the same frames flagged in both exports


def test_harness_partial_session_keeps_the_tail_apart():
    config = SessionConfig(episodes=3, seed=2)
    result = run_peers(lambda seat: coin_chase(max_steps=40), config, seed=5,
                       link=LinkSpec(latency_ms=150, loss=0.1), disconnect={1: (1500.0, False)})
    peer = result.peers[0]
    assert peer.outcome == "partial"
    ctx = ExportContext.from_session(peer.session, study="s", session_id="r", participant="p0")
    data = write_bundle(peer.session.log, ctx, Diagnostics.from_events(peer.events))
    files = unzip(data)
    confirmed = peer.session.log.confirmed
    frames = list(csv.DictReader(io.StringIO(files["frames.csv"].decode())))
    assert sorted({int(r["global_frame"]) for r in frames}) == list(range(len(confirmed)))
    tail = list(csv.DictReader(io.StringIO(files["unconfirmed_tail.csv"].decode())))
    assert len(tail) == 2 * len(peer.tail) > 0
    assert {r["confirmed"] for r in tail} == {"false"}
    assert min(int(r["global_frame"]) for r in tail) == len(confirmed)
    meta = json.loads(files["metadata.json"])
    assert meta["canonical"]["status"] == "partial"
    assert meta["participant_local"]["unconfirmed_tail_frames"] == len(peer.tail)
    assert validate(data).ok, validate(data).problems


def test_partial_log_exports_only_confirmed_frames_and_flags_the_tail():
    data, log = coin_bundle(0, frames=40, confirm=31)
    files = unzip(data)
    assert len(log.confirmed) == 31 and len(log.unconfirmed_tail()) == 9
    frames = files["frames.csv"].decode().splitlines()
    assert len(frames) == 1 + 2 * 31
    tail = files["unconfirmed_tail.csv"].decode().splitlines()
    assert tail[0] == schema.TAIL.header and len(tail) == 1 + 2 * 9
    assert all(line.split(",")[1] == "false" for line in tail[1:])
    assert all(",false," in line for line in tail[1:])
    res = validate(data)
    assert res.ok, res.problems


# -- layout and encodings -------------------------------------------------------------------------------------
def test_bundle_layout_is_deterministic_and_documented():
    a, _ = coin_bundle(0)
    b, _ = coin_bundle(0)
    assert a == b
    files = unzip(a)
    assert list(files)[-1] == "manifest.json"
    book = json.loads(files["codebook.json"])
    described = {f["path"] for f in book["files"]}
    assert set(files) <= described
    for f in book["files"]:
        if f["path"] in files and f["path"].endswith(".csv"):
            assert files[f["path"]].decode().split("\n", 1)[0] == ",".join(c["name"] for c in f["columns"])
    assert "## Files" in files["codebook.md"].decode()
    for name, data in files.items():
        if name.endswith(".csv"):
            assert b"\r" not in data and data.endswith(b"\n")
    meta = json.loads(files["metadata.json"])["canonical"]
    assert meta["env"]["env_id"] == "coin_chase" and meta["package"]["wheel_sha256"] == "ab" * 32
    assert meta["runtime"]["pyodide"] == "0.27.7" and meta["prediction_window"] == 8
    assert [e["frames"] for e in meta["episodes"]] == [25, 25]
    assert meta["seeds"]["episodes"] == [SessionConfig().episode_seed(0), SessionConfig().episode_seed(1)]


def test_bundle_name_is_sanitised():
    assert bundle_name("My Study", "room/1", "../../etc/passwd?x=1", 1) == "My-Study_room-1_etc-passwd-x-1_seat1.zip"
    assert sanitize("") == "x" and sanitize("..") == "x"
    assert len(sanitize("a" * 500)) == 48
    assert sanitize("ü<script>") == "script"


def test_odd_values_round_trip_and_the_chain_recomputes():
    game = OddGame()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, [(i % 3,) for i in range(20)])
    ctx = ExportContext(study="s", session="s,1", participant="p", seat=0, config=config, env=game.describe(),
                        agents=game.agents, seats=game.seats, inline_limit=1024)
    data = write_bundle(log, ctx)
    res = validate(data)
    assert res.ok, res.problems
    files = unzip(data)
    refs = [c for name in ("frames.csv", "resets.csv") for r in csv.reader(io.StringIO(files[name].decode()))
            for c in r if c.startswith(schema.BLOB_PREFIX)]
    blob_rows = files["blobs.csv"].decode().splitlines()[1:]
    assert len(blob_rows) == len(set(refs)) < len(refs)  # large values stored once (episodes repeat them)
    from pyodide_runtime.host.data import load

    rows = load(data, backend="python", decode_json=True).frames
    by_key = {(r["global_frame"], r["agent"]): r for r in rows}
    assert {r["agent"] for r in rows} == {"a,1", "bot", "__common__"}
    for rec in log.confirmed:
        row = by_key[(rec.global_frame, "a,1")]
        want, got = rec.rewards["a,1"], row["reward"]
        same = got == want and math.copysign(1, got) == math.copysign(1, want)
        assert same or (math.isnan(got) and math.isnan(want))
        assert canonical_json(row["observation"]) == canonical_json(rec.observations["a,1"])
        bot = by_key[(rec.global_frame, "bot")]
        assert canonical_json(bot["observation"]) == canonical_json(rec.observations["bot"])
        assert bot["truncated"] is None  # absent, not false
        assert bot["reward"] == 1e-310
        assert by_key[(rec.global_frame, "__common__")]["info"] == {"note": "extra key"}


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-20, 20), st.booleans()), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(VALUES)
def test_json_cell_is_exactly_canonical_json(value):
    assert json_cell(value) == canonical_json(value)


@settings(max_examples=200)
@given(SCALARS)
def test_scalar_cells_parse_back_exactly(value):
    text = scalar_cell(value)
    if text.startswith('"') and not isinstance(value, str):
        pytest.fail(f"unexpected quoting of {value!r}")
    if isinstance(value, str):
        text = next(csv.reader([text]))[0]
    back = parse_scalar(text)
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and type(back) is type(value)
        if isinstance(value, float):
            assert math.copysign(1, back) == math.copysign(1, value)


# -- exporter and checkpoints ---------------------------------------------------------------------------------
def _prefix_log(log, n):
    class View:
        confirmed = log.confirmed[:n]
        episode_starts = [s for s in log.episode_starts if s.start_frame <= n]

        @staticmethod
        def unconfirmed_tail():
            return log.confirmed[n:]  # what was still speculative when the checkpoint was taken

    return View()


def test_incremental_exporter_matches_one_shot_export():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, random_inputs(60))
    ctx = context(game, config)
    exporter = Exporter(ctx)
    for n in (10, 25, 37):
        exporter.checkpoint(_prefix_log(log, n))
    assert exporter.bundle(log) == write_bundle(log, ctx)
    assert exporter.filename == "study_session-1_participant-0_seat0.zip"


def test_recover_from_checkpoints_gives_a_valid_flagged_bundle():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, random_inputs(60))
    ctx = context(game, config)
    exporter = Exporter(ctx)
    stored = b""
    for n in (10, 25, 37):
        stored += exporter.checkpoint(_prefix_log(log, n), Diagnostics(user_agent="UA", rollbacks=[(3, 2, [1])]))
    crashed = stored + b'{"kind":"pyodide_runtime.checkpoint","vers'  # the last write was cut short
    data = recover(crashed)
    res = validate(data)
    assert res.ok, res.problems
    files = unzip(data)
    meta = json.loads(files["metadata.json"])
    assert meta["participant_local"]["recovered_from_checkpoint"] is True
    assert meta["canonical"]["status"] == "partial" and meta["canonical"]["confirmed_frames"] == 37
    full = unzip(write_bundle(log, ctx))
    assert files["frames.csv"] == full["frames.csv"][: len(files["frames.csv"])]
    assert len(files["unconfirmed_tail.csv"].decode().splitlines()) == 1 + 2 * (len(log.confirmed) - 37)
    assert "3,2,[1]," in files["diagnostics/rollbacks.csv"].decode()
    # checkpoints stored as separate chunks work too, and a stored duplicate is harmless
    chunks = [line + b"\n" for line in stored.splitlines()]
    assert recover(chunks + [chunks[-1]]) == data


def test_stateless_checkpoints_chain_with_since():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, random_inputs(60))
    ctx = context(game, config)
    first = Checkpoint.from_log(_prefix_log(log, 20), ctx)
    second = Checkpoint.from_log(log, ctx, since=first)
    assert (first.frame_start, first.frame_end, second.frame_start, second.frame_end) == (0, 20, 20, len(log.confirmed))
    data = recover(first.to_bytes() + second.to_bytes())
    assert unzip(data)["frames.csv"] == unzip(write_bundle(log, ctx))["frames.csv"]
    assert json.loads(unzip(data)["metadata.json"])["canonical"]["status"] == "complete"


def test_recover_rejects_garbage():
    with pytest.raises(CheckpointError):
        recover(b"")
    with pytest.raises(CheckpointError):
        recover(b'{"kind": "something else"}\n{"x": 1}\n')


def test_per_tick_updates_then_checkpoints_recover_the_same_rows():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, random_inputs(60))
    ctx = context(game, config)
    exporter = Exporter(ctx)
    stored = []
    for n in range(1, len(log.confirmed) + 1):
        exporter.update(_prefix_log(log, n))
        if n in (20, 41):
            stored.append(exporter.checkpoint(_prefix_log(log, n)))
    stored.append(exporter.checkpoint(log))
    assert unzip(recover(stored))["frames.csv"] == unzip(write_bundle(log, ctx))["frames.csv"]
    assert exporter.bundle(log) == write_bundle(log, ctx)


def test_tail_values_never_reach_the_canonical_blobs():
    game = OddGame(length=12)
    config = SessionConfig(episodes=1)
    log = drive_log(game, config, [(0,)] * 12, confirm=5)
    ctx = ExportContext(study="s", session="s", participant="p", seat=0, config=config, env=game.describe(),
                        agents=game.agents, seats=game.seats, inline_limit=512)
    files = unzip(write_bundle(log, ctx))
    refs = {c[len(schema.BLOB_PREFIX):] for name in ("frames.csv", "resets.csv")
            for r in csv.reader(io.StringIO(files[name].decode())) for c in r if c.startswith(schema.BLOB_PREFIX)}
    blobs = {line.split(",", 1)[0] for line in files["blobs.csv"].decode().splitlines()[1:]}
    assert blobs == refs
    assert schema.BLOB_PREFIX not in files["unconfirmed_tail.csv"].decode()
    assert validate(write_bundle(log, ctx)).ok


def test_the_fast_json_encoder_is_in_use():
    from pyodide_runtime import canonical

    assert canonical._encode is not canonical._reference_encode
    import numpy as np

    for value in (np.arange(12).reshape(3, 4), np.array([0.5, np.nan]), {"img": np.zeros((2, 2, 3), np.uint8)},
                  [np.float32(0.1), np.int64(-3), np.bool_(False)], {"k": np.array(["a", "b"])}):
        assert json_cell(value) == _reference_text(value)


def _reference_text(value):
    import json

    from pyodide_runtime.canonical import to_canonical

    return json.dumps(to_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def test_a_session_that_never_started_still_exports_a_valid_partial_bundle():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, [], confirm=0)
    data = write_bundle(log, context(game, config), Diagnostics(outcome="partial", end_reason="handshake failed"))
    res = validate(data)
    assert res.ok, res.problems
    files = unzip(data)
    assert files["frames.csv"].decode() == schema.FRAMES.header + "\n"
    meta = json.loads(files["metadata.json"])
    assert meta["canonical"]["status"] == "partial" and meta["participant_local"]["end_reason"] == "handshake failed"


def test_checkpoints_stay_small_and_keep_tick_statistics():
    game = coin_chase()
    config = SessionConfig(episodes=2)
    log = drive_log(game, config, random_inputs(60))
    exporter = Exporter(context(game, config))
    diag = Diagnostics(tick_intervals_ms=[33.0] * 5000 + [1000.0], rendered={g: {"f": g} for g in range(50)})
    first = exporter.checkpoint(_prefix_log(log, 30), diag)
    second = exporter.checkpoint(log, diag)
    assert len(second) < len(first) < 60_000
    files = unzip(recover(first + second))
    local = json.loads(files["metadata.json"])["participant_local"]
    assert local["tick_intervals"]["count"] == 5001 and local["tick_intervals"]["max_ms"] == 1000.0
    rendered = [r["rendered"] for r in csv.DictReader(io.StringIO(files["diagnostics/frames.csv"].decode()))]
    assert rendered == [json.dumps({"f": g}, separators=(",", ":")) for g in range(50)]
