"""The replay page in real Chromium: it re-simulates a Coin Chase bundle in Pyodide, scrubs to frames, and shows
exactly the observations the bundle recorded there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pyodide_runtime.host.data import load
from pyodide_runtime.host.headless import run_cli, wait_for
from pyodide_runtime.host.replay import observation_digest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two episodes of Coin Chase over a lossy, laggy network with seat 1 frozen for a while."""
    out = tmp_path_factory.mktemp("replay-sim")
    proc = run_cli("simulate", "--players", "2", "--episodes", "2", "--seed", "3", "--latency-ms", "80",
                   "--jitter-ms", "20", "--loss", "0.05", "--away", "1:2000-4000:frozen", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(out.glob("*_seat0.zip"))[0]


@contextmanager
def replay_server(bundle: Path, assets_dir: Path, workdir: Path, *extra: str) -> Iterator[str]:
    """``pyodide-runtime replay BUNDLE`` on a free port; yields its URL."""
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pyodide_runtime", "replay", str(bundle), "--port", "0",
                                 "--assets", str(assets_dir), *extra], stdout=subprocess.PIPE, stderr=log,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("Replay URL: "):
            proc.kill()
            pytest.fail(f"the replay server did not start: {line!r}\n{log_path.read_text()}")
        try:
            yield line.split(": ", 1)[1].strip().rstrip("/")
        finally:
            proc.terminate()
            proc.wait(15)
            proc.stdout.close()


