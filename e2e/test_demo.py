"""`pyodide-runtime demo` as a person runs it: the real command as a subprocess, real browsers, real downloads.

The end-to-end test asserts the faults happened (rollbacks, an away period with fast-forwarded frames) and then
parity, checked again with the real `compare` command on the bundles the demo left in --out. The --headed test
stands in for the person with a Chromium page of its own opening the printed link.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from players import Player, run_cli, wait_for

DEMO = [sys.executable, "-m", "pyodide_runtime", "demo"]


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.browser
def test_demo_plays_a_session_with_latency_and_away_and_the_exports_are_identical(assets_dir, tmp_path):
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    done = subprocess.run(
        [*DEMO, "--out", str(out), "--episodes", "1", "--episode-seconds", "8", "--seed", "3",
         "--assets", str(assets_dir), "--json", str(summary), "--timeout", "240"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"demo exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    for line in ("server up at http://127.0.0.1:", "player A booted in", "player B booted in",
                 "player A away: game tab hidden", "player A back at frame", "session ended for A: complete",
                 "exports        IDENTICAL"):
        assert line in done.stdout, f"{line!r} missing from:\n{done.stdout}"

    result = _summary(summary)
    assert result["ok"] and result["identical"] and result["valid"], result
    a, b = result["sides"]
    assert (a["name"], b["name"]) == ("A", "B")
    assert a["rollbacks"] + b["rollbacks"] > 0, f"80 ms of injected latency caused no rollback: {result}"
    assert a["away_periods"] >= 1 and a["fast_forward_frames"] > 0, f"A's away period left no trace: {a}"
    assert a["confirmed_frames"] == b["confirmed_frames"] == 8 * 30
    assert a["transport"] and b["transport"]
    # the built-in study walks the whole flow around the game, recorded in each participant's own tables
    flow = ["consent", "instructions", "waiting", "game", "survey", "end"]
    assert a["scenes"] == b["scenes"] == flow, (a["scenes"], b["scenes"])
    assert "scenes         A consent > instructions > waiting > game > survey > end" in done.stdout
    bundles = [Path(a["bundle"]), Path(b["bundle"])]
    assert all(p.parent == out and p.is_file() for p in bundles), bundles
    assert "_A_seat" in bundles[0].name and "_B_seat" in bundles[1].name
    compared = run_cli("compare", str(bundles[0]), str(bundles[1]))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert compared.stdout.startswith("identical:")
    # Re-simulated from their metadata and confirmed inputs, in both engines, the browsers' rows are reproduced.
    for engine in ("cpython", "pyodide"):
        for bundle in bundles:
            verified = run_cli("verify", str(bundle), "--engine", engine, timeout=300)
            assert verified.returncode == 0, f"verify --engine {engine} {bundle.name}:\n{verified.stdout}{verified.stderr}"
            assert f"engine {engine}" in verified.stdout


@pytest.mark.browser
def test_headed_demo_prints_the_link_and_automates_only_player_b(assets_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    out, summary = tmp_path / "out", tmp_path / "summary.json"
    proc = subprocess.Popen(
        [*DEMO, "--headed", "--out", str(out), "--episodes", "1", "--episode-seconds", "5",
         "--assets", str(assets_dir), "--json", str(summary), "--timeout", "240"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("open this link in your browser to play seat A: "):
                link = line.split(": ", 1)[1].strip()
                break
        else:
            pytest.fail(f"no link printed; demo exited {proc.wait()}:\n{''.join(printed)}{proc.stderr.read()}")
        assert "latency_ms=80" in link and "autopilot" not in link
        with sync_playwright() as pw:
            person = Player(pw, "person", tmp_path / "person")
            try:
                person.open(link + "&autopilot=random")  # the stand-in for a person pressing keys
                rest, errors = proc.communicate(timeout=240)
                stand_in = wait_for(person.bundles, 30, "the stand-in's download")
            finally:
                person.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = "".join(printed) + rest
    assert proc.returncode == 0, f"demo exited {proc.returncode}:\n{stdout}\n{errors}"
    assert "player B booted in" in stdout and "player A booted" not in stdout, stdout
    result = _summary(summary)
    assert result["ok"] and result["identical"], result
    a, b = result["sides"]
    assert a["boot_seconds"] is None and b["boot_seconds"] is not None  # only B was automated
    assert a["confirmed_frames"] == b["confirmed_frames"] == 5 * 30
    assert Path(a["bundle"]).name.startswith("person-") and Path(a["bundle"]).is_file()
    # The bundle the demo collected for seat A is the one the person's browser downloaded.
    assert len(stand_in) == 1 and stand_in[0].read_bytes() == Path(a["bundle"]).read_bytes()


@pytest.mark.browser
def test_example_study_plays_through_the_demo(assets_dir, tmp_path):
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    done = subprocess.run(
        [*DEMO, "--example", "pong", "--episodes", "1", "--episode-seconds", "6", "--no-away", "--out", str(out),
         "--assets", str(assets_dir), "--json", str(summary)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"demo exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "player A away" not in done.stdout
    result = _summary(summary)
    a, b = result["sides"]
    assert result["identical"] and a["confirmed_frames"] == b["confirmed_frames"] == 6 * 30
    assert a["away_periods"] == 0
    assert all(Path(s["bundle"]).name.startswith("pong_") for s in (a, b))


def test_bad_option_is_one_line_and_exit_2():
    for argv in (["--bogus"], ["--episodes", "many"], ["--loss", "1.5"], ["--example", "no-such-study"],
                 ["--config", "study.toml", "--example", "pong"]):
        done = run_cli("demo", *argv, timeout=60)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, done.stderr)
        assert argv[0] in lines[0], (argv, lines)
        assert done.stdout == ""


@pytest.mark.parametrize("missing", ["playwright", "chromium"])
def test_missing_playwright_or_chromium_is_one_line_with_the_fix_and_exit_2(missing, tmp_path):
    import os

    env = dict(os.environ)
    if missing == "playwright":  # an installation where `import playwright` fails
        (tmp_path / "playwright").mkdir()
        (tmp_path / "playwright" / "__init__.py").write_text("raise ImportError('not installed')\n")
        env["PYTHONPATH"] = str(tmp_path)
        fix = "pip install 'pyodide-runtime[demo]'"
    else:
        env["CHROMIUM"] = str(tmp_path / "no-chromium")
        fix = "apt-get install chromium"
    done = subprocess.run([*DEMO, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and fix in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_assets_say_how_to_fetch_them_and_exit_2(tmp_path):
    missing = tmp_path / "no-assets"
    done = run_cli("demo", "--assets", str(missing), "--out", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(missing) in lines[0] and "pyodide-runtime assets fetch" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()  # nothing was started


def _demo_processes() -> set[int]:
    """Processes started by a demo: its server (temporary work dir) and its players' Chromium profiles."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"pyodide-runtime-demo-" in cmdline or b"/chromium-A-" in cmdline or b"/chromium-B-" in cmdline:
            found.add(int(proc.name))
    return found


