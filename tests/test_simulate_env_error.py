"""``pyodide-runtime simulate`` with an env that raises mid-session: one line, both bundles, exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pyodide_runtime.host.data import load
from pyodide_runtime.host.validate import validate

FIXTURE_FILE = Path(__file__).parent / "env_fixtures" / "raises_mid_session.py"
RAISE_LINE = next(i for i, line in enumerate(FIXTURE_FILE.read_text().splitlines(), 1)
                  if line.strip() == "raise error(message)")


def simulate(out: Path, env_config: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyodide_runtime", "simulate", "--env", f"{FIXTURE_FILE}:make_env",
         "--env-config", json.dumps(env_config), "--latency-ms", "40", "--out", str(out), *extra],
        capture_output=True, text=True, timeout=120,
    )


def test_a_raising_env_prints_one_line_writes_both_bundles_and_exits_1(tmp_path):
    out = tmp_path / "run"
    done = simulate(out, {"max_steps": 300, "fault_at": 88, "fault_seat": 0})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: peer 0: the env raised ZeroDivisionError in step at frame 88 ("), line
    assert f"raises_mid_session.py:{RAISE_LINE}): division by zero" in line, line

    summary = json.loads((out / "summary.json").read_text())
    peers = {p["seat"]: p for p in summary["peers"]}
    assert peers[0]["outcome"] == "error" and peers[1]["outcome"] == "partial"
    assert peers[0]["error"]["where"] == "step" and peers[0]["error"]["frame"] == 88
    assert peers[1]["end_reason"] == "seat 0 stopped: its env raised an error"
    for seat, outcome in ((0, "error"), (1, "partial")):
        path = out / peers[seat]["bundle"]
        assert validate(str(path)).ok
        bundle = load(path, backend="python")
        local = bundle.metadata["participant_local"]
        assert local["session_outcome"] == outcome
        assert bundle.metadata["canonical"]["confirmed_frames"] == peers[seat]["confirmed_frames"] > 60
    network = json.loads(load(out / peers[0]["bundle"]).files["diagnostics/network.json"])
    assert network["stats"]["error"]["traceback"].startswith("Traceback")
    assert "peer 0: error (the env raised ZeroDivisionError in step at frame 88)" in done.stdout


def test_an_env_that_raises_before_the_session_starts_is_a_one_line_error(tmp_path):
    broken = tmp_path / "broken_env.py"
    broken.write_text(
        "import traceback\n"
        "from pyodide_runtime.examples.coin_chase import CoinChaseEnv\n"
        "class Broken(CoinChaseEnv):\n"
        "    def reset(self, seed=None, options=None):\n"
        "        if any(f.name == 'check_snapshots' for f in traceback.extract_stack()):  # a session is being built\n"
        "            raise KeyError('level')\n"
        "        return super().reset(seed, options)\n"
        "def make_env(config=None):\n"
        "    return Broken(config)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pyodide_runtime", "simulate", "--env", f"{broken}:make_env",
         "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: cannot start a session with env ") and "KeyError: 'level'" in line, line
    assert line.endswith("broken_env.py:6)"), line
