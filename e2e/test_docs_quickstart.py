"""The quick start (docs/quickstart.md) works when followed literally.

The test reads the page's code blocks and runs them in a fresh directory laid out like a checkout after
`bash scripts/setup.sh` (which the test command itself has just run): `.venv` and the package sources are
linked in. Every `.venv/bin/...` command runs as written; a `serve` command runs until it prints its study URL
and serves `/study.json`, then is stopped. Only the installation lines (`git clone`, `setup.sh`, `pip install`
and `assets fetch` of the pip-install variant) are left to the setup that precedes the test run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest

from pyodide_runtime.host.headless import launch_server

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "docs" / "quickstart.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
#: Lines left to the setup that precedes the tests: installing, and the same commands for a pip install.
INSTALL = ("git clone ", "bash scripts/setup.sh", "pip install ", "pyodide-runtime assets fetch", "pyodide-runtime demo")


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(QUICKSTART.read_text(encoding="utf-8"))


def commands(body: str) -> list[str]:
    lines = [line.split("  #", 1)[0].strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_quick_start_runs_as_written(tmp_path, assets_dir):
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    (work / "pyodide_runtime").symlink_to(REPO / "pyodide_runtime")
    env = {**os.environ, "PYODIDE_RUNTIME_ASSETS": str(assets_dir)}
    ran: list[str] = []

    def run(line: str) -> None:
        argv = shlex.split(line)
        if argv[:2] == [".venv/bin/pyodide-runtime", "serve"]:
            serve(argv)
        else:
            done = subprocess.run(line, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        ran.append(argv[1] if argv[0].endswith("pyodide-runtime") else argv[0])

    def serve(argv: list[str]) -> None:
        log_path = tmp_path / f"serve-{len(ran)}.log"
        with log_path.open("w") as log:
            proc, url = launch_server([*argv, "--port", "0"], work, log, log_path, timeout=60)
            try:
                with urllib.request.urlopen(f"{url}/study.json", timeout=10) as response:
                    study = json.load(response)
                assert study["config"]["session"]["players"] >= 1 and study["env"]["spec"]
            finally:
                proc.terminate()
                proc.wait(15)
                if proc.stdout:
                    proc.stdout.close()

    for language, body in blocks():
        if language == "bash":
            for line in commands(body):
                if line.startswith((".venv/bin/", "cp ")):
                    run(line)
                else:
                    assert line.startswith(INSTALL), f"the quick start has a command this test does not run: {line}"
        elif language == "toml":
            (work / "study.toml").write_text(body)
        elif language == "python":
            bundle = next((work / "out" / "demo").glob("*_A_seat*.zip"))
            code = body.replace("path/to/export.zip", str(bundle))
            done = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert "reward" in done.stdout and "player_0" in done.stdout, done.stdout
            ran.append("python")
    # The page's promises, each exercised: the demo, an example study, check-env, serving a config, compare,
    # validate and loading the data.
    assert ran.count("serve") == 2, ran
    for command in ("demo", "check-env", "compare", "validate", "cp", "python"):
        assert command in ran, f"{command} never ran: {ran}"
