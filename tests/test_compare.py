"""compare: identical peers, the exact differing cell, and errors for unreadable or mismatched inputs."""

from __future__ import annotations

import argparse
import json

import pytest

from pyodide_runtime.host.commands import compare as compare_command
from pyodide_runtime.host.compare import CompareError, compare
from pyodide_runtime.export import schema
from test_export_support import coin_bundle, rezip, unzip


@pytest.fixture(scope="module")
def peers() -> tuple[bytes, bytes]:
    a, _ = coin_bundle(0, frames=60)
    b, _ = coin_bundle(1, frames=60, mispredict=[1, 7, 33])
    return a, b


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _mutate_cell(data: bytes, g: int, agent: str, column: str, value: str) -> tuple[bytes, str]:
    files = unzip(data)
    lines = files["frames.csv"].decode().split("\n")
    header = lines[0].split(",")
    for i, line in enumerate(lines[1:], start=1):
        cells = line.split(",")
        if cells[3] == str(g) and cells[4] == agent:
            old = cells[header.index(column)]
            cells[header.index(column)] = value
            lines[i] = ",".join(cells)
            break
    files["frames.csv"] = "\n".join(lines).encode()
    return rezip(files), old


def test_identical_peers(peers, tmp_path):
    res = compare(_write(tmp_path, "a.zip", peers[0]), _write(tmp_path, "b.zip", peers[1]))
    assert res.identical and res.total == 0
    assert res.files_compared == ["frames.csv", "resets.csv", "episodes.csv", "blobs.csv", "metadata.json"]
    assert [f.path for f in schema.canonical_files()] == res.files_compared  # decided by the schema


def test_single_cell_mutation_is_pinpointed(peers, tmp_path):
    mutated, old = _mutate_cell(peers[1], 17, "player_1", "input", "4")
    res = compare(peers[0], mutated)
    assert not res.identical and res.total == 1
    d = res.differences[0]
    assert (d.file, d.column, d.a, d.b) == ("frames.csv", "input", old, "4")
    assert d.key == {"global_frame": "17", "agent": "player_1", "episode": "0", "frame": "17"}
    assert res.counts == {"frames.csv:input": 1}


def test_command_exit_codes_and_json(peers, tmp_path, capsys):
    a = _write(tmp_path, "a.zip", peers[0])
    b = _write(tmp_path, "b.zip", peers[1])
    c = _write(tmp_path, "c.zip", _mutate_cell(peers[1], 40, "player_0", "reward", "5.0")[0])
    assert _run([str(a), str(b)]) == 0
    assert "identical" in capsys.readouterr().out
    assert _run([str(a), str(c), "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["identical"] is False and out["differences_per_column"] == {"frames.csv:reward": 1}
    first = out["first_differences"][0]
    assert first["key"]["global_frame"] == "40" and first["key"]["agent"] == "player_0" and first["b"] == "5.0"
    assert capsys.readouterr().err == ""  # no progress output when stderr is not a terminal


def test_truncated_inputs_are_errors(peers, tmp_path):
    a = _write(tmp_path, "a.zip", peers[0])
    with pytest.raises(CompareError):
        compare(a, _write(tmp_path, "cut.zip", peers[1][: len(peers[1]) // 2]))
    frames = unzip(peers[0])["frames.csv"]
    full = _write(tmp_path, "frames.csv", frames)
    cut = tmp_path / "cut" / "frames.csv"
    cut.parent.mkdir()
    cut.write_bytes(frames[: len(frames) - 40])
    with pytest.raises(CompareError, match="truncated"):
        compare(full, cut)
    assert _run([str(full), str(cut)]) == 2


def test_schema_mismatches_are_errors(peers, tmp_path):
    files = unzip(peers[1])
    renamed = dict(files)
    renamed["frames.csv"] = files["frames.csv"].replace(b"observation,info", b"obs,info", 1)
    with pytest.raises(CompareError, match="columns"):
        compare(peers[0], rezip(renamed))
    frames = _write(tmp_path, "frames.csv", unzip(peers[0])["frames.csv"])
    resets_dir = tmp_path / "r"
    resets_dir.mkdir()
    resets = resets_dir / "resets.csv"
    resets.write_bytes(unzip(peers[0])["resets.csv"])
    with pytest.raises(CompareError, match="schema mismatch"):
        compare(frames, resets)
    odd = _write(tmp_path, "odd.csv", b"x,y\n1,2\n")
    with pytest.raises(CompareError, match="matches no table"):
        compare(frames, odd)
    with pytest.raises(CompareError, match="not a canonical table"):
        compare(_write(tmp_path, "d.csv", unzip(peers[0])["diagnostics/frames.csv"]), frames)


def test_cli_main_exit_status(peers, tmp_path, monkeypatch, capsys):
    from pyodide_runtime.host import cli

    monkeypatch.setitem(cli.COMMANDS, "compare", ("pyodide_runtime.host.commands.compare", "compare two exports"))
    a = _write(tmp_path, "a.zip", peers[0])
    b = _write(tmp_path, "b.zip", peers[1])
    assert cli.main(["compare", str(a), str(b)]) == 0
    assert cli.main(["compare", str(a), str(tmp_path / "nope.zip")]) == 2
    cut = _write(tmp_path, "cut.zip", peers[1][:500])
    assert cli.main(["compare", str(a), str(cut)]) == 2
    assert "error:" in capsys.readouterr().err


def test_csv_against_bundle_and_missing_row(peers, tmp_path):
    frames = unzip(peers[0])["frames.csv"]
    lines = frames.decode().split("\n")
    dropped = "\n".join(lines[:5] + lines[6:]).encode()
    a = _write(tmp_path, "frames.csv", frames)
    sub = tmp_path / "b"
    sub.mkdir()
    (sub / "frames.csv").write_bytes(dropped)
    assert compare(a, peers[1]).identical
    res = compare(a, sub / "frames.csv")
    assert not res.identical and res.total == 1
    assert res.differences[0].column == "<row>" and res.differences[0].key["global_frame"] == "2"


def test_metadata_difference_and_prefix_mode(tmp_path):
    full, _ = coin_bundle(0, frames=60)
    partial, _ = coin_bundle(1, frames=60, confirm=33)
    strict = compare(full, partial)
    assert not strict.identical
    assert strict.counts["frames.csv:<row>"] == 2 * (50 - 33)
    assert "metadata.json:status" in strict.counts
    loose = compare(full, partial, prefix=True)
    assert loose.identical, loose.report()
    assert any("33 frames both confirmed" in n for n in loose.notes)


def _run(argv: list[str]) -> int:
    from pyodide_runtime.host.cli import CommandError

    parser = argparse.ArgumentParser()
    compare_command.configure(parser)
    try:
        return compare_command.run(parser.parse_args(argv))
    except CommandError:
        return 2
