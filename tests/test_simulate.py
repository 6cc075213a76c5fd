"""The ``simulate`` command: runs peers and writes each one's export bundle plus a JSON summary."""

from __future__ import annotations

import json

from pyodide_runtime.host.cli import main
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.data import load
from pyodide_runtime.host.validate import validate


def _bundles(out):
    return sorted(out.glob("*.zip"))


def test_simulate_writes_identical_valid_bundles(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "simulate", "--episodes", "2", "--seed", "3", "--latency-ms", "90", "--jitter-ms", "20", "--loss", "0.1",
        "--env-config", '{"players": 2, "max_steps": 60}', "--away", "1:1500-3000:frozen", "--out", str(out),
    ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    a, b = _bundles(out)
    assert compare(a, b).identical
    assert validate(a).ok and validate(b).ok
    frames = load(a, backend="python").frames
    assert len(frames) == 2 * 120  # one row per agent per frame, two 60-frame episodes
    assert sorted({row["episode"] for row in frames}) == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identical"] and summary["complete"]
    assert summary["network"]["lost"] > 0
    peers = summary["peers"]
    assert sum(p["rollbacks"] for p in peers) > 0 and peers[1]["fast_forward_frames"] > 0
    assert all(p["confirmed_frames"] == 120 for p in peers)
    assert {p["bundle"] for p in peers} == {a.name, b.name}
    assert "identical canonical data" in printed and "peer 1: complete" in printed


def test_simulate_partial_session_reports_and_keeps_the_flagged_tail(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "simulate", "--latency-ms", "40", "--env-config", '{"players": 2, "max_steps": 900}',
        "--away", "1:1000-200000:frozen", "--max-seconds", "200", "--out", str(out),
    ])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["complete"] and summary["peers"][0]["outcome"] == "partial"
    assert summary["peers"][0]["unconfirmed_tail"] > 0
    present = next(p for p in summary["peers"] if p["seat"] == 0)
    bundle = load(out / present["bundle"], backend="python")
    assert bundle.tail, "the unconfirmed tail must be exported, flagged, beside the confirmed frames"
    assert validate(out / present["bundle"]).ok
    assert "partial" in capsys.readouterr().out


def test_simulate_user_errors_exit_2(tmp_path, capsys):
    assert main(["simulate", "--away", "nonsense", "--out", str(tmp_path)]) == 2
    assert "--away" in capsys.readouterr().err
    assert main(["simulate", "--players", "0", "--out", str(tmp_path)]) == 2
    assert "players" in capsys.readouterr().err
    assert main(["simulate", "--env", "no_such_module_xyz:make", "--out", str(tmp_path)]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
    assert main(["simulate", "--away", "5:0-10", "--out", str(tmp_path)]) == 2