@pytest.fixture(scope="module")
def server(bundle: Path, assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with replay_server(bundle, assets_dir, tmp_path_factory.mktemp("replay-server")) as url:
        yield url


def recorded(bundle: Path, frame: int) -> dict[str, Any]:
    rows = [r for r in load(bundle, backend="python").frames if r["global_frame"] == frame]
    return {r["agent"]: r["observation"] for r in rows}


def settled(page: Any, frame: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = page.evaluate("window.pyodideReplay.status()")
        if status["stage"] == "error":
            raise AssertionError(status["error"])
        return status if status["frame"] == frame and not status["pending"] else None

    return wait_for(check, 60, f"the replay page to show frame {frame}", interval=0.1)


def test_replay_page_scrubs_to_the_recorded_state(browser, server, bundle):
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    response = page.goto(server + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    started = time.monotonic()
    status = settled(page, 0)
    print(f"replay page ready in {time.monotonic() - started:.1f} s")
    info = status["info"]
    assert info["frames"] == 600 and [e["start_frame"] for e in info["episodes"]] == [0, 300]
    kinds = {m["kind"] for m in info["markers"]}
    assert {"rollback", "away"} <= kinds, kinds
    assert status["observations"] == recorded(bundle, 0)

    # Scrub: episode 1 from the episode menu, then a frame typed into the frame box.
    page.select_option("#episode", "300")
    settled(page, 300)
    page.fill("#goto", "451")
    page.press("#goto", "Enter")
    status = settled(page, 451)
    want = recorded(bundle, 451)
    assert status["episode"] == 1 and status["episode_frame"] == 151
    assert status["observations"] == want
    assert status["observation_digest"] == observation_digest(want) == status["recorded_digest"]
    assert status["match"] is True
    assert page.text_content("#observation") == want[info["agents"][0]]

    # One frame back with the step button, and a jump back into the away span (restored from a snapshot).
    page.click("#back")
    status = settled(page, 450)
    assert status["observations"] == recorded(bundle, 450)
    away = next(m for m in info["markers"] if m["kind"] == "away")
    target = (away["start"] + away["end"]) // 2
    page.evaluate(f"window.pyodideReplay.seek({target})")
    status = settled(page, target)
    assert status["observations"] == recorded(bundle, target)
    assert status["away"][1] is True
    assert page.locator("#seats td.away").count() == 1

    # The episode's scrubber, then playback at 8x.
    page.locator("#scrubber").fill("20")
    status = settled(page, 20)
    assert status["observations"] == recorded(bundle, 20)
    page.select_option("#speed", "8")
    page.click("#play")
    wait_for(lambda: page.evaluate("window.pyodideReplay.status().frame") >= 80, 30, "playback to advance")
    page.click("#play")
    status = page.evaluate("window.pyodideReplay.status()")
    assert status["playing"] is False and status["rendered_frames"] > 5
    final = status["frame"]
    status = settled(page, page.evaluate("window.pyodideReplay.status().frame"))
    assert status["frame"] >= final and status["match"] is True
    page.close()
    errors = [line for line in console if line.startswith(("error", "pageerror"))]
    assert not errors, errors


RGB_ENV = """
import gymnasium as gym
import numpy as np

class Dot(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "name": "dot", "version": "1"}

    def __init__(self):
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(0, 15, (1,), np.int64)
        self.render_mode = "rgb_array"
        self.x = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x = int(self.np_random.integers(0, 16))
        return np.array([self.x]), {}

    def step(self, action):
        self.x = min(15, max(0, self.x + (0, -1, 1)[int(action)]))
        return np.array([self.x]), 0.0, False, False, {}

    def render(self):
        frame = np.zeros((4, 16, 3), dtype=np.uint8)
        frame[:, self.x] = (255, 255, 255)
        return frame

def make_env():
    return Dot()
"""


def test_replay_page_serves_a_file_env_and_draws_rgb_frames(browser, assets_dir, tmp_path):
    """An env given as a file is not in the bundle: the server serves it, the page writes it beside the runtime."""
    env_file = tmp_path / "dot_env.py"
    env_file.write_text(RGB_ENV)
    proc = run_cli("simulate", "--players", "1", "--episodes", "1", "--max-seconds", "3", "--env",
                   f"{env_file}:make_env", "--out", str(tmp_path / "sim"))
    bundle = sorted((tmp_path / "sim").glob("*_seat0.zip"))[0]
    assert bundle.exists(), proc.stdout + proc.stderr
    with replay_server(bundle, assets_dir, tmp_path, "--env", f"{env_file}:make_env") as url:
        page = browser.new_page()
        page.goto(url + "/")
        status = settled(page, 0)
        last = status["info"]["frames"] - 1
        page.evaluate(f"window.pyodideReplay.seek({last})")
        status = settled(page, last)
        assert status["observations"] == recorded(bundle, last) and status["match"] is True
        wait_for(lambda: page.evaluate("window.pyodideReplay.status().rendered_frames") >= 2, 60, "a repaint")
        # The 16 x 4 frame is scaled by whole pixels (40x) as on the participant page.
        assert page.evaluate("[document.getElementById('stage').width, document.getElementById('stage').height]") \
            == [640, 160]
        page.close()


def test_replay_page_reproduces_a_bundle_a_browser_downloaded(browser, assets_dir, tmp_path):
    """A bundle from `pyodide-runtime demo` (two real browsers, latency, a frozen tab), not from `simulate`."""
    out = tmp_path / "demo"
    demo = run_cli("demo", "--out", str(out), "--episodes", "1", "--episode-seconds", "6", "--assets",
                   str(assets_dir), timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    bundle = sorted(out.glob("*_A_seat*.zip"))[0]
    with replay_server(bundle, assets_dir, tmp_path) as url:
        page = browser.new_page()
        page.goto(url + "/")
        status = settled(page, 0)
        info = status["info"]
        assert info["frames"] == 6 * 30
        assert "away" in {m["kind"] for m in info["markers"]}, "the demo's tab-away is among the markers"
        for frame in (info["frames"] - 1, 97, 3):  # forward to the end, then back through snapshots
            page.evaluate(f"window.pyodideReplay.seek({frame})")
            status = settled(page, frame)
            assert status["observations"] == recorded(bundle, frame)
            assert status["match"] is True
        page.close()
