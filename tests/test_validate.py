"""validate: a good bundle passes; hand-corrupted ones are caught; exit codes 0/1/2."""

from __future__ import annotations

import argparse
import json

import pytest

from pyodide_runtime.host.commands import validate as validate_command
from pyodide_runtime.export import BundleError
from pyodide_runtime.export.bundle import pack
from pyodide_runtime.host.validate import validate
from test_export_support import coin_bundle, rezip, unzip


@pytest.fixture(scope="module")
def good() -> bytes:
    return coin_bundle(0, frames=60, mispredict=[4, 9])[0]


def _edit(files: dict[str, bytes], name: str, old: bytes, new: bytes) -> dict[str, bytes]:
    assert old in files[name], (name, old)
    return {**files, name: files[name].replace(old, new, 1)}


def _repack(files: dict[str, bytes]) -> bytes:
    """Re-zip with a fresh manifest, as a forger who knows the format would."""
    return pack({k: v for k, v in files.items() if k != "manifest.json"})


def test_good_bundle_is_valid(good):
    res = validate(good)
    assert res.ok, res.problems
    assert {"manifest", "schema", "codebook", "provenance", "frames", "episodes", "state_hash_chain"} <= set(res.checks)
    assert res.summary["status"] == "complete" and res.summary["confirmed_frames"] == 50


def _change_reward(files: dict[str, bytes], g: int) -> dict[str, bytes]:
    lines = files["frames.csv"].decode().split("\n")
    target = lines[g * 2 + 1]  # agent 0 of global_frame g
    changed = target.replace(",0.0,", ",1.0,", 1) if ",0.0," in target else target.replace(",1.0,", ",0.0,", 1)
    assert changed != target
    return {**files, "frames.csv": files["frames.csv"].replace(target.encode(), changed.encode(), 1)}


def test_changed_cell_in_any_frame_is_caught_by_a_full_chain():
    from pyodide_runtime.config import SessionConfig

    from pyodide_runtime.export import write_bundle
    from test_export_support import coin_chase, context, drive_log, random_inputs

    game = coin_chase()
    full = {"frame_hash": "full"} if "frame_hash" in SessionConfig.__dataclass_fields__ else {}
    config = SessionConfig(episodes=2, **full)
    log = drive_log(game, config, random_inputs(60))
    files = unzip(write_bundle(log, context(game, config)))
    res = validate(_repack(_change_reward(files, 12)))
    assert any("state_hash of global_frame 12" in p for p in res.problems), res.problems


def test_changed_cell_is_caught_by_the_manifest_and_by_the_chain(good):
    files = unzip(good)
    lines = files["frames.csv"].decode().split("\n")
    target = lines[29 * 2 + 1]  # global_frame 29: a sampled frame, whose full record is chained
    changed = target.replace(",0.0,", ",1.0,", 1) if ",0.0," in target else target.replace(",1.0,", ",0.0,", 1)
    assert changed != target
    edited = {**files, "frames.csv": files["frames.csv"].replace(target.encode(), changed.encode(), 1)}
    res = validate(rezip(edited))
    assert not res.ok and any("frames.csv: sha256" in p for p in res.problems)
    forged = validate(_repack(edited))  # manifest rewritten: the recomputed chain still disagrees
    assert not forged.ok
    assert any("state_hash of global_frame 29" in p for p in forged.problems), forged.problems


def test_removed_row_is_caught(good):
    files = unzip(good)
    lines = files["frames.csv"].decode().split("\n")
    del lines[11]
    edited = {**files, "frames.csv": "\n".join(lines).encode()}
    res = validate(_repack(edited))
    assert not res.ok
    assert any("global_frame 5" in p and "agent rows" in p for p in res.problems), res.problems


def test_removed_frame_is_caught(good):
    files = unzip(good)
    lines = files["frames.csv"].decode().split("\n")
    del lines[11:13]
    res = validate(_repack({**files, "frames.csv": "\n".join(lines).encode()}))
    assert not res.ok and any("frame 5 is missing" in p for p in res.problems), res.problems


def test_tampered_hash_is_caught(good):
    files = unzip(good)
    text = files["frames.csv"].decode()
    h = text.split("\n")[21].rsplit(",", 1)[1]
    res = validate(_repack({**files, "frames.csv": text.replace(h, "0" * 64).encode()}))
    assert not res.ok and any("state_hash of global_frame 10" in p for p in res.problems), res.problems
    man = json.loads(files["manifest.json"])
    man["files"]["episodes.csv"]["sha256"] = "f" * 64
    res = validate(rezip({**files, "manifest.json": json.dumps(man).encode()}))
    assert any("episodes.csv: sha256" in p for p in res.problems)


def test_missing_file_is_caught(good):
    files = unzip(good)
    del files["resets.csv"]
    res = validate(rezip(files))
    assert not res.ok
    assert "resets.csv: listed in the manifest but missing" in res.problems
    assert "resets.csv: required file is missing" in res.problems


def test_inconsistent_status_and_metadata_are_caught(good):
    files = unzip(good)
    meta = json.loads(files["metadata.json"])
    meta["canonical"]["status"] = "partial"
    meta["canonical"]["config"]["seed"] = 99
    res = validate(_repack({**files, "metadata.json": json.dumps(meta).encode()}))
    assert any("status 'partial' but 2 of 2 episodes ended" in p for p in res.problems), res.problems
    assert any("config_digest does not match" in p for p in res.problems)
    assert any("unconfirmed_tail.csv is missing" in p for p in res.problems)


def test_episode_summary_must_match_frames(good):
    files = unzip(good)
    edited = _edit(files, "episodes.csv", b",0,25,true,", b",0,24,true,")
    res = validate(_repack(edited))
    assert any("episode 0 says 24 frames" in p for p in res.problems), res.problems


def test_unreadable_bundle_raises(tmp_path):
    with pytest.raises(BundleError):
        validate(b"not a zip at all")
    with pytest.raises(BundleError):
        validate(tmp_path / "missing.zip")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    validate_command.configure(parser)
    return validate_command.run(parser.parse_args(argv))


def test_command_exit_codes(good, tmp_path, capsys):
    from pyodide_runtime.host.cli import CommandError

    ok = tmp_path / "ok.zip"
    ok.write_bytes(good)
    assert _run([str(ok)]) == 0
    assert "valid" in capsys.readouterr().out
    files = unzip(good)
    del files["codebook.md"]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(rezip(files))
    assert _run([str(bad), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and "codebook.md: required file is missing" in out["problems"]
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(CommandError):
        _run([str(broken)])


def test_cli_main_exit_codes(good, tmp_path, monkeypatch, capsys):
    from pyodide_runtime.host import cli

    monkeypatch.setitem(cli.COMMANDS, "validate", ("pyodide_runtime.host.commands.validate", "validate a bundle"))
    ok = tmp_path / "ok.zip"
    ok.write_bytes(good)
    assert cli.main(["validate", str(ok)]) == 0
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good[:100])
    assert cli.main(["validate", str(broken)]) == 2
    assert "error:" in capsys.readouterr().err
