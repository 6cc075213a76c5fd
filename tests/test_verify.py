"""`pyodide-runtime verify`: re-running a bundle's session reproduces every canonical cell and hash, and a bundle
that still validates after one input (or one float, or the env) was changed is caught at its exact frame and column."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

from pyodide_runtime.host.cli import main
from pyodide_runtime.export import schema
from pyodide_runtime.export.bundle import pack
from pyodide_runtime.export.cells import parse_cell, row
from pyodide_runtime.export.tables import blob_map, read_table
from pyodide_runtime.export.writer import json_file
from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord
from pyodide_runtime.host.validate import _record, validate
from pyodide_runtime.host.verify import VerifyError, verify, verify_files

COIN_CHASE_FILE = Path(__file__).resolve().parents[1] / "pyodide_runtime" / "examples" / "coin_chase.py"
PONG = "pyodide_runtime.examples.pong:make_env"
KITCHEN = "pyodide_runtime.examples.kitchen:make_env"


def simulate(out: Path, *extra: str) -> list[Path]:
    code = main(["simulate", "--out", str(out), *extra])
    assert code in (0, 1)
    return sorted(out.glob("*.zip"))


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def frame_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(unzip(data)["frames.csv"].decode())))


def retamper(data: bytes, change: Callable[[list[str], dict[str, int]], bool]) -> bytes:
    """Apply ``change`` to frames.csv rows, then recompute the hash chain, the final hash and the manifest with the
    project's own chain and packer, so that the result still validates: only a re-run can tell."""
    files = unzip(data)
    files.pop(schema.MANIFEST.path)
    meta = json.loads(files["metadata.json"])
    canon = meta["canonical"]
    table = read_table(schema.FRAMES, files["frames.csv"])
    h = {name: i for i, name in enumerate(table.header)}
    assert sum(1 for r in table.rows if change(r, h)) >= 1
    blobs = blob_map(files)
    log = FrameLog(canon["config"]["frame_hash"], canon["config"]["hash_interval"])
    resets = read_table(schema.RESETS, files["resets.csv"])
    rh = {name: i for i, name in enumerate(resets.header)}
    for ep in sorted({r[rh["episode"]] for r in resets.rows}, key=int):
        rows = [r for r in resets.rows if r[rh["episode"]] == ep]
        log.add_episode_start(EpisodeStart(
            int(ep), int(rows[0][rh["seed"]]), int(rows[0][rh["start_frame"]]),
            {r[rh["agent"]]: parse_cell("json", r[rh["observation"]], blobs) for r in rows},
            {r[rh["agent"]]: parse_cell("json", r[rh["info"]], blobs) for r in rows}))
    groups: dict[str, list[list[str]]] = {}
    for r in table.rows:
        groups.setdefault(r[h["global_frame"]], []).append(r)
    for g in sorted(groups, key=int):
        log.add(_record(FrameRecord, groups[g], h, canon["seats"], blobs))
    log.promote(len(groups), 0.0)
    for rec in log.confirmed:
        for r in groups[str(rec.global_frame)]:
            r[h["state_hash"]] = rec.state_hash
    files["frames.csv"] = (schema.FRAMES.header + "\n" + "".join(row(r) for r in table.rows)).encode()
    canon["final_state_hash"] = log.confirmed[-1].state_hash
    files["metadata.json"] = json_file(meta)
    tampered = pack(files)
    result = validate(tampered)
    assert result.ok, result.problems
    return tampered


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two participants, two episodes, 80 ms latency with jitter, 5% loss, a frozen and a hidden tab."""
    out = tmp_path_factory.mktemp("sim")
    paths = simulate(out, "--episodes", "2", "--seed", "3", "--latency-ms", "80", "--jitter-ms", "20", "--loss",
                     "0.05", "--away", "1:2000-4500:frozen", "--away", "0:6000-8000:hidden")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identical"] and summary["network"]["lost"] > 0
    assert sum(p["rollbacks"] for p in summary["peers"]) > 0
    rows = frame_rows(paths[0].read_bytes())
    assert {r["seat"] for r in rows if r["away"] == "true"} == {"0", "1"}, "both seats were away"
    assert len({r["episode"] for r in rows}) == 2
    return paths


# -- verified ------------------------------------------------------------------------------------------------------
def test_simulated_bundles_with_latency_loss_and_away_spans_verify(sim, capsys):
    for path in sim:
        result = verify(path)
        assert result.ok and result.exit_code == 0, result.divergence
        assert result.engine == "cpython" and result.frames == 600 and result.episodes == 2 and result.resets == 4
        assert result.differing_cells == 0 and not result.notes
    assert main(["verify", str(sim[1])]) == 0
    out = capsys.readouterr().out
    assert "engine cpython" in out and "VERIFIED" in out and "600 frames, 2 episode(s)" in out


@pytest.mark.parametrize(("spec", "config"), [(PONG, {"max_steps": 120}), (KITCHEN, {"max_steps": 120})])
def test_example_bundles_verify(tmp_path, spec, config):
    paths = simulate(tmp_path, "--env", spec, "--env-config", json.dumps(config), "--episodes", "2",
                     "--latency-ms", "60", "--loss", "0.05")
    result = verify(paths[0])
    assert result.ok, result.divergence
    assert result.frames == 240 and result.env["factory"] == spec


def test_human_ai_bundle_with_a_bot_verifies():
    from pyodide_runtime.bridge import Bridge, recover_bundle
    from pyodide_runtime.host.server.study import load_study
    from pyodide_runtime.host.study_config import example_config

    study = load_study(None, example_config("human_ai"), "human_ai").describe()
    study["config"]["env_config"]["max_steps"] = 60
    study["config"]["session"]["episodes"] = 2
    import numpy

    packages = [{"name": "numpy", "version": "0.0.1", "sha256": "ab" * 32}]
    bridge = Bridge(study, seat=0, room="r", page={"packages": packages, "pyodide_version": "0.27.7"})
    stored: list[bytes] = []  # what the page keeps in storage until the tab crashes at tick 90
    for i in range(400):
        if i == 90:
            stored.append(bridge.checkpoint())
        out = bridge.tick(i * 1000 / 30, (i // 7) % 6)
        if out["checkpoint"] and i < 90:
            stored.append(out["checkpoint"])
        if out["ended"]:
            break
    data = bridge.bundle()[0]
    meta = json.loads(unzip(data)["metadata.json"])["canonical"]
    assert meta["env"]["bots"] == {"cook_1": "Partner"} and meta["status"] == "complete"
    assert meta["packages"] == packages
    assert len({r["action"] for r in frame_rows(data) if r["agent"] == "cook_1"}) >= 3, "the bot plays"
    result = verify(data)
    assert result.ok and result.frames == 120, result.divergence
    assert f"package numpy: recorded 0.0.1, {numpy.__version__} here" in result.notes
    assert any("recorded in Pyodide 0.27.7" in n for n in result.notes)
    # A copy recovered from the checkpoint holds the frames confirmed by then, and verifies too.
    recovered = recover_bundle(stored)[0]
    again = verify(recovered)
    assert again.ok and 0 < again.frames < 120 and again.bundle_status == "partial", again.divergence
    assert any("recovered from checkpoints" in n for n in again.notes)
    # Its bot is part of what is verified: a different partner policy diverges.
    other = verify(data, bots={"cook_1": "random"})
    assert not other.ok and other.divergence.agent == "cook_1" and other.divergence.column == "action"


def test_partial_bundle_verifies_up_to_its_last_confirmed_frame(tmp_path):
    (path, *_) = simulate(tmp_path, "--episodes", "2", "--max-seconds", "13", "--latency-ms", "60", "--away",
                          "0:3000-5000:hidden")
    meta = json.loads(unzip(path.read_bytes())["metadata.json"])["canonical"]
    assert meta["status"] == "partial" and 300 < meta["confirmed_frames"] < 600
    result = verify(path)
    assert result.ok, result.divergence
    assert result.frames == meta["confirmed_frames"] and result.bundle_status == "partial"
    assert any("partial bundle" in n for n in result.notes)


def test_an_extracted_directory_verifies(sim, tmp_path):
    with zipfile.ZipFile(sim[0]) as zf:
        zf.extractall(tmp_path / "x")
    assert verify(tmp_path / "x").ok


# -- diverged ------------------------------------------------------------------------------------------------------
def test_a_changed_input_that_still_validates_is_caught_at_its_frame_and_column(sim, capsys, tmp_path):
    data = sim[0].read_bytes()
    target = 250
    original: dict[str, str] = {}

    def change(r: list[str], h: dict[str, int]) -> bool:
        if r[h["global_frame"]] == str(target) and r[h["agent"]] == "player_0":
            original["input"] = r[h["input"]]
            r[h["input"]] = str((int(r[h["input"]]) + 1) % 5)
            return True
        return False

    tampered = retamper(data, change)
    path = tmp_path / "tampered.zip"
    path.write_bytes(tampered)
    result = verify(path)
    d = result.divergence
    assert not result.ok and result.exit_code == 1
    assert (d.table, d.global_frame, d.agent, d.column) == ("frames.csv", target, "player_0", "action")
    assert d.recorded == original["input"] and d.replayed == str((int(original["input"]) + 1) % 5)
    assert not d.float_only
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"DIVERGED       first at frames.csv global_frame {target}" in out and "action" in out
    assert main(["verify", str(path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1 and doc["verified"] is False and doc["engine"] == "cpython"
    assert doc["divergence"]["global_frame"] == target and doc["divergence"]["column"] == "action"


def test_an_input_and_its_action_changed_together_show_in_the_observation(sim):
    # Frame 0: player_0 starts in the top-left corner, so "right" always moves it.
    def change(r: list[str], h: dict[str, int]) -> bool:
        if r[h["global_frame"]] == "0" and r[h["agent"]] == "player_0":
            assert r[h["input"]] == "0" and json.loads(r[h["observation"]])["position"] == [0, 0]
            r[h["input"]] = r[h["action"]] = "2"
            return True
        return False

    result = verify(retamper(sim[0].read_bytes(), change))
    d = result.divergence
    assert (d.global_frame, d.agent, d.column, d.path) == (0, "player_0", "observation", "position[0]")
    assert (d.recorded, d.replayed) == ("0", "1")


def test_a_float_off_in_the_last_bit_is_reported_as_such(sim):
    def change(r: list[str], h: dict[str, int]) -> bool:
        if r[h["reward"]] not in ("0.0", "") and not getattr(change, "done", False):
            change.done = True  # type: ignore[attr-defined]
            change.frame = int(r[h["global_frame"]])  # type: ignore[attr-defined]
            value = float(r[h["reward"]])
            r[h["reward"]] = repr(math.nextafter(value, math.inf))
            return True
        return False

    result = verify(retamper(sim[0].read_bytes(), change))
    d = result.divergence
    assert not result.ok and d.column == "reward" and d.global_frame == change.frame  # type: ignore[attr-defined]
    assert d.float_only and result.float_only
    assert result.verdict() == "float difference in the last bits; verify with --engine pyodide to decide"


def test_a_subtly_different_env_is_refused_then_caught_when_forced(sim, tmp_path, capsys):
    same = tmp_path / "same_coin_chase.py"
    shutil.copy(COIN_CHASE_FILE, same)
    assert verify(sim[0], env=f"{same}:make_env").ok, "the same file elsewhere is the same env"
    text = COIN_CHASE_FILE.read_text()
    assert text.count('"hazard_move_prob": 0.05') == 1
    changed = tmp_path / "changed_coin_chase.py"
    changed.write_text(text.replace('"hazard_move_prob": 0.05', '"hazard_move_prob": 0.06'))
    spec = f"{changed}:make_env"
    with pytest.raises(VerifyError, match="refused: a different env version: source_hash"):
        verify(sim[0], env=spec)
    assert main(["verify", str(sim[0]), "--env", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused") and "--force" in err and "Traceback" not in err
    result = verify(sim[0], env=spec, force=True)
    d = result.divergence
    assert not result.ok and result.forced and any(n.startswith("FORCED") for n in result.notes)
    assert d.table == "frames.csv" and d.column == "observation" and d.path.startswith("hazards")
    assert isinstance(d.global_frame, int) and d.global_frame < 600
    assert main(["verify", str(sim[0]), "--env", spec, "--force"]) == 1
    out = capsys.readouterr().out
    assert "FORCED" in out and f"global_frame {d.global_frame}" in out and "observation at hazards" in out


# -- unusable input ------------------------------------------------------------------------------------------------
def test_truncated_corrupt_or_incomplete_bundles_exit_2_with_one_line(sim, tmp_path, capsys):
    data = sim[0].read_bytes()
    cases = {
        "truncated.zip": data[: len(data) // 2],
        "not_a_zip.zip": b"hello, not a zip",
    }
    files = unzip(data)
    cases["no_metadata.zip"] = pack({k: v for k, v in files.items() if k not in ("metadata.json", "manifest.json")})
    meta = json.loads(files["metadata.json"])
    meta["canonical"]["env"]["factory"] = "no_such_module_here:make_env"
    cases["unloadable_env.zip"] = pack({**{k: v for k, v in files.items() if k != "manifest.json"},
                                        "metadata.json": json_file(meta)})
    expected = {"truncated.zip": "not a readable bundle zip", "not_a_zip.zip": "not a readable bundle zip",
                "no_metadata.zip": "metadata.json is missing", "unloadable_env.zip": "cannot load env"}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert main(["verify", str(path)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and expected[name] in err and "\n" not in err, err
        assert main(["verify", str(path), "--format", "json"]) == 2
        doc = json.loads(capsys.readouterr().out)
        assert doc["exit_code"] == 2 and doc["status"] == "unusable" and expected[name] in doc["error"]
    assert main(["verify", str(tmp_path / "missing.zip")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_truncated_frames_table_is_unusable():
    files: dict[str, Any] = {"metadata.json": b'{"canonical": {"env": {"factory": "x:y"}, "config": {}, '
                             b'"seats": [], "agents": [], "session": "s"}}'}
    with pytest.raises(VerifyError, match="frames.csv is missing"):
        verify_files(files)
