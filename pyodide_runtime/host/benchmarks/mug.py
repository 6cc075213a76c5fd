"""Baseline comparison with MUG (multi-user-gymnasium 0.1.3) on its two-player slime volleyball (slimevb 0.1.1).

Nothing here imports MUG or slimevb at import time. ``bench mug`` runs MUG itself and our runtime side by side in
the same headless Chromium, interleaved, at each injected delay:

- MUG: an experiment script written with MUG's public API (two humans, 30 fps, input delay 2) runs as a subprocess
  of ``--mug-python``; two :class:`~pyodide_runtime.host.headless.Player` pages press random arrow keys. Every public
  URL the page asks for (Pyodide, jQuery, Phaser, socket.io, onnxruntime-web, ua-parser-js, web fonts, PyPI's
  simple index and wheels for ``micropip.install``) is answered from local copies through Playwright routing
  (:func:`route_table`; npm tarballs from ``npm pack``, wheels from ``pip download``). ``window.debugRemoteInputDelay``
  forces rollbacks; a wrapper around the page's ``performRollback`` times each one. Exports are MUG's per-episode
  CSV files, compared per episode (:func:`compare_exports`).
- Ours: the same env, slimevb's ``SlimeVolleyEnv`` (:class:`SlimeParallel`, written as an env file by
  :func:`our_study`), served by ``pyodide-runtime serve`` with ``[env] packages = ["slimevb==0.1.1"]`` and
  ``[env] exclude = ["opencv-python"]`` (the same stand-in as MUG's placeholder: slimevb declares opencv-python but
  imports ``cv2`` only for its pixel renderer; serve's start-up check would refuse the study if the env imported
  it), 30 fps, input delay 2, two players on random autopilot with the same delay as one-way latency, its two
  export bundles compared with ``pyodide-runtime compare``; and slimevb in our engine in-process
  (:func:`bench_mug`, CPython, or Pyodide under Node with ``--pyodide-wheel``) for the rollback cost at the depth
  MUG's rollbacks had.

Both sides use the same instruments: page open to first frame, main-thread task time per tick (CDP
``Performance.getMetrics`` ``TaskDuration``), long tasks (``PerformanceObserver``) and frames held.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from pyodide_runtime.host.benchmarks.browser import TwoPlayerSession

__all__ = ["MUG_FIGURES", "SlimeParallel", "bench_mug", "bench_mug_browser", "bench_mug_pyodide", "compare_exports",
           "experiment_script", "our_env_code", "our_study", "ratios", "route_table", "summarise"]

#: MUG 0.1.3, slime volleyball, 30 fps, input delay 2, headless Chromium on 2 vCPUs (design notes).
MUG_FIGURES: dict[str, Any] = {
    "source": "design notes: MUG 0.1.3 example, headless Chromium, 2 vCPUs, medians",
    "boot_to_first_frame_s": 16.1,
    "boot_without_countdown_s": 13.1,
    "main_thread_ms_per_tick": [21.0, 27.0],
    "rollback_ms_any_depth": [33.0, 40.0],
    "env_step_in_page_ms": 0.9,
    "identical_episodes": {"idle": "4/4", "random_no_delay": "1/6", "random_delay_5": "1/6", "random_delay_10": "0/6"},
}

AGENTS = ("agent_left", "agent_right")


class SlimeParallel:
    """slimevb's ``SlimeVolleyEnv`` (RLlib-style dicts with ``__all__``) seen as a PettingZoo parallel env."""

    metadata: ClassVar[dict[str, str]] = {"name": "slimevb", "version": "0.1.1"}

    def __init__(self, **config: Any) -> None:
        from slime_volleyball.slimevolley_env import SlimeVolleyEnv

        self.env = SlimeVolleyEnv(config=config) if config else SlimeVolleyEnv()
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)

    def action_space(self, agent: str) -> Any:
        return self.env.action_space[agent]

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        obs, _infos = self.env.reset(seed=seed)
        self.agents = list(AGENTS)
        return obs, {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminated, truncated, _ = self.env.step(dict(actions))
        term = {a: terminated[a] for a in AGENTS}
        trunc = {a: truncated[a] for a in AGENTS}
        if terminated.get("__all__") or truncated.get("__all__"):
            term = dict.fromkeys(AGENTS, bool(terminated.get("__all__")))
            trunc = dict.fromkeys(AGENTS, bool(truncated.get("__all__")))
            self.agents = []
        return obs, rewards, term, trunc, {a: {} for a in AGENTS}

    def render(self) -> list[dict[str, Any]]:
        """The ball and the two slimes as circles, as MUG's page env draws them (600 x 250 canvas)."""
        s = self.env._env_state

        def circle(x: Any, y: Any, r: float, fill: str) -> dict[str, Any]:
            return {"type": "circle", "x": (float(x) / 48.0 + 0.5) * 600, "y": (1 - float(y) / 48.0) * 250,
                    "r": r * 600, "fill": fill}

        return [{"type": "canvas", "w": 600, "h": 250, "fill": "#ffffff"}, circle(*s.ball_pos, 0.01, "#000000"),
                circle(*s.agent_pos[0], 0.03, "#FF0000"), circle(*s.agent_pos[1], 0.03, "#0000FF")]


#: slimevb's env config on both sides (MUG's page env is built with the same).
SLIME_CONFIG: dict[str, Any] = {"human_inputs": True, "seed": 42}
#: What each side runs, for the results.
ENVS = {
    "mug": "slimevb 0.1.1 SlimeVolleyEnv (config human_inputs, seed 42) in MUG's page env (ENV_CODE: JSON "
           "get_state/set_state for MUG's rollbacks, circles render); opencv-python: empty placeholder wheel",
    "ours": "slimevb 0.1.1 SlimeVolleyEnv (config human_inputs, seed 42) as a PettingZoo parallel env "
            "(SlimeParallel, circles render), [env] packages = [\"slimevb==0.1.1\"], exclude = [\"opencv-python\"]",
    "opencv_stand_in": "both sides: opencv-python is not loaded (MUG: empty placeholder distribution; ours: "
                       "[env] exclude); slimevb imports cv2 only for its pixel renderer, which neither env uses",
}


def our_env_code() -> str:
    """The env file our study serves: :class:`SlimeParallel` and a ``make_env(config)`` factory, self-contained."""
    import inspect

    return (
        '"""slimevb 0.1.1\'s two-player slime volleyball (the env MUG\'s benchmark runs) as a PettingZoo parallel env."""\n\n'
        "from __future__ import annotations\n\nfrom typing import Any, ClassVar\n\n"
        f"AGENTS = {AGENTS!r}\n\n\n{inspect.getsource(SlimeParallel)}\n\n"
        "def make_env(config: dict[str, Any] | None = None) -> SlimeParallel:\n"
        f"    return SlimeParallel(**(config or {SLIME_CONFIG!r}))\n"
    )


def our_study(workdir: Path, *, fps: int = 30, max_steps: int = 600, episodes: int = 1, input_delay: int = 2) -> Path:
    """Write our side's env file and study config (TOML, so ``[env] packages`` and ``exclude`` apply) into
    ``workdir``; return the config's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    env_file = workdir / "slime_env.py"
    env_file.write_text(our_env_code())
    config = "".join(f"{k} = {json.dumps(v)}, " for k, v in SLIME_CONFIG.items())
    toml = f"""title = "Slime Volleyball"
instructions = "benchmark"
test_mode = true

[env]
spec = {json.dumps(f"{env_file}:make_env")}
config = {{ {config}max_steps = {int(max_steps)} }}
packages = ["slimevb==0.1.1"]
exclude = ["opencv-python"]

[session]
players = 2
fps = {fps}
episodes = {int(episodes)}
seed = 7
input_delay = {input_delay}
"""
    path = workdir / "study.toml"
    path.write_text(toml)
    return path


def _import_slimevb(site_packages: Path | None) -> None:
    try:
        import slime_volleyball
    except ImportError:
        if site_packages is None:
            raise
        sys.path.append(str(site_packages))  # appended: our numpy and gymnasium stay first
        import slime_volleyball  # noqa: F401


def bench_mug(frames: int = 600, repeats: int = 5, depths: tuple[int, ...] = (1, 5, 10),
              site_packages: Path | None = None, mug_figures: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure slimevb in our runtime and compare with MUG's figures; see the module docstring."""
    import random

    from pyodide_runtime.host.benchmarks.core import _bare_step_us, _engine
    from pyodide_runtime.envs.loading import make_game
    from pyodide_runtime.snapshot import SnapshotError

    _import_slimevb(site_packages)
    out: dict[str, Any] = {"env": "slimevb 0.1.1 SlimeVolleyEnv", "fps": 30, "input_delay": 2}
    t0 = time.perf_counter()
    try:
        probe = make_game(SlimeParallel(), env_id="slimevb", env_version="0.1.1")
        out["snapshot_method"] = probe.snapshot_method
        out["snapshot_verified"] = True
    except SnapshotError as exc:
        out["snapshot_verified"] = False
        out["snapshot_error"] = str(exc)
        return {**out, "mug": mug_figures or MUG_FIGURES}
    out["verify_s"] = round(time.perf_counter() - t0, 2)
    method = probe.snapshot_method

    def game() -> Any:
        return make_game(SlimeParallel(), env_id="slimevb", env_version="0.1.1", snapshot=method, verify=False)

    def actions(env: Any, rng: random.Random) -> dict[str, int]:
        return {a: rng.randrange(6) for a in AGENTS}

    bare, engine = [], []
    for r in range(repeats):
        bare.append(_bare_step_us(SlimeParallel, actions, frames))
        run = _engine(game, 2, frames, 0.0, seed=30 + r)
        engine.append(run["tick_s"] / run["simulated"] * 1e6)
    out["bare_step_us"] = round(statistics.median(bare), 2)
    out["engine_frame_us"] = round(statistics.median(engine), 2)
    out["engine_ratio"] = round(out["engine_frame_us"] / out["bare_step_us"], 3)
    out["rollbacks"] = []
    frame_ms = 1000.0 / 30
    for depth in depths:
        # A one-way delay of ``depth + input_delay`` frames makes every misprediction roll back ``depth`` frames.
        per, runs = [], []
        for r in range(repeats):
            run = _engine(game, 2, frames, (depth + 2) * frame_ms, seed=40 + r, max_prediction=max(8, depth + 2))
            if run["rollbacks"]:
                per.append(run["rollback_s"] / run["rollbacks"] * 1e3)
            runs.append(run)
        mid = runs[len(runs) // 2]
        out["rollbacks"].append({
            "depth_frames": depth, "ms_per_rollback": round(statistics.median(per), 3) if per else None,
            "rollbacks": mid["rollbacks"], "resimulated_frames": mid["resimulated"],
            "mean_depth": round(mid["resimulated"] / max(mid["rollbacks"], 1), 2),
            "records_identical": True,  # _engine raises when the peers' confirmed records differ
        })
    mug = mug_figures or MUG_FIGURES
    out["mug"] = mug
    out["ratios_mug_over_ours"] = ratios(mug, out)
    return out


def ratios(mug: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """MUG's figure divided by ours (> 1: we are ahead), from a :func:`bench_mug` result."""
    by_depth = {r["depth_frames"]: r["ms_per_rollback"] for r in ours["rollbacks"]}
    return {
        "main_thread_per_tick": "ours runs in a Web Worker: 0 ms of engine work on the main thread per tick",
        "engine_per_tick": round(statistics.mean(mug["main_thread_ms_per_tick"]) / (ours["engine_frame_us"] / 1e3), 1),
        **{f"rollback_depth_{d}": _ratio(mug["rollback_ms_any_depth"], ms) for d, ms in by_depth.items()},
    }


def bench_mug_pyodide(wheel: Path, frames: int = 600, repeats: int = 5, assets: Path | None = None,
                      depths: tuple[int, ...] = (1, 5, 10)) -> dict[str, Any]:
    """The same measurement inside Pyodide under Node (the browser's wasm interpreter), slimevb from ``wheel``."""
    import base64

    from pyodide_runtime.host.pyodide_host import run_in_pyodide

    code = (
        "import base64, io, site, zipfile\n"
        "from pyodide_runtime import pyodide_compat\npyodide_compat.prepare()\n"
        "zipfile.ZipFile(io.BytesIO(base64.b64decode(params['wheel']))).extractall(site.getsitepackages()[0])\n"
        "from pyodide_runtime.host.benchmarks.mug import bench_mug\n"
        "result = bench_mug(params['frames'], params['repeats'], tuple(params['depths']))\n"
    )
    params = {"wheel": base64.b64encode(wheel.read_bytes()).decode(), "frames": frames, "repeats": repeats,
              "depths": list(depths)}
    return run_in_pyodide(code, params, assets=assets, timeout=3600).result


def _ratio(mug: list[float], ours_ms: float | None) -> float | None:
    return round(statistics.mean(mug) / ours_ms, 1) if ours_ms else None


# --- MUG itself in the browser ------------------------------------------------------------------------------------

#: What MUG 0.1.3's page fetches from public hosts, and where the offline copy comes from (glob -> source).
CDN_SCRIPTS: dict[str, tuple[str, str]] = {
    "https://ajax.googleapis.com/ajax/libs/jquery/3.7.1/jquery.min.js": ("jquery@3.7.1", "package/dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/phaser/3.80.1/phaser.min.js": ("phaser@3.80.1", "package/dist/phaser.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/socket.io/4.7.2/socket.io.js":
        ("socket.io-client@4.7.2", "package/dist/socket.io.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/onnxruntime-web/1.10.0/ort.min.js":
        ("onnxruntime-web@1.10.0", "package/dist/ort.min.js"),
    "https://cdn.jsdelivr.net/npm/ua-parser-js@1.0.38/src/ua-parser.min.js":
        ("ua-parser-js@1.0.38", "package/dist/ua-parser.min.js"),
}
MUG_PYODIDE = "https://cdn.jsdelivr.net/pyodide/v0.26.2/full/"
PYPI_SIMPLE = "https://pypi.org/simple/"
PYPI_FILES = "https://files.pythonhosted.org/packages/offline/"
#: Wheels the page's ``micropip.install`` asks PyPI for (the rest are in the Pyodide lock file).
PYPI_WHEELS = ("multi-user-gymnasium==0.1.3", "slimevb==0.1.1")
#: slimevb 0.1.1 requires opencv-python, which has no Pyodide build offline; it only imports ``cv2`` for its own
#: pixel renderer, which the benchmark env does not use, so the page gets an empty placeholder distribution.
PLACEHOLDER_DISTS = ("opencv-python",)
ACTIONS = {"ArrowLeft": 1, ("ArrowLeft", "ArrowUp"): 2, "ArrowUp": 3, ("ArrowRight", "ArrowUp"): 4, "ArrowRight": 5}

#: The env MUG runs in the page: slimevb's env, plus the JSON state protocol MUG needs for rollback and a small
#: vector render (ball and two slimes as circles).
ENV_CODE = '''
import dataclasses, json, sys, types
import numpy as np
if "_multiprocessing" not in sys.modules:  # Pyodide lacks it and gymnasium's import needs it
    class SemLock:
        SEM_VALUE_MAX = 2**31 - 1
    sys.modules["_multiprocessing"] = types.SimpleNamespace(SemLock=SemLock, sem_unlink=lambda name: None)
from slime_volleyball.slimevolley_env import SlimeVolleyEnv

class BenchSlime(SlimeVolleyEnv):
    def _flat(self, obs):
        return {k: (v["obs"] if isinstance(v, dict) and "obs" in v else v) for k, v in obs.items()}

    def reset(self, *args, **kwargs):
        obs, info = super().reset(*args, **kwargs)
        return self._flat(obs), info

    def step(self, actions):
        obs, rew, term, trunc, info = super().step(actions)
        return self._flat(obs), rew, term, trunc, info

    def render(self):
        s = self._env_state
        def circle(uid, x, y, r, color):
            return {"uuid": uid, "object_type": "circle", "x": float(x) / 48.0 + 0.5, "y": 1 - float(y) / 48.0,
                    "radius": r, "color": color}
        return [circle("ball", *s.ball_pos, 0.01, "#000000"),
                circle("agent_left", *s.agent_pos[0], 0.03, "#FF0000"),
                circle("agent_right", *s.agent_pos[1], 0.03, "#0000FF")]

    def get_state(self):
        fields = {f.name: getattr(self._env_state, f.name) for f in dataclasses.fields(self._env_state)}
        return {"t": int(self.t), **{k: _encode(v) for k, v in fields.items()}}

    def set_state(self, state):
        self.t = state["t"]
        self._env_state = dataclasses.replace(self._env_state,
                                              **{k: _decode(v) for k, v in state.items() if k != "t"})


def _encode(v):
    # The page keeps snapshots as JS objects, so 128-bit generator state travels as a JSON string.
    if isinstance(v, np.random.Generator):
        return {"rng": json.dumps(v.bit_generator.state)}
    if isinstance(v, (np.ndarray, np.generic)):
        return {"dtype": np.asarray(v).dtype.str, "value": np.asarray(v).tolist(), "scalar": isinstance(v, np.generic)}
    return {"py": v}


def _decode(d):
    if "rng" in d:
        state = json.loads(d["rng"])
        g = np.random.Generator(getattr(np.random, state["bit_generator"])())
        g.bit_generator.state = state
        return g
    if "py" in d:
        return d["py"]
    a = np.asarray(d["value"], dtype=np.dtype(d["dtype"]))
    return a[()] if d["scalar"] else a


env = BenchSlime(config={"human_inputs": True, "seed": 42})
'''


def experiment_script(port: int, env_code_path: Path, *, episodes: int, max_steps: int, input_delay: int = 2,
                      fps: int = 30, experiment_id: str = "mug_bench") -> str:
    """A MUG 0.1.3 experiment script (MUG's public API): start page, two-human slime volleyball, end page."""
    return f'''import eventlet
eventlet.monkey_patch()
from mug.configurations import configuration_constants as cc, experiment_config
from mug.scenes import gym_scene, stager, static_scene
from mug.server import app

humans = {{"agent_left": cc.PolicyTypes.Human, "agent_right": cc.PolicyTypes.Human}}
start = static_scene.StartScene().scene(scene_id="start", experiment_config={{}}).display(
    scene_header="Benchmark", scene_body="Slime volleyball benchmark.")
play = (
    gym_scene.GymScene()
    .scene(scene_id="slime", experiment_config={{}})
    .policies(policy_mapping=humans, frame_skip=1)
    .rendering(fps={fps}, game_width=600, game_height=250)
    .gameplay(default_action=0, action_mapping={ACTIONS!r}, num_episodes={episodes}, max_steps={max_steps},
              input_mode=cc.InputModes.PressedKeys,
              action_population_method=cc.ActionSettings.PreviousSubmittedAction)
    .content(scene_header="Slime Volleyball", scene_body="Press start.", in_game_scene_body="Play.")
    .waitroom(timeout=300000)
    .runtime(environment_initialization_code_filepath={str(env_code_path)!r}, packages_to_install=["slimevb==0.1.1"])
    .multiplayer(input_delay={input_delay})
)
end = static_scene.EndScene().scene(scene_id="end").display(scene_header="Done", scene_body="Done.")
config = (
    experiment_config.ExperimentConfig()
    .experiment(stager=stager.Stager(scenes=[start, play, end]), experiment_id={experiment_id!r})
    .hosting(port={port}, host="127.0.0.1")
    .entry_screening(browser_requirements=[], browser_blocklist=[], max_ping=5000)
)
app.run(config)
'''


def simple_index(name: str, wheels: list[Path]) -> dict[str, Any]:
    """A PEP 691 JSON simple-index page for ``name`` listing local ``wheels`` under :data:`PYPI_FILES`."""
    import hashlib

    return {"meta": {"api-version": "1.0"}, "name": name, "files": [
        {"filename": w.name, "url": PYPI_FILES + w.name, "hashes": {"sha256": hashlib.sha256(w.read_bytes()).hexdigest()}}
        for w in wheels]}


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def route_table(assets: Path, npm_dir: Path, wheels: list[Path]) -> list[dict[str, str]]:
    """Every public URL (prefix) MUG's page needs, with the local file or generated body that answers it."""
    table = [{"url": url, "source": f"npm {pkg}", "file": str(npm_dir / pkg.replace("@", "-") / path)}
             for url, (pkg, path) in CDN_SCRIPTS.items()]
    table.append({"url": MUG_PYODIDE + "*", "source": f"self-hosted Pyodide {_pyodide_version(assets)}",
                  "file": str(assets) + "/*"})
    by_name: dict[str, list[Path]] = {}
    for w in wheels:
        by_name.setdefault(_norm(w.name.split("-")[0]), []).append(w)
    for name, ws in sorted(by_name.items()):
        table.append({"url": f"{PYPI_SIMPLE}{name}/", "source": "generated PEP 691 index",
                      "file": ", ".join(w.name for w in ws)})
        for w in ws:
            table.append({"url": PYPI_FILES + w.name, "source": "pip download" if name not in
                          map(_norm, PLACEHOLDER_DISTS) else "placeholder (no Pyodide build offline)", "file": str(w)})
    table.append({"url": "https://fonts.googleapis.com/*", "source": "empty stylesheet (web fonts only)", "file": ""})
    return table


def _pyodide_version(assets: Path) -> str:
    try:
        return json.loads((assets / "pyodide-lock.json").read_text())["info"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def placeholder_wheel(name: str, version: str, into: Path) -> Path:
    """An empty, installable ``py3-none-any`` wheel named ``name`` (a stand-in for a dependency never imported)."""
    import base64
    import hashlib
    import zipfile

    dist = name.replace("-", "_")
    path = into / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: placeholder\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(b.encode())}" for n, b in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return path


#: Column-name fragments of MUG's per-peer diagnostics (they differ between peers by design, so are not compared).
PER_PEER_COLUMNS = ("timestamp", "rollback", "speculative", "focused", "subject", "ping", "latency")


def _cell(value: str) -> str | float:
    """A CSV cell as a value: pandas writes a column as ``1.0`` in one file and ``1`` in the other when it has gaps."""
    try:
        return float(value)
    except ValueError:
        return value


def compare_exports(data_dir: Path) -> dict[str, Any]:
    """Pair MUG's per-episode CSV exports of the two subjects and say which episodes are identical."""
    import csv

    by_ep: dict[str, list[Path]] = {}
    for f in sorted(data_dir.rglob("*_ep*.csv")):
        by_ep.setdefault(f.stem.rsplit("_ep", 1)[1], []).append(f)
    episodes = []
    for ep, files in sorted(by_ep.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0]):
        if len(files) != 2:
            episodes.append({"episode": ep, "files": len(files), "identical": None})
            continue
        rows = [list(csv.DictReader(f.open())) for f in files]
        cols = sorted(set(rows[0][0]) & set(rows[1][0])) if rows[0] and rows[1] else []
        # Per-peer columns (timestamps, wall clock, who saw a rollback) differ by design; compare the game record.
        game_cols = [c for c in cols if not any(k in c.lower() for k in PER_PEER_COLUMNS)]
        diff = next((i for i, (a, b) in enumerate(zip(rows[0], rows[1]))
                     if [_cell(a[c]) for c in game_cols] != [_cell(b[c]) for c in game_cols]), None)
        episodes.append({"episode": ep, "rows": [len(r) for r in rows], "columns_compared": len(game_cols),
                         "first_differing_row": diff,
                         "identical": len(rows[0]) == len(rows[1]) and diff is None})
    return {"episodes": episodes, "identical": sum(bool(e["identical"]) for e in episodes), "total": len(episodes)}


_ROLLBACK_PROBE = """() => {
  const g = window.game;
  if (!g || g.__benchWrapped) return !!g;
  const orig = g.performRollback.bind(g);
  window.__benchRollbacks = window.__benchRollbacks || [];
  g.performRollback = async (frame, ids) => {
    const depth = g.frameNumber - frame, t = performance.now();
    const r = await orig(frame, ids);
    if (r) window.__benchRollbacks.push([depth, performance.now() - t]);  // false: MUG gave up (no snapshot)
    return r;
  };
  g.__benchWrapped = true;
  return true;
}"""


def _install_routes(context: Any, table: list[dict[str, str]], log: list[str]) -> None:
    files = {r["url"]: r["file"] for r in table}
    assets = Path(next(r["file"] for r in table if r["url"] == MUG_PYODIDE + "*")[:-2])
    wheels = {Path(r["file"]).name: Path(r["file"]) for r in table if r["url"].startswith(PYPI_FILES)}
    indexes = {r["url"]: [wheels[n] for n in r["file"].split(", ")] for r in table if r["url"].startswith(PYPI_SIMPLE)}

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith("http://127.0.0.1"):
            return route.continue_()
        log.append(url)
        if url in files and url in CDN_SCRIPTS:
            return route.fulfill(path=files[url], content_type="application/javascript")
        if url.startswith(MUG_PYODIDE):
            name = url[len(MUG_PYODIDE):].split("?")[0]
            if (assets / name).is_file():
                return route.fulfill(path=str(assets / name))
        if url in indexes:
            return route.fulfill(body=json.dumps(simple_index(url[len(PYPI_SIMPLE):].strip("/"), indexes[url])),
                                 content_type="application/vnd.pypi.simple.v1+json")
        if url.startswith(PYPI_FILES) and url[len(PYPI_FILES):] in wheels:
            return route.fulfill(path=str(wheels[url[len(PYPI_FILES):]]))
        if url.startswith("https://fonts.g"):
            return route.fulfill(body="", content_type="text/css")
        log.append(f"UNSERVED {url}")
        return route.fulfill(status=404, body="offline")

    context.route("**/*", handle)


def _cdp_task_ms(cdp: Any) -> float:
    """Main-thread task time so far (CDP ``Performance.getMetrics`` ``TaskDuration``), in ms."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics.get("TaskDuration", 0.0) * 1000


def _mug_state(page: Any) -> dict[str, Any]:
    try:
        return page.evaluate("() => window.game ? {frame: window.game.frameNumber, episodes: window.game.num_episodes,"
                             " rollbacks: window.game.rollbackCount} : {}") or {}
    except Exception as exc:  # noqa: BLE001 - a navigating page
        return {"unavailable": str(exc)}


def run_mug_session(workdir: Path, mug_python: Path, assets: Path, npm_dir: Path, wheels: list[Path], *,
                    delay: int, episodes: int, max_steps: int, seed: int = 1, timeout: float = 600) -> dict[str, Any]:
    """One real MUG session: MUG's server, two headless Chromium players with random keys, every CDN call local."""
    import random
    import subprocess

    from playwright.sync_api import sync_playwright

    from pyodide_runtime.host.benchmarks.browser import _OBSERVER
    from pyodide_runtime.host.headless import Player, free_port, wait_for

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bench_env.py").write_text(ENV_CODE)
    port = free_port()
    (workdir / "experiment.py").write_text(experiment_script(port, workdir / "bench_env.py", episodes=episodes,
                                                             max_steps=max_steps))
    table = route_table(assets, npm_dir, wheels)
    log_file = (workdir / "server.log").open("w")
    proc = subprocess.Popen([str(mug_python), "experiment.py"], cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT)
    requests: list[str] = []
    players: list[Any] = []
    rng = random.Random(seed)
    try:
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{port}/"), 60, "MUG's server")
        with sync_playwright() as pw:
            for name in ("mug_a", "mug_b"):
                p = Player(pw, name, workdir / name)
                p.context.add_init_script(_OBSERVER)
                _install_routes(p.context, table, requests)
                players.append(p)
            t0 = time.monotonic()
            for p in players:
                p.page.goto(f"http://127.0.0.1:{port}/")
            for p in players:
                p.page.wait_for_selector("#advanceButton", state="visible", timeout=60_000)
                p.page.locator("#advanceButton").click()
            for p in players:
                p.page.wait_for_selector("#startButton:enabled", state="visible", timeout=300_000)
                p.page.locator("#startButton").click()
            wait_for(lambda: all((_mug_state(p.page).get("frame") or 0) >= 1 for p in players), 300,
                     "MUG's first frame in both pages")
            first_frame_s = time.monotonic() - t0
            for p in players:
                p.page.evaluate(_ROLLBACK_PROBE)
                p.page.evaluate(f"window.debugRemoteInputDelay = {int(delay)}")
                p.page.evaluate("Object.defineProperty(document, 'hidden', {value: false, configurable: true})")
            cdps = [p.context.new_cdp_session(p.page) for p in players]
            for cdp in cdps:
                cdp.send("Performance.enable")
            task0 = [_cdp_task_ms(c) for c in cdps]
            frame0 = [_mug_state(p.page).get("frame") or 0 for p in players]
            steady_from = [p.page.evaluate("performance.now()") for p in players]
            w0 = time.monotonic()
            held: list[list[str]] = [[], []]
            keys = ["ArrowLeft", "ArrowRight", "ArrowUp"]
            last = [{"frame": f} for f in frame0]
            advanced = [0, 0]
            while time.monotonic() - w0 < timeout:
                states = [_mug_state(p.page) for p in players]
                for i, st in enumerate(states):
                    if "frame" in st:  # frameNumber restarts at 0 each episode: add up the advances
                        advanced[i] += st["frame"] - last[i]["frame"] if st["frame"] >= last[i]["frame"] else st["frame"]
                        last[i] = st
                if all((s.get("episodes") or 0) >= episodes or "frame" not in s for s in states):
                    break
                for i, p in enumerate(players):
                    for k in held[i]:
                        p.page.keyboard.up(k)
                    held[i] = rng.sample(keys, rng.choice((0, 1, 1, 2)))
                    for k in held[i]:
                        p.page.keyboard.down(k)
                time.sleep(rng.uniform(0.05, 0.3))
            wall = time.monotonic() - w0
            frames = advanced
            task = [_cdp_task_ms(c) - t for c, t in zip(cdps, task0)]
            rb = [p.page.evaluate("window.__benchRollbacks || []") for p in players]
            bench = [p.page.evaluate("window.__bench") for p in players]
            steady = [[d for start, d in x["long"] if start >= t] for x, t in zip(bench, steady_from)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((workdir / "data").rglob("*_ep*.csv"))) < 2 * episodes:
            time.sleep(1)
    except BaseException:
        for p in players:
            p.save_evidence(workdir / "evidence")
        raise
    finally:
        for p in players:
            p.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()
    depths = [d for x in rb for d, _ in x]
    costs = [ms for x in rb for _, ms in x]
    return {
        "delay_frames": delay, "first_frame_s": round(first_frame_s, 2), "play_wall_s": round(wall, 1),
        "frames": frames, "fps_held": [round(f / wall, 1) for f in frames],
        "main_thread_ms_per_tick": [round(t / max(f, 1), 2) for t, f in zip(task, frames)],
        "long_tasks": [{"count": len(s), "max_ms": round(max(s, default=0.0), 1)} for s in steady],
        "raf_interval_ms": [_pcts_of(x["raf"]) for x in bench],
        "rollbacks": len(costs), "rollback_ms": _pcts_of(costs),
        "rollback_mean_depth": round(statistics.mean(depths), 2) if depths else None,
        "exports": compare_exports(workdir / "data") if (workdir / "data").is_dir() else {"total": 0},
        "requests_served": sorted(set(requests)),
    }


def _pcts_of(values: list[float]) -> dict[str, Any]:
    from pyodide_runtime.host.benchmarks.browser import _pcts

    return _pcts(values)


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


class _OurSession(TwoPlayerSession):
    """Our study server (slimevb, see :func:`our_study`) and two players; slimevb is importable by the server's
    CPython start-up checks through ``cpython_path``."""

    def __init__(self, pw: Any, root: Path, assets: Path | None, config: Path, cpython_path: Path) -> None:
        import os

        from pyodide_runtime.host.headless import StudyServer

        self.server = StudyServer(root / "server", config, assets=assets, env=None)
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(cpython_path), *([old] if old else [])])
        try:
            self.server.__enter__()
        finally:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old
        self._add_players(pw, root)


def _cpython_slimevb(wheels: list[Path], into: Path) -> Path:
    """slimevb's wheel unpacked alone (no dependencies: our venv's numpy and gymnasium serve), for the server's
    CPython start-up checks."""
    import zipfile

    wheel = next(w for w in wheels if w.name.startswith("slimevb-"))
    if not (into / "slime_volleyball").is_dir():
        into.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(into)
    return into


def _ours_session(pw: Any, root: Path, assets: Path | None, delay: int, seconds: float,
                  cpython_path: Path, *, episodes: int = 1, max_steps: int = 600) -> dict[str, Any]:
    """Our runtime in the same Chromium: slimevb with MUG's episode count and step limit, two players, random
    autopilot, ``delay`` frames of one-way latency; at most ``seconds`` of play."""
    from pyodide_runtime.host.benchmarks.browser import _pcts
    from pyodide_runtime.host.headless import run_cli, wait_for

    fps = 30
    config = our_study(root / "study", fps=fps, max_steps=max_steps, episodes=episodes)
    s = _OurSession(pw, root, assets, config, cpython_path)
    try:
        t0 = s.open(f"&latency_ms={delay * 1000 / fps:.1f}" if delay else "")
        a = s.players[0]
        wait_for(lambda: all((p.status().get("frame") or 0) >= 1 for p in s.players), 300, "our first frame")
        first_frame_s = time.monotonic() - t0
        cdps = [p.context.new_cdp_session(p.page) for p in s.players]
        for cdp in cdps:
            cdp.send("Performance.enable")
        task0 = [_cdp_task_ms(c) for c in cdps]
        frame0 = [p.status().get("frame") or 0 for p in s.players]
        steady_from = [p.page.evaluate("performance.now()") for p in s.players]
        w0 = time.monotonic()
        wait_for(lambda: a.status().get("phase") == "ended" or (a.status().get("confirmed_frames") or 0) >= fps * seconds,
                 seconds * 4 + 120, "the end of our session", 0.1)
        wall = time.monotonic() - w0
        statuses = [p.status() for p in s.players]
        frames = [(st.get("frame") or 0) - f for st, f in zip(statuses, frame0)]
        task = [_cdp_task_ms(c) - t for c, t in zip(cdps, task0)]
        bench = [p.page.evaluate("window.__bench") for p in s.players]
        steady = [[d for start, d in x["long"] if start >= t] for x, t in zip(bench, steady_from)]
        bundles = wait_for(lambda: all(p.bundles() for p in s.players) and [p.bundles()[0] for p in s.players], 120,
                           "both export bundles")
        compared = run_cli("compare", str(bundles[0]), str(bundles[1]))
    finally:
        s.close()
    log = s.server.log_path.read_text(errors="replace")
    return {
        "delay_frames": delay, "env": "slimevb 0.1.1 SlimeVolleyEnv", "study_config": str(config),
        "excluded_logged": any("excluded" in line and "opencv-python" in line for line in log.splitlines()),
        "first_frame_s": round(first_frame_s, 2), "play_wall_s": round(wall, 1),
        "frames": frames, "confirmed_frames": [st.get("confirmed_frames") for st in statuses],
        "episodes": episodes, "fps_held": [round(f / wall, 1) for f in frames],
        "main_thread_ms_per_tick": [round(t / max(f, 1), 2) for t, f in zip(task, frames)],
        "worker_tick_ms": [round((st.get("tick_cost_ms") or {}).get("mean") or 0, 3) for st in statuses],
        "long_tasks": [{"count": len(x), "max_ms": round(max(x, default=0.0), 1)} for x in steady],
        "raf_interval_ms": [_pcts(x["raf"]) for x in bench],
        "rollbacks": [st.get("rollbacks") for st in statuses],
        "exports": {"identical": int(compared.returncode == 0), "total": 1, "compare_exit": compared.returncode,
                    "compare_output": compared.stdout.strip().splitlines()[:3]},
    }


def check_mug_python(mug_python: Path) -> str:
    """MUG's version in ``mug_python``'s environment, or raise ``RuntimeError`` with a one-line reason."""
    import subprocess

    if not Path(mug_python).is_file():
        raise RuntimeError(f"no Python at {mug_python}; create a venv and `pip install "
                           "'multi-user-gymnasium[server]==0.1.3' slimevb==0.1.1` into it")
    code = ("import importlib.metadata as m, flask_socketio, eventlet, slime_volleyball; "
            "print(m.version('multi-user-gymnasium'))")
    probe = subprocess.run([str(mug_python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise RuntimeError(f"MUG is not usable from {mug_python} ({last}); `pip install "
                           "'multi-user-gymnasium[server]==0.1.3' slimevb==0.1.1` into that venv")
    return probe.stdout.strip()


_PREFLIGHT = """
import json, random
ns = {}
exec(ENV_CODE, ns)
env = ns["env"]
env.reset()
rng = random.Random(1)
acts = lambda: {"agent_left": rng.randrange(6), "agent_right": rng.randrange(6)}
for _ in range(30):
    env.step(acts())
snap = json.loads(json.dumps(env.get_state()))  # what the page's JSON snapshot keeps
seq = [acts() for _ in range(300)]
def run():
    out = []
    for a in seq:
        _, _, te, tr, _ = env.step(a)
        out.append(json.dumps(env.get_state(), sort_keys=True))
        if te["__all__"] or tr["__all__"]:
            break
    return out
first = run()
env.set_state(snap)
print(json.dumps({"frames": len(first), "identical": run() == first}))
"""


def preflight_env(mug_python: Path) -> dict[str, Any]:
    """Check in MUG's venv that the page env's ``set_state(get_state())`` replays identically after a JSON trip."""
    import subprocess

    code = f"ENV_CODE = {ENV_CODE!r}\n{_PREFLIGHT}"
    out = subprocess.run([str(mug_python), "-c", code], capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the benchmark env failed in {mug_python}: {out.stderr.strip().splitlines()[-1:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["identical"]:
        raise RuntimeError("the benchmark env's get_state/set_state does not replay identically; MUG's rollbacks "
                           "would be wrong for a reason of ours, so the comparison would be unfair")
    return result


def fetch_offline_copies(workdir: Path, mug_python: Path) -> tuple[Path, list[Path]]:
    """npm tarballs of the page's CDN scripts and the wheels it micropip-installs, from the registries' clients."""
    import subprocess
    import tarfile

    npm_dir, wheel_dir = workdir / "npm", workdir / "wheels"
    npm_dir.mkdir(parents=True, exist_ok=True)
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for pkg in sorted({p for p, _ in CDN_SCRIPTS.values()}):
        dest = npm_dir / pkg.replace("@", "-")
        if dest.is_dir():
            continue
        tgz = subprocess.run(["npm", "pack", "-q", pkg], cwd=npm_dir, capture_output=True, text=True, check=True,
                             timeout=300).stdout.strip().splitlines()[-1]
        with tarfile.open(npm_dir / tgz) as t:
            t.extractall(dest, filter="data")
    subprocess.run([str(mug_python), "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheel_dir), *PYPI_WHEELS],
                   capture_output=True, text=True, check=True, timeout=600)
    wheels = [w for w in wheel_dir.glob("*.whl") if not w.name.startswith("opencv")]
    wheels += [placeholder_wheel(name, "4.10.0.84", wheel_dir) for name in PLACEHOLDER_DISTS]
    return npm_dir, sorted(wheels)


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [v for r in rows for v in (r[key] if isinstance(r[key], list) else [r[key]]) if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarise(mug_runs: list[dict[str, Any]], our_runs: list[dict[str, Any]],
              our_rollback_ms: dict[int, float | None]) -> list[dict[str, Any]]:
    """One side-by-side row per injected delay: medians over repeats and both players, and MUG / ours ratios."""
    rows = []
    for delay in sorted({r["delay_frames"] for r in mug_runs}):
        m = [r for r in mug_runs if r["delay_frames"] == delay]
        o = [r for r in our_runs if r["delay_frames"] == delay]
        row: dict[str, Any] = {"delay_frames": delay}
        for key in ("first_frame_s", "main_thread_ms_per_tick", "fps_held"):
            row[f"mug_{key}"] = _median(m, key)
            row[f"ours_{key}"] = _median(o, key) if o else None
        row["mug_long_tasks_per_run"] = _median([{"n": [x["count"] for x in r["long_tasks"]]} for r in m], "n")
        row["ours_long_tasks_per_run"] = _median([{"n": [x["count"] for x in r["long_tasks"]]} for r in o], "n") \
            if o else None
        row["mug_rollback_ms"] = _median([{"v": r["rollback_ms"]["p50"]} for r in m], "v")
        row["mug_rollbacks"] = sum(r["rollbacks"] for r in m)
        row["mug_rollback_mean_depth"] = _median([{"v": r["rollback_mean_depth"]} for r in m], "v")
        row["ours_rollback_ms"] = our_rollback_ms.get(delay)
        row["mug_identical_episodes"] = f"{sum(r['exports']['identical'] for r in m)}/" \
                                        f"{sum(r['exports']['total'] for r in m)}"
        row["ours_identical_exports"] = f"{sum(r['exports']['identical'] for r in o)}/{len(o)}" if o else None
        for key in ("first_frame_s", "main_thread_ms_per_tick", "rollback_ms"):
            mv, ov = row[f"mug_{key}"], row[f"ours_{key}"]
            row[f"ratio_{key}"] = round(mv / ov, 1) if mv and ov else None
        rows.append(row)
    return rows


def bench_mug_browser(workdir: Path, mug_python: Path, assets: Path, *, delays: tuple[int, ...] = (0, 5, 10),
                      repeats: int = 1, episodes: int = 2, max_steps: int = 600,
                      our_seconds: float = 20.0) -> dict[str, Any]:
    """MUG and our runtime side by side in headless Chromium, interleaved, at each injected delay."""
    from playwright.sync_api import sync_playwright

    version = check_mug_python(mug_python)
    preflight = preflight_env(mug_python)
    npm_dir, wheels = fetch_offline_copies(workdir / "offline", mug_python)
    cpython_path = _cpython_slimevb(wheels, workdir / "offline" / "cpython-slimevb")
    mug_runs: list[dict[str, Any]] = []
    our_runs: list[dict[str, Any]] = []
    for r in range(repeats):
        for delay in delays:
            mug_runs.append(run_mug_session(workdir / f"mug-d{delay}-r{r}", mug_python, assets, npm_dir, wheels,
                                            delay=delay, episodes=episodes, max_steps=max_steps, seed=r + 1))
            with sync_playwright() as pw:
                our_runs.append(_ours_session(pw, workdir / f"ours-d{delay}-r{r}", assets, delay, our_seconds,
                                              cpython_path, episodes=episodes, max_steps=max_steps))
    return {"mug_version": version, "envs": ENVS, "env_state_roundtrip": preflight, "routes": route_table(assets, npm_dir, wheels), "mug_runs": mug_runs,
            "our_runs": our_runs}


def _site_packages(python: Path) -> Path:
    import subprocess

    out = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                         text=True, check=True, timeout=60)
    return Path(out.stdout.strip())


def add_parser(sub: Any) -> None:
    """The ``bench mug`` subcommand."""
    p = sub.add_parser("mug", help="MUG 0.1.3 (the predecessor) and our runtime side by side in headless Chromium")
    p.add_argument("--mug-python", type=Path, default=Path("/tmp/mug-venv/bin/python"),
                   help="Python of a venv with multi-user-gymnasium[server]==0.1.3 and slimevb==0.1.1 "
                        "(default %(default)s)")
    p.add_argument("--delays", default="0,5,10", help="MUG's debugRemoteInputDelay values, frames (default %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="sessions per delay and runtime; medians (default %(default)s)")
    p.add_argument("--episodes", type=int, default=2, help="MUG episodes per session (default %(default)s)")
    p.add_argument("--max-steps", type=int, default=600, help="MUG episode step limit (default %(default)s)")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="at most this much play in each of our sessions, which otherwise run MUG's --episodes and "
                        "--max-steps (default %(default)s)")
    p.add_argument("--frames", type=int, default=600, help="frames per in-process rollback measurement")
    p.add_argument("--pyodide-wheel", type=Path, metavar="WHEEL",
                   help="slimevb's wheel: measure our rollback cost inside Pyodide under Node (else CPython)")
    p.add_argument("--assets", type=Path, help="self-hosted Pyodide assets (default: the configured ones)")
    p.add_argument("--pyodide-assets", type=Path,
                   help="assets whose wheel has this module, for --pyodide-wheel (default: --assets)")
    p.add_argument("--workdir", type=Path, help="keep servers' data, exports and offline copies here")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run)


def run(args: Any) -> int:
    import tempfile

    from pyodide_runtime.host.benchmarks.report import machine, print_table, write_results
    from pyodide_runtime.host.cli import CommandError

    try:
        check_mug_python(args.mug_python)
    except (RuntimeError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    if args.repeats < 1 or args.episodes < 1:
        raise CommandError("--repeats and --episodes must be at least 1")
    try:
        delays = tuple(int(d) for d in args.delays.split(","))
    except ValueError as exc:
        raise CommandError(f"--delays must be comma-separated frame counts, got {args.delays!r}") from exc
    assets = args.assets or _default_assets()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-mug-"))
    browser = bench_mug_browser(workdir, args.mug_python, assets, delays=delays, repeats=args.repeats,
                                episodes=args.episodes, max_steps=args.max_steps, our_seconds=args.seconds)
    (workdir / "browser-results.json").write_text(json.dumps(browser, indent=1))  # kept if a later step fails
    depths = {d: max(1, round(_median([r for r in browser["mug_runs"] if r["delay_frames"] == d],
                                      "rollback_mean_depth") or 1)) for d in delays}
    inproc = bench_mug(args.frames, max(1, min(args.repeats, 3)), tuple(sorted(set(depths.values()))),
                       site_packages=_site_packages(args.mug_python))
    where, pyodide_error = "CPython", None
    if args.pyodide_wheel and inproc.get("snapshot_verified"):
        from pyodide_runtime.host.assets import AssetError
        from pyodide_runtime.host.pyodide_host import PyodideHostError

        try:
            inproc = bench_mug_pyodide(args.pyodide_wheel, args.frames, 3, args.pyodide_assets or assets,
                                       tuple(sorted(set(depths.values()))))
            where = "Pyodide under Node"
        except (AssetError, PyodideHostError, OSError) as exc:  # keep the browser results; say why
            pyodide_error = str(exc).strip().splitlines()[-1]
            print(f"the Pyodide run failed ({pyodide_error}); our rollback cost is CPython's", file=sys.stderr)
    inproc.pop("mug", None)  # the design notes' figures: superseded by the measured MUG runs below
    inproc.pop("ratios_mug_over_ours", None)
    by_depth = {x["depth_frames"]: x["ms_per_rollback"] for x in inproc.get("rollbacks", [])}
    rows = summarise(browser["mug_runs"], browser["our_runs"], {d: by_depth.get(k) for d, k in depths.items()})
    results = {"suite": "mug", "machine": machine(), "workdir": str(workdir), "our_rollback_measured_in": where,
               "pyodide_error": pyodide_error,
               "rollback_depth_by_delay": depths, "side_by_side": rows, "ours_in_process": inproc, **browser}
    print_table(f"MUG {browser['mug_version']} vs ours, headless Chromium (medians)", rows,
                ["delay_frames", "mug_first_frame_s", "ours_first_frame_s", "mug_main_thread_ms_per_tick",
                 "ours_main_thread_ms_per_tick", "mug_rollback_ms", "ours_rollback_ms", "mug_identical_episodes",
                 "ours_identical_exports"])
    write_results(args.json, results)
    return 0


def _default_assets() -> Path:
    from pyodide_runtime.host.assets import default_assets_dir

    return Path(default_assets_dir())
