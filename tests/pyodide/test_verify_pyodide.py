"""`verify --engine pyodide`: the re-run happens inside the participants' Pyodide build under Node, and decides
float differences that the CPython engine can only flag."""

from __future__ import annotations

import io
import json
import math
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from pyodide_support import pyodide_assets  # noqa: F401 - fixture

from pyodide_runtime.host.cli import main
from pyodide_runtime.host.verify import verify

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_verify import COIN_CHASE_FILE, retamper  # noqa: E402

pytestmark = pytest.mark.pyodide


def test_a_bundle_of_a_file_env_verifies_in_pyodide_and_a_float_change_is_decided_there(
        pyodide_assets, tmp_path, capsys):  # noqa: F811
    env_file = tmp_path / "coin_env.py"
    shutil.copy(COIN_CHASE_FILE, env_file)
    out = tmp_path / "sim"
    assert main(["simulate", "--env", f"{env_file}:make_env", "--env-config", '{"max_steps": 150}', "--episodes",
                 "2", "--latency-ms", "80", "--loss", "0.05", "--away", "1:1500-3000:frozen", "--out", str(out)]) == 0
    path = sorted(out.glob("*.zip"))[0]
    capsys.readouterr()

    # The recorded env is a file path: its text is written into Pyodide's working directory, as the page does.
    assert main(["verify", str(path), "--engine", "pyodide", "--assets", str(pyodide_assets)]) == 0
    text = capsys.readouterr().out
    assert "engine pyodide (Pyodide 0.27.7" in text and "VERIFIED" in text and "300 frames, 2 episode(s)" in text

    def change(r, h):
        if r[h["reward"]] not in ("0.0", "") and not getattr(change, "frame", None):
            change.frame = int(r[h["global_frame"]])
            r[h["reward"]] = repr(math.nextafter(float(r[h["reward"]]), math.inf))
            return True
        return False

    tampered = tmp_path / "float.zip"
    tampered.write_bytes(retamper(path.read_bytes(), change))
    native = verify(tampered)
    assert native.float_only and "verify with --engine pyodide" in native.verdict()
    exact = verify(tampered, engine="pyodide", assets=pyodide_assets)
    assert exact.engine == "pyodide" and exact.runtime["pyodide"] == "0.27.7"
    assert not exact.ok and exact.exit_code == 1 and exact.divergence.global_frame == change.frame
    assert exact.divergence.column == "reward" and exact.verdict() == "DIVERGED"
    assert main(["verify", str(tampered), "--engine", "pyodide", "--assets", str(pyodide_assets),
                 "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["engine"] == "pyodide" and doc["divergence"]["column"] == "reward" and doc["float_only"] is True
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        assert json.loads(zf.read("metadata.json"))["canonical"]["env"]["factory"] == f"{env_file}:make_env"
