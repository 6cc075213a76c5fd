"""Baseline comparison with MUG (multi-user-gymnasium 0.1.3) on its two-player slime volleyball (slimevb 0.1.1).

Nothing here imports MUG or slimevb at import time. ``bench mug`` runs slimevb's ``SlimeVolleyEnv`` in our
runtime at MUG's example settings (30 fps, input delay 2), wrapped as a PettingZoo-style parallel env, and
measures side by side in one process: the bare ``env.step``, the engine per frame on a perfect network, and the
cost of one rollback of depth 1, 5 and 10 frames (what MUG's ``window.debugRemoteInputDelay`` forces), plus
whether the two peers' records are identical under that delay. slimevb is looked up in the current interpreter,
else in ``--site-packages`` (for example ``/tmp/mug-venv/lib/python3.11/site-packages``). With
``--pyodide-wheel`` the same measurement also runs inside Pyodide under Node, the browser's interpreter, which is
the fair comparison with MUG's in-page figures.

MUG's own figures (page boot, main-thread time per tick, rollback cost, export parity) come from the browser
measurement of MUG recorded in the design notes (same kind of machine); ``--mug-figures`` points at a JSON file
with fresher ones. The ratios divide MUG's figure by ours, so > 1 means we are ahead.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["SlimeParallel", "bench_mug", "bench_mug_pyodide", "ratios", "MUG_FIGURES"]

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

    metadata = {"name": "slimevb", "version": "0.1.1"}

    def __init__(self, **config: Any) -> None:
        from slime_volleyball.slimevolley_env import SlimeVolleyEnv

        self.env = SlimeVolleyEnv(config=config) if config else SlimeVolleyEnv()
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)

    def action_space(self, agent: str) -> Any:
        return self.env.action_space[agent]

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed)
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


def _import_slimevb(site_packages: Path | None) -> None:
    try:
        import slime_volleyball  # noqa: F401
    except ImportError:
        if site_packages is None:
            raise
        sys.path.append(str(site_packages))  # appended: our numpy and gymnasium stay first
        import slime_volleyball  # noqa: F401


def bench_mug(frames: int = 600, repeats: int = 5, depths: tuple[int, ...] = (1, 5, 10),
              site_packages: Path | None = None, mug_figures: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure slimevb in our runtime and compare with MUG's figures; see the module docstring."""
    import random

    from pyodide_runtime.benchmarks.core import _bare_step_us, _engine
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


def bench_mug_pyodide(wheel: Path, frames: int = 600, repeats: int = 5, assets: Path | None = None) -> dict[str, Any]:
    """The same measurement inside Pyodide under Node (the browser's wasm interpreter), slimevb from ``wheel``."""
    import base64

    from pyodide_runtime.pyodide_host import run_in_pyodide

    code = (
        "import base64, io, site, zipfile\n"
        "from pyodide_runtime import pyodide_compat\npyodide_compat.prepare()\n"
        "zipfile.ZipFile(io.BytesIO(base64.b64decode(params['wheel']))).extractall(site.getsitepackages()[0])\n"
        "from pyodide_runtime.benchmarks.mug import bench_mug\n"
        "result = bench_mug(params['frames'], params['repeats'])\n"
    )
    params = {"wheel": base64.b64encode(wheel.read_bytes()).decode(), "frames": frames, "repeats": repeats}
    return run_in_pyodide(code, params, assets=assets, timeout=3600).result


def _ratio(mug: list[float], ours_ms: float | None) -> float | None:
    return round(statistics.mean(mug) / ours_ms, 1) if ours_ms else None


def add_parser(sub: Any) -> None:
    """The ``bench mug`` subcommand."""
    p = sub.add_parser("mug", help="slimevb in our runtime vs MUG 0.1.3's figures (the predecessor)")
    p.add_argument("--frames", type=int, default=600, help="frames per measurement (default %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; figures are medians (default %(default)s)")
    p.add_argument("--site-packages", type=Path, help="where slimevb is installed, if not in this interpreter")
    p.add_argument("--mug-figures", type=Path, help="JSON file with MUG's measured figures (default: design notes)")
    p.add_argument("--pyodide-wheel", type=Path, metavar="WHEEL",
                   help="slimevb's wheel: also measure inside Pyodide under Node (needs the self-hosted assets)")
    p.add_argument("--assets", type=Path, help="asset directory for the Pyodide run")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run)


def run(args: Any) -> int:
    from pyodide_runtime.benchmarks.report import machine, print_table, write_results
    from pyodide_runtime.cli import CommandError

    if args.frames < 100 or args.repeats < 1:
        raise CommandError("--frames must be at least 100 and --repeats at least 1")
    figures = json.loads(args.mug_figures.read_text()) if args.mug_figures else None
    try:
        body = bench_mug(args.frames, args.repeats, site_packages=args.site_packages, mug_figures=figures)
    except ImportError as exc:
        raise CommandError(f"slimevb is not importable ({exc}); install slimevb==0.1.1 in a venv and pass "
                           "--site-packages <that venv's site-packages>") from exc
    results = {"suite": "mug", "machine": machine(), "frames": args.frames, "repeats": args.repeats, **body}
    if args.pyodide_wheel and body.get("snapshot_verified"):
        from pyodide_runtime.assets import AssetError
        from pyodide_runtime.pyodide_host import PyodideHostError

        try:
            inside = bench_mug_pyodide(args.pyodide_wheel, args.frames, args.repeats, args.assets)
        except (AssetError, PyodideHostError, OSError) as exc:
            raise CommandError(f"the Pyodide run failed: {exc}\n(leave out --pyodide-wheel for CPython only)") from exc
        results["pyodide"] = inside
        results["ratios_mug_over_ours_pyodide"] = ratios(results["mug"], inside)
    if body.get("snapshot_verified"):
        print_table("slimevb in our runtime (CPython)", [body], ["snapshot_method", "bare_step_us", "engine_frame_us",
                                                               "engine_ratio"])
        print_table("rollbacks", body["rollbacks"], ["depth_frames", "ms_per_rollback", "rollbacks", "mean_depth",
                                                     "records_identical"])
        print(f"\nMUG / ours: {body['ratios_mug_over_ours']}")
        if "pyodide" in results:
            inside = results["pyodide"]
            print_table("slimevb in our runtime (Pyodide under Node)", [inside],
                        ["bare_step_us", "engine_frame_us", "engine_ratio"])
            print_table("rollbacks (Pyodide)", inside["rollbacks"], ["depth_frames", "ms_per_rollback", "mean_depth"])
            print(f"\nMUG / ours in Pyodide: {results['ratios_mug_over_ours_pyodide']}")
    else:
        print(f"slimevb failed our snapshot verification: {body['snapshot_error']}")
    write_results(args.json, results)
    return 0
