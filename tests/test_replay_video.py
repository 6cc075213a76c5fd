"""Replaying bundles in CPython: re-simulation and seeking, the rasteriser, and video export (MP4 and GIF)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.host.data import load
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.host.headless import run_cli
from pyodide_runtime.host.replay import Replay, ReplayError, bots_from_metadata, observation_digest
from pyodide_runtime.host.replay.raster import BAND, parse_colour, rasterise, stamp
from pyodide_runtime.host.replay.target import resolve_target

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")

COIN_CHASE = {"players": 2, "max_steps": 40}

RGB_ENV = '''
import gymnasium as gym
import numpy as np

class Strip(gym.Env):
    """A one-player strip: move a dot left or right; rendered as a small RGB array."""
    metadata = {"render_modes": ["rgb_array"], "name": "strip", "version": "1"}

    def __init__(self):
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(0, 15, (1,), np.int64)
        self.render_mode = "rgb_array"
        self.x, self.t = 0, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = int(self.np_random.integers(0, 16)), 0
        return np.array([self.x]), {}

    def step(self, action):
        self.x = min(15, max(0, self.x + (0, -1, 1)[int(action)]))
        self.t += 1
        return np.array([self.x]), float(self.x == 15), False, self.t >= 25, {}

    def get_state(self):
        return (self.x, self.t, self.np_random.bit_generator.state)

    def set_state(self, state):
        self.x, self.t, rng = state
        self.np_random.bit_generator.state = rng

    def render(self):
        frame = np.zeros((6, 16, 3), dtype=np.uint8)
        frame[:, :, 2] = 90
        frame[2:4, self.x] = (255, 200, 0)
        frame[0, : self.t % 16] = (0, 200, 80)
        return frame

def make_env():
    return Strip()
'''


def simulate(out: Path, *extra: str) -> Path:
    proc = run_cli("simulate", "--seed", "5", "--latency-ms", "60", "--jitter-ms", "10", "--loss", "0.05",
                   "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(out.glob("*_seat0.zip"))[0]


@pytest.fixture(scope="module")
def coin_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate(tmp_path_factory.mktemp("coin"), "--players", "2", "--episodes", "2", "--env-config",
                    json.dumps(COIN_CHASE), "--away", "1:600-1400:frozen")


@pytest.fixture(scope="module")
def rgb_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rgb")
    (folder / "strip_env.py").write_text(RGB_ENV)
    return simulate(folder / "run", "--players", "1", "--episodes", "2", "--env", f"{folder / 'strip_env.py'}:make_env")


def recorded_frame(bundle: Path, g: int) -> tuple[dict[str, Any], Any]:
    """An independent re-simulation up to frame ``g`` (no Replay): the recorded observations and the env's render,
    after checking the state reached is the recorded one."""
    b = load(bundle, backend="python")
    canonical = b.metadata["canonical"]
    env = canonical["env"]
    game = load_game(env["factory"], env["config"], verify=False)
    rows = b.frames
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_frame.setdefault(row["global_frame"], []).append(row)
    seeds = {e["episode"]: e["seed"] for e in canonical["episodes"]}
    for frame in range(g + 1):
        first = by_frame[frame][0]
        if first["frame"] == 0:
            game.reset(seeds[first["episode"]])
        inputs = [0] * len(game.seats)
        for row in by_frame[frame]:
            if row["seat"] is not None:
                inputs[row["seat"]] = row["input"]
        result = game.step(inputs)
    want = {row["agent"]: row["observation"] for row in by_frame[g]}
    assert {a: canonical_json(result.observations[a]) for a in want} == want
    return want, game.render()


# -- re-simulation ------------------------------------------------------------------------------------------------
def test_replay_matches_every_recorded_frame_in_any_seek_order(coin_bundle):
    replay = Replay(coin_bundle, snapshot_every=7)
    assert replay.frames == 80 and [e["start_frame"] for e in replay.episodes] == [0, 40]
    order = list(range(replay.frames))
    random.Random(1).shuffle(order)
    for g in order + [79, 0, 41, 40, 39]:
        assert replay.matches(g), g
    view = replay.view(45)
    assert view["episode"] == 1 and view["episode_frame"] == 5 and view["render_kind"] == "draw"
    assert view["observation_digest"] == observation_digest(replay.recorded[45]) == view["recorded_digest"]
    kinds = {m["kind"] for m in replay.info()["markers"]}
    assert "away" in kinds and "rollback" in kinds


def test_bots_and_env_files_the_bundle_cannot_name_are_asked_for(tmp_path):
    assert bots_from_metadata({"bots": {"b": "RandomPolicy"}}) == {"b": "random"}
    with pytest.raises(ReplayError, match="--config"):
        bots_from_metadata({"bots": {"cook_1": "Partner"}})
    with pytest.raises(ReplayError, match="--env"):
        resolve_target({"factory": str(tmp_path / "gone.py") + ":make_env"})


# -- rasteriser ---------------------------------------------------------------------------------------------------
def test_draw_list_shapes_land_where_the_canvas_puts_them():
    image = rasterise([
        {"type": "canvas", "w": 40, "h": 30, "fill": "#ffffff"},
        {"type": "rect", "x": 2, "y": 2, "w": 10, "h": 10, "fill": "#ff0000"},
        {"type": "circle", "x": 30, "y": 20, "r": 5, "fill": "rgb(0, 0, 255)"},
        {"type": "line", "x1": 0, "y1": 28, "x2": 40, "y2": 28, "stroke": "green", "line_width": 1},
        {"type": "text", "x": 20, "y": 25, "text": "hi", "fill": "#000", "size": 8, "align": "center"},
    ])
    assert image is not None and image.size == (40, 30)
    assert image.getpixel((6, 6)) == (255, 0, 0)
    assert image.getpixel((30, 20)) == (0, 0, 255)
    assert image.getpixel((20, 28))[1] > 100
    assert image.getpixel((39, 0)) == (255, 255, 255)
    assert parse_colour("rgba(10, 20, 30, 0.5)") == (10, 20, 30, 128)
    stamped = stamp(image, "episode 0 frame 0")
    assert stamped.size == (40, 30 + BAND) and stamped.getpixel((6, 6)) == (255, 0, 0)


# -- video export -------------------------------------------------------------------------------------------------
def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_cli_writes_mp4_and_gif_of_a_draw_list_session(coin_bundle, tmp_path):
    mp4, gif = tmp_path / "session.mp4", tmp_path / "session.gif"
    proc = run_cli("replay", str(coin_bundle), "--video", str(mp4), "--gif", str(gif))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "80/80 frames" in proc.stderr  # the progress bar
    assert "80 frames, 432x406" in proc.stdout

    reader = imageio.get_reader(str(mp4), format="FFMPEG")
    frames = [np.asarray(f) for f in reader]
    reader.close()
    assert len(frames) == 80
    assert frames[0].shape == (406, 432, 3)
    for g in (0, 79):
        _, picture = recorded_frame(coin_bundle, g)
        want = np.asarray(rasterise(picture))
        got = frames[g][: want.shape[0], : want.shape[1]]
        assert _diff(got, want) < 3.0, g  # within codec tolerance
        other = 79 - g
        assert _diff(frames[other][: want.shape[0], : want.shape[1]], want) > _diff(got, want)
    assert frames[0][want.shape[0]:].mean() < 80  # the dark caption band

    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 80 and image.size == (432, 406)
        image.seek(79)
        last = np.asarray(image.convert("RGB"))
    _, picture = recorded_frame(coin_bundle, 79)
    want = np.asarray(rasterise(picture))
    assert _diff(last[: want.shape[0], : want.shape[1]], want) < 3.0


def test_rgb_array_env_video(rgb_bundle, tmp_path):
    from pyodide_runtime.host.replay.video import export_video

    replay = Replay(rgb_bundle)
    assert replay.frames == 50 and all(replay.matches(g) for g in range(replay.frames))
    info = export_video(replay, tmp_path / "strip.mp4", progress=False)
    # 16 x 6 pixels scaled by whole pixels as the page scales them (40x), plus the caption band.
    assert (info.frames, info.width, info.height) == (50, 640, 240 + BAND)
    reader = imageio.get_reader(str(tmp_path / "strip.mp4"), format="FFMPEG")
    frames = [np.asarray(f) for f in reader]
    reader.close()
    assert len(frames) == 50
    for g in (0, 49):
        _, picture = recorded_frame(rgb_bundle, g)
        want = np.asarray(rasterise(picture))
        assert want.shape == (240, 640, 3)
        assert _diff(frames[g][:240], want) < 3.0, g
