"""The ``"bytes"`` hash mode: canonical array bytes, peer parity with rollbacks, export metadata, validate, verify."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from pyodide_runtime.arrayhash import feed, layout, rebuild
from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.config import ConfigError, SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import ExportContext, write_bundle
from pyodide_runtime.export.bundle import pack
from pyodide_runtime.export.cells import parse_json
from pyodide_runtime.framelog import FrameLog, FrameRecord
from pyodide_runtime.host.testing import LinkSpec, run_peers
from pyodide_runtime.host.validate import validate
from pyodide_runtime.host.verify import verify_files
from test_export_support import unzip

ENV = "bytes_env:make_env"


def h(value) -> str:
    sha = hashlib.sha256()
    feed(sha, value)
    return sha.hexdigest()


# -- canonical bytes ----------------------------------------------------------------------------------------------
def test_memory_layout_and_byte_order_do_not_change_the_hash():
    base = np.arange(60, dtype="<f8").reshape(3, 4, 5) * 0.37 - 3.0
    ref = h(base)
    assert h(np.asfortranarray(base)) == ref
    assert h(base.astype(">f8")) == ref
    assert not np.asfortranarray(base).flags.c_contiguous
    wide = np.zeros((3, 8, 5))
    wide[:, ::2, :] = base  # a strided view equal to base
    assert not wide[:, ::2, :].flags.c_contiguous and h(wide[:, ::2, :]) == ref
    assert h(base[::-1][::-1]) == ref
    ints = np.arange(12, dtype="<i4").reshape(3, 4)
    assert h(ints.astype(">i4")) == h(ints) == h(np.asfortranarray(ints.astype(">i4")))
    # the hash is of the documented framing: header (dtype little-endian, shape) then C-order little-endian bytes
    want = hashlib.sha256(b"A" + bytes([3]) + b"<i4" + bytes([2]) + (3).to_bytes(8, "big") + (4).to_bytes(8, "big")
                          + ints.astype("<i4").tobytes(order="C")).hexdigest()
    assert h(ints.astype(">i4").T.T) == want


def test_dtype_shape_and_values_change_the_hash():
    a = np.arange(12, dtype=np.uint8)
    seen = {h(a), h(a.astype(np.int8)), h(a.astype(np.uint16)), h(a.astype(np.float32)), h(a.astype(bool)),
            h(a.reshape(3, 4)), h(a.reshape(4, 3)), h(a.reshape(1, 12)), h(a.tolist()), h(a[:11])}
    assert len(seen) == 10
    b = a.copy()
    b[5] += 1
    assert h(b) != h(a)
    # negative zero is a different value; every NaN is the same
    assert h(np.array([0.0])) != h(np.array([-0.0]))
    odd_nan = np.array([0x7FF8000000000001], dtype="<u8").view("<f8")
    assert np.isnan(odd_nan[0]) and h(odd_nan) == h(np.array([np.nan]))


def test_structures_are_framed_canonically():
    img = np.zeros((2, 2), np.uint8)
    assert h({"b": img, "a": [1, 2]}) == h({"a": (1, 2), "b": img.copy(order="F")})
    assert h({"a": img, "b": 1}) != h({"a": img, "b": 2})
    assert h([img, "x"]) != h(["x", img])
    assert h({"a": [1.5, None]}) == h({"a": [1.5, None]})
    # values without arrays are their canonical JSON, so numpy scalars count as their value
    assert h({"a": np.float32(1.5)}) == h({"a": 1.5})


def test_layout_and_rebuild_restore_the_hashed_bytes():
    obs = {"image": np.asfortranarray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
           "heat": np.array([-0.0, np.nan, np.inf, 1e-40, 3.5], dtype=">f4"), "pos": [1, 2], "tag": "x",
           "mask": np.array([[True, False]]), "empty": np.zeros((0, 3), np.int64), "half": np.array([1.5], "<f2")}
    shape = layout(obs)
    assert shape[1]["heat"] == ["ndarray", "<f4", [5]] and shape[1]["image"] == ["ndarray", "|u1", [2, 3, 4]]
    assert "pos" not in shape[1] and "tag" not in shape[1]
    exported = parse_json(canonical_json(obs))  # what an export's cell holds
    back = rebuild(exported, json.loads(json.dumps(shape)))
    assert h(back) == h(obs)
    assert layout({"x": [1, 2]}) is None and rebuild([1, 2], None) == [1, 2]


@pytest.mark.parametrize("value, shape", [
    ([1, 300], ["ndarray", "|u1", [2]]),            # out of range
    ([1, 2.5], ["ndarray", "<i4", [2]]),            # not an integer
    ([0.1], ["ndarray", "<f4", [1]]),               # not a float32 value
    ([1, 2, 3], ["ndarray", "<i4", [2, 2]]),        # wrong shape
    ([True, 1], ["ndarray", "|b1", [2]]),           # not a bool
    ({"a": [1]}, ["dict", {"b": ["ndarray", "<i4", [1]]}]),
])
def test_rebuild_refuses_values_that_are_not_the_hashed_array(value, shape):
    with pytest.raises(ValueError):
        rebuild(value, shape)


# -- configuration and frame log ------------------------------------------------------------------------------
def test_the_mode_is_a_session_option_and_bad_names_are_refused():
    assert SessionConfig(frame_hash="bytes").frame_hash == "bytes"
    with pytest.raises(ConfigError, match="frame_hash.*'bytes'"):
        SessionConfig(frame_hash="raw")


def _record(g: int, obs, reward=0.0, over=False) -> FrameRecord:
    return FrameRecord(g, 0, g, (1,), (False,), {"a": 1}, {"a": obs}, {"a": reward}, {"a": False}, {"a": over},
                       {"a": {}}, over, False, 0.0)


def _chain(records, mode="bytes", every=3) -> list[str]:
    log = FrameLog(mode, every)
    for rec in records:
        log.add(rec)
    log.promote(len(records), 0.0)
    return [r.state_hash for r in log.confirmed]


def test_bytes_chain_covers_observations_at_hash_points_and_the_rest_of_the_record():
    obs = [np.full((4, 4), i, np.uint8) for i in range(6)]
    base = _chain([_record(g, obs[g]) for g in range(6)])
    fortran = _chain([_record(g, np.asfortranarray(obs[g])) for g in range(6)])
    assert base == fortran
    # a changed observation at hash point 2 (every 3rd frame) changes the chain from there on
    changed = _chain([_record(g, obs[g] + (g == 2)) for g in range(6)])
    assert changed[:2] == base[:2] and changed[2] != base[2]
    # a changed dtype at a hash point too
    wider = _chain([_record(g, obs[g].astype(np.uint16) if g == 5 else obs[g]) for g in range(6)])
    assert wider[:5] == base[:5] and wider[5] != base[5]
    # rewards are covered at hash points as in "sampled"
    rewarded = _chain([_record(g, obs[g], reward=1.0 if g == 2 else 0.0) for g in range(6)])
    assert rewarded[2] != base[2]
    # and the mode differs from the JSON modes
    assert _chain([_record(g, obs[g]) for g in range(6)], "sampled") != base


# -- sessions and exports -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def played():
    config = SessionConfig(episodes=2, frame_hash="bytes", hash_interval=10, seed=5)
    res = run_peers(lambda seat: load_game(ENV, {"max_steps": 40}), config,
                    link=LinkSpec(latency_ms=80, jitter_ms=20), seed=3)
    bundles = [write_bundle(p.session.log, ExportContext.from_session(
        p.session, study="s", session_id="bytes", participant=f"p{i}")) for i, p in enumerate(res.peers)]
    return res, bundles


def test_peers_with_rollbacks_keep_parity_in_bytes_mode(played):
    res, bundles = played
    assert res.total("rollbacks") > 0 and res.total("resimulated_frames") > 0
    assert [p.outcome.value for p in res.peers] == ["complete", "complete"]
    assert res.identical()
    logs = [p.session.log for p in res.peers]
    assert len(logs[0].confirmed) == 80
    assert [r.state_hash for r in logs[0].confirmed] == [r.state_hash for r in logs[1].confirmed]
    canon = [unzip(b) for b in bundles]
    for name in ("frames.csv", "resets.csv", "episodes.csv", "blobs.csv"):
        assert canon[0][name] == canon[1][name], name
    metas = [json.loads(c["metadata.json"])["canonical"] for c in canon]
    assert metas[0] == metas[1]


def test_the_mode_and_layouts_are_in_the_metadata(played):
    meta = json.loads(unzip(played[1][0])["metadata.json"])["canonical"]
    assert meta["config"]["frame_hash"] == "bytes" and meta["config"]["hash_interval"] == 10
    layouts = meta["observation_layouts"]
    want = ["dict", {"heat": ["ndarray", "<f4", [6]], "image": ["ndarray", "|u1", [8, 8, 3]]}]
    # one entry per agent: the first hash point (frame 9), and the first reset (episode 0)
    assert layouts == {"frames": {"p0": [[9, want]], "p1": [[9, want]]}, "resets": {"p0": [[0, want]], "p1": [[0, want]]}}


def test_validate_recomputes_the_bytes_chain(played):
    res = validate(played[1][0])
    assert res.ok, res.problems
    assert "observation_bytes" in res.checks and "state_hash_chain" in res.checks


def _tamper_observation(files: dict[str, bytes], g: int, agent: str, change) -> dict[str, bytes]:
    import csv
    import io

    from pyodide_runtime.export.cells import quote

    lines = files["frames.csv"].decode().split("\n")
    header = lines[0].split(",")
    for i, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        if len(cells) > 4 and cells[3] == str(g) and f",{agent}," in line:
            break
    else:
        raise AssertionError("row not found")
    cells = next(csv.reader(io.StringIO(line)))
    col = header.index("observation")
    obs = json.loads(cells[col])
    change(obs)
    cells[col] = canonical_json(obs)
    lines[i] = ",".join(quote(c) for c in cells)
    return {**files, "frames.csv": "\n".join(lines).encode()}


def _repack(files):
    return pack({k: v for k, v in files.items() if k != "manifest.json"})


def test_a_tampered_observation_fails_validate_with_a_clear_message(played):
    files = unzip(played[1][0])

    def pixel(obs):
        obs["image"][0][0][0] = (obs["image"][0][0][0] + 1) % 256

    res = validate(_repack(_tamper_observation(files, 19, "p1", pixel)))
    assert not res.ok
    assert any("state_hash of global_frame 19 does not match" in p for p in res.problems), res.problems

    def overflow(obs):
        obs["image"][0][0][0] = 999

    res = validate(_repack(_tamper_observation(files, 19, "p1", overflow)))
    assert any("global_frame 19: the observation of p1 cannot be rebuilt" in p for p in res.problems), res.problems


def test_a_tampered_layout_or_a_missing_one_fails_validate(played):
    files = unzip(played[1][0])
    meta = json.loads(files["metadata.json"])
    meta["canonical"]["observation_layouts"]["frames"]["p0"][0][1][1]["image"][1] = "|i1"
    res = validate(_repack({**files, "metadata.json": json.dumps(meta).encode()}))
    assert any("state_hash of global_frame 9 does not match" in p for p in res.problems), res.problems
    del meta["canonical"]["observation_layouts"]
    res = validate(_repack({**files, "metadata.json": json.dumps(meta).encode()}))
    assert any("observation_layouts is missing" in p for p in res.problems), res.problems


def test_verify_re_runs_a_bytes_mode_bundle(played):
    result = verify_files(unzip(played[1][0]), env=ENV)
    assert result.status == "verified", result.divergence
    assert result.frames == 80
    files = unzip(played[1][0])
    meta = json.loads(files["metadata.json"])
    meta["canonical"]["observation_layouts"]["frames"]["p1"][0][1][1]["heat"][2] = [3, 2]
    bad = verify_files({**files, "metadata.json": json.dumps(meta).encode()}, env=ENV)
    assert bad.status == "diverged" and bad.divergence.column == "observation_layouts"


def test_checkpoint_recovery_keeps_the_layouts(played):
    from pyodide_runtime.export.checkpoint import Checkpoint, recover
    from pyodide_runtime.export.writer import TableEncoder

    res, bundles = played
    session = res.peers[0].session
    ctx = ExportContext.from_session(session, study="s", session_id="bytes", participant="p0")
    enc = TableEncoder(ctx)
    first = Checkpoint.from_log(session.log, ctx, encoder=enc)
    stored = first.to_bytes()
    recovered = unzip(recover(stored))
    meta = json.loads(recovered["metadata.json"])["canonical"]
    assert meta["observation_layouts"] == json.loads(unzip(bundles[0])["metadata.json"])["canonical"][
        "observation_layouts"]
    assert validate(recover(stored)).ok


def test_a_tampered_reset_observation_fails_validate(played):
    import csv
    import io

    from pyodide_runtime.export.cells import quote

    files = unzip(played[1][0])
    lines = files["resets.csv"].decode().split("\n")
    header = lines[0].split(",")
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    i = next(k for k, r in enumerate(rows) if r[header.index("episode")] == "1" and r[header.index("agent")] == "p0")
    obs = json.loads(rows[i][header.index("observation")])
    obs["heat"][2] = obs["heat"][2] * 2 if obs["heat"][2] else 1.0
    rows[i][header.index("observation")] = canonical_json(obs)
    lines[1 + i] = ",".join(quote(c) for c in rows[i])
    res = validate(_repack({**files, "resets.csv": "\n".join(lines).encode()}))
    assert not res.ok
    # episode 1 starts at frame 40: the chain breaks there
    assert any("state_hash of global_frame 40 does not match" in p for p in res.problems), res.problems


def test_episode_starts_hash_their_observations_by_bytes():
    from pyodide_runtime.framelog import EpisodeStart

    def chain(obs) -> str:
        log = FrameLog("bytes", 3)
        log.add_episode_start(EpisodeStart(0, 7, 0, {"a": obs}, {"a": {}}))
        log.add(_record(0, np.zeros(2, np.uint8)))
        log.promote(1, 0.0)
        return log.confirmed[0].state_hash

    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert chain(img) == chain(np.asfortranarray(img))
    assert chain(img) != chain(img.astype(np.int16)) != chain(img.reshape(4, 3))