@pytest.mark.browser
def test_session_that_cannot_finish_in_time_saves_evidence_exits_1_and_stops_everything(assets_dir, tmp_path):
    before = _demo_processes()
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    done = subprocess.run([*DEMO, "--out", str(out), "--assets", str(assets_dir), "--timeout", "5",
                           "--json", str(summary)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    result = _summary(summary)
    assert not result["ok"] and "timed out after 5 s" in result["error"]
    evidence = Path(result["evidence"])
    assert evidence.parent == out and str(evidence) in done.stdout
    for name in ("A-console.log", "A-status.json", "A.png", "B-console.log", "B-status.json", "B.png", "server.log"):
        assert (evidence / name).is_file(), sorted(p.name for p in evidence.iterdir())
    assert json.loads((evidence / "B-status.json").read_text())["phase"] != "ended"
    assert not _demo_processes() - before


@pytest.mark.browser
def test_ctrl_c_stops_the_server_and_both_browsers(assets_dir, tmp_path):
    import signal

    before = _demo_processes()
    proc = subprocess.Popen([*DEMO, "--out", str(tmp_path / "out"), "--assets", str(assets_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("player") and "booted" in line:
                break
        assert _demo_processes() - before, "the demo's server and browsers should be running now"
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "interrupted" in errors, (proc.returncode, errors)
    assert not _demo_processes() - before
