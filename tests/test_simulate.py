"""The ``simulate`` command: runs peers, writes their records as CSV plus a JSON summary."""

from __future__ import annotations

import csv
import json

from pyodide_runtime.cli import main
from pyodide_runtime.framelog import CANONICAL_FIELDS


def test_simulate_writes_identical_peer_files(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "simulate", "--episodes", "2", "--seed", "3", "--latency-ms", "90", "--jitter-ms", "20", "--loss", "0.1",
        "--env-config", '{"players": 2, "max_steps": 60}', "--away", "1:1500-3000:frozen", "--out", str(out),
    ])
    printed = capsys.readouterr().out
    assert code == 0, printed
    a, b = (out / "peer0.csv").read_bytes(), (out / "peer1.csv").read_bytes()
    assert a == b
    rows = list(csv.reader((out / "peer0.csv").open(encoding="utf-8")))
    assert tuple(rows[0]) == CANONICAL_FIELDS and len(rows) == 1 + 120
    assert [json.loads(r[1]) for r in rows[1:]].count(1) == 60  # episode column
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identical"] and summary["complete"]
    assert summary["network"]["lost"] > 0
    peers = summary["peers"]
    assert sum(p["rollbacks"] for p in peers) > 0 and peers[1]["fast_forward_frames"] > 0
    assert all(p["confirmed_frames"] == 120 for p in peers)
    assert "identical records" in printed and "peer 1: complete" in printed


def test_simulate_partial_session_reports_and_keeps_the_tail(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([
        "simulate", "--latency-ms", "40", "--env-config", '{"players": 2, "max_steps": 900}',
        "--away", "1:1000-200000:frozen", "--max-seconds", "200", "--out", str(out),
    ])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["complete"] and summary["peers"][0]["outcome"] == "partial"
    assert summary["peers"][0]["unconfirmed_tail"] > 0
    assert (out / "peer0_unconfirmed.csv").exists()
    assert "partial" in capsys.readouterr().out


def test_simulate_user_errors_exit_2(tmp_path, capsys):
    assert main(["simulate", "--away", "nonsense", "--out", str(tmp_path)]) == 2
    assert "--away" in capsys.readouterr().err
    assert main(["simulate", "--players", "0", "--out", str(tmp_path)]) == 2
    assert "players" in capsys.readouterr().err
    assert main(["simulate", "--env", "no_such_module_xyz:make", "--out", str(tmp_path)]) == 2
    assert "no_such_module_xyz" in capsys.readouterr().err
    assert main(["simulate", "--away", "5:0-10", "--out", str(tmp_path)]) == 2
