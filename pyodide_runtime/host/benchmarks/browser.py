"""Browser benchmark: two headless Chromium players on loopback through the real server, plus the physical floor.

Runs (each a fresh server and session with Coin Chase on autopilot):

- ``floor``: in the same Chromium, a bare page loads ``pyodide.mjs`` and ``numpy`` from the self-hosted assets
  (the boot floor), then our wheel, and times a bare ``env.step`` loop and the two-peer engine in that Pyodide;
  ``floor_pair`` boots two such bare pages in two Chromium processes at once, as the two players do, and is the
  fair floor for the players' first frame;
- ``play`` at each fps: page open to first simulated frame (split into the page's Pyodide / packages / prepare /
  env timings), frame rate held, the worker's tick time, main-thread long tasks (> 50 ms, ``PerformanceObserver``;
  ``long_tasks`` from the first simulated frame on, ``long_tasks_boot`` before it)
  and ``requestAnimationFrame`` intervals, JS heap (CDP ``Runtime.getHeapUsage``) and wasm memory samples, time from the last
  confirmed frame to the saved export, and bytes per second each player sent (from its export's diagnostics);
- ``loss``: the same at 30 fps with 20% of outgoing packets dropped by the page's network conditioner;
- ``memory``: one longer session at 30 fps sampling both pages' JS heap and Pyodide's wasm memory;
- ``away``: player B's tab hidden, then frozen for N seconds, then resumed: time to catch up, fast-forwarded
  frames, long tasks and the slowest ``evaluate`` round trip on B's page while it caught up;
- ``preloaded``: a study with scenes whose participants read instructions while the page loads the runtime and
  the env in the background, continue once it has, and get paired: time from the pairing to the first frame on
  each page;
- ``second_visit``: returning participants (each browser keeps its profile): page open to the game loaded and to
  the first frame on a first visit, then on a second visit with the HTTP and code caches warm, and how many of
  the runtime's files the HTTP cache served.

With ``--config STUDY.toml`` or ``--example NAME`` the command makes a study run instead of this suite: any study at
set per-seat latency and jitter (:mod:`pyodide_runtime.host.benchmarks.study`).
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["bench_browser"]

_OBSERVER = """
window.__bench = { long: [], raf: [] };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__bench.long.push([e.startTime, e.duration]);
  }).observe({ entryTypes: ["longtask"] });
} catch (e) { window.__bench.long_error = String(e); }
(() => {
  let last = 0;
  const tick = (t) => {
    if (last) window.__bench.raf.push(t - last);
    last = t;
    if (window.__bench.raf.length > 20000) window.__bench.raf.splice(0, 10000);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

_FLOOR_JS = """
async ([assets, frames]) => {
  const out = {};
  let t = performance.now();
  const { loadPyodide } = await import(assets + "pyodide.mjs");
  const py = await loadPyodide({ indexURL: assets, lockFileURL: assets + "pyodide-lock.json",
                                 env: { PYTHONHASHSEED: "0" } });
  out.pyodide_ms = performance.now() - t;
  t = performance.now();
  await py.loadPackage(["numpy"], { messageCallback: () => {} });
  out.numpy_ms = performance.now() - t;
  t = performance.now();
  await py.loadPackage(["pyodide-runtime"], { messageCallback: () => {} });
  out.packages_ms = performance.now() - t;
  py.globals.set("frames", frames);
  const res = py.runPython(`
import json
from pyodide_runtime import pyodide_compat
pyodide_compat.prepare()
from pyodide_runtime.host.benchmarks.core import bench_env
json.dumps(bench_env("example", frames, 3))
`);
  out.core = JSON.parse(res);
  return out;
}
"""


#: The boot part of the floor alone (Pyodide, numpy, our packages), for two pages at once.
_FLOOR_JS_BOOT = _FLOOR_JS.split("  py.globals.set", 1)[0] + "  return out;\n}\n"


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    v = sorted(values)
    return {"count": len(v), "p50": round(v[len(v) // 2], 2), "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 2),
            "max": round(v[-1], 2)}


def _study(fps: int, seconds: float, episodes: int = 1) -> dict[str, Any]:
    return {
        "title": "Coin Chase", "instructions": "benchmark", "test_mode": True,
        "env_config": {"max_steps": int(fps * seconds), "target_score": 10**6},
        "session": {"players": 2, "fps": fps, "episodes": episodes, "seed": 7, "input_delay": 2},
    }


def _heap(player: Any) -> float | None:
    try:
        cdp = player.context.new_cdp_session(player.page)
        used = cdp.send("Runtime.getHeapUsage")["usedSize"]
        cdp.detach()
        return round(used / 1e6, 2)
    except Exception:  # noqa: BLE001 - a frozen or navigating page has no heap to read
        return None


def _find(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _bundle_stats(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as z:
        meta = json.loads(z.read("metadata.json"))
    return {"bytes_sent": _find(meta, "bytes_sent"), "packets_sent": _find(meta, "packets_sent")}


class TwoPlayerSession:
    """One server, two players, one session."""

    def __init__(self, pw: Any, root: Path, study: dict[str, Any], assets: Path | None) -> None:
        from pyodide_runtime.host.headless import StudyServer

        self.server = StudyServer(root / "server", study, assets=assets)
        self.server.__enter__()
        self._add_players(pw, root)

    def _add_players(self, pw: Any, root: Path) -> None:
        from pyodide_runtime.host.headless import Player

        self.players: list[Any] = []
        try:
            for name in ("a", "b"):
                p = Player(pw, name, root / name)
                p.context.add_init_script(_OBSERVER)
                self.players.append(p)
        except BaseException:
            self.close()
            raise

    def open(self, extra: str = "") -> float:
        t0 = time.monotonic()
        for i, p in enumerate(self.players):
            p.open(f"{self.server.url}/?participant={'AB'[i]}&autopilot=random&seed={i + 1}{extra}")
        return t0

    def close(self) -> None:
        for p in self.players:
            p.close()
        self.server.__exit__(None, None, None)


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    # Polling a page costs it CPU on a 2-core machine: at every 50 ms, booting Pyodide took 0.3-0.7 s longer.
    from pyodide_runtime.host.headless import wait_for

    return wait_for(predicate, timeout, what, interval)


def _memory(players: list[Any], t0: float) -> dict[str, Any]:
    statuses = [p.status() for p in players]
    return {"t_s": round(time.monotonic() - t0, 1), "js_heap_mb": [_heap(p) for p in players],
            "wasm_mb": [round(st["wasm_memory_bytes"] / 1e6, 1) if st.get("wasm_memory_bytes") else None
                        for st in statuses],
            "confirmed_frames": statuses[0].get("confirmed_frames")}


def _play(pw: Any, root: Path, assets: Path | None, fps: int, seconds: float, extra: str = "",
          sample_every: float = 2.0) -> dict[str, Any]:
    s = TwoPlayerSession(pw, root, _study(fps, seconds), assets)
    try:
        t0 = s.open(extra)
        a, b = s.players
        _wait(lambda: (a.status().get("frame") or 0) >= 1 and (b.status().get("frame") or 0) >= 1, 180,
              "the first simulated frame")
        first_frame_s = time.monotonic() - t0
        steady_from = [p.page.evaluate("performance.now()") for p in s.players]
        timings = [p.status().get("timings") or {} for p in s.players]
        f0, w0 = a.status().get("frame") or 0, time.monotonic()
        total = int(fps * seconds)
        memory = [_memory(s.players, w0)]
        last_sample = w0
        while True:
            st = a.status()
            if (st.get("confirmed_frames") or 0) >= total or st.get("phase") == "ended":
                break
            if time.monotonic() - last_sample > sample_every:
                memory.append(_memory(s.players, w0))
                last_sample = time.monotonic()
            if time.monotonic() - w0 > seconds * 4 + 60:
                raise TimeoutError(f"the session did not end: {st}")
            time.sleep(0.05)
        f1, w1 = st.get("frame") or 0, time.monotonic()
        confirmed_at = w1
        memory.append(_memory(s.players, w0))
        bundles = _wait(lambda: all(p.bundles() for p in s.players) and [p.bundles()[0] for p in s.players], 120,
                        "both export bundles", 0.05)
        export_s = time.monotonic() - confirmed_at
        statuses = [p.status() for p in s.players]
        bench = [p.page.evaluate("window.__bench") for p in s.players]
        steady = [[d for start, d in x["long"] if start >= t] for x, t in zip(bench, steady_from)]
        wall = (w1 - w0) or 1e-9
        stats = [_bundle_stats(x) for x in bundles]
        return {
            "fps_configured": fps, "frames": total, "first_frame_s": round(first_frame_s, 2), "timings_ms": timings,
            "fps_held": round((f1 - f0) / wall, 1),
            "worker_tick_ms": [st.get("tick_cost_ms") for st in statuses],
            # Where the ticks went (median and mean per tick of each part) and the main thread's time per tick.
            "tick_parts_ms": [{k: {"p50": v.get("p50"), "mean": v.get("mean_ms")}
                              for k, v in ((st.get("tick_parts_ms") or {}).get("parts") or {}).items()}
                             for st in statuses],
            "main_thread_ms": [{"p50": (m.get("per_frame") or {}).get("p50"), "p95": (m.get("per_frame") or {}).get("p95"),
                                "per_tick_mean": m.get("per_tick_mean_ms")}
                               for m in (st.get("main_thread_ms") or {} for st in statuses)],
            "long_tasks_boot": [{"count": len(x["long"]) - len(st), "max_ms": round(max(
                (d for start, d in x["long"] if start < t), default=0.0), 1)} for x, st, t in zip(bench, steady, steady_from)],
            "long_tasks": [{"count": len(st), "max_ms": round(max(st, default=0.0), 1)} for st in steady],
            "raf_interval_ms": [_pcts(x["raf"]) for x in bench],
            "memory": memory,
            "export_after_last_frame_s": round(export_s, 2),
            "bytes_per_s": [round(x["bytes_sent"] / (total / fps)) if x["bytes_sent"] else None for x in stats],
            "rollbacks": [st.get("rollbacks") for st in statuses],
            "outcome": [st.get("outcome") for st in statuses],
        }
    finally:
        s.close()


def _preloaded(pw: Any, root: Path, assets: Path | None) -> dict[str, Any]:
    """Pairing to first frame when the page preloads: both participants read an instructions scene until their
    page has loaded the runtime and the env in the background, continue, wait, get paired and play one short
    episode. (No autopilot: the continue button is pressed once the page is ready, as a reader would after a
    while; the game plays the default input.)"""
    study = _study(30, 4)
    study["scenes"] = [
        {"kind": "instructions", "text": "benchmark"},
        {"kind": "waiting", "timeout_s": 120},
        {"kind": "game"},
    ]
    s = TwoPlayerSession(pw, root, study, assets)
    try:
        for i, p in enumerate(s.players):
            p.open(f"{s.server.url}/?participant={'AB'[i]}")
        _wait(lambda: all((p.status().get("timings") or {}).get("env_ms") is not None for p in s.players), 180,
              "both pages to load the runtime and the env behind the instructions")
        time.sleep(1.0)
        for p in s.players:
            p.page.click("[data-action=continue]")
        _wait(lambda: all(p.bundles() for p in s.players), 180, "both participants' exports")
        timings = [p.status().get("timings") or {} for p in s.players]
    finally:
        s.close()
    gaps = [t["first_frame_ms"] - t["paired_ms"] for t in timings if "first_frame_ms" in t and "paired_ms" in t]
    if len(gaps) != 2:
        raise RuntimeError(f"the pages did not report pairing and first-frame times: {timings}")
    return {
        "loaded_before_pairing": [t["total_ms"] + t["env_ms"] < t["paired_ms"] for t in timings],
        "pairing_to_first_frame_ms": [round(g, 1) for g in gaps],
        "timings_ms": timings,
    }


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def _visit(pw: Any, server: Any, profiles: list[Path], participants: tuple[str, str]) -> list[dict[str, Any]]:
    """Both players' browsers started on their profiles, each opening the page, until both drew a first frame."""
    from pyodide_runtime.host.headless import CHROMIUM_FLAGS, chromium_path

    contexts = []
    try:
        for profile in profiles:
            contexts.append(pw.chromium.launch_persistent_context(
                str(profile), executable_path=chromium_path(), headless=True,
                args=[f for f in CHROMIUM_FLAGS if f != "--headless=new"]))
        pages = [c.pages[0] if c.pages else c.new_page() for c in contexts]
        for i, page in enumerate(pages):
            page.goto(f"{server.url}/?participant={participants[i]}&autopilot=random&seed={i + 1}")

        def timings() -> list[dict[str, Any]]:
            return [p.evaluate("window.pyodideRuntime ? window.pyodideRuntime.status().timings : null") or {}
                    for p in pages]

        got = _wait(lambda: (t := timings()) and all("first_frame_ms" in x for x in t) and t, 180,
                    "both pages' first frame")
    finally:
        for c in contexts:
            c.close()
    return [{"open_to_loaded_ms": round(t["loaded_ms"], 1), "open_to_first_frame_ms": round(t["first_frame_ms"], 1),
             "assets": t.get("assets"), "timings_ms": t} for t in got]


def _second_visit(pw: Any, root: Path, assets: Path | None) -> dict[str, Any]:
    """A returning participant: each player's Chromium keeps its profile (``launch_persistent_context`` on a
    temporary user-data dir, the system Chromium). First visit: both browsers open the page with empty profiles
    and play until both drew a first frame, then close. Second visit: both browsers start again on the same
    profiles and open the page again (new participants, a new room). Per visit and page: page open to the game
    loaded (the worker ready) and to the first frame (page clock), and the worker's asset report: files fetched,
    how many the HTTP cache served, bytes transferred. Also the size of each profile's wasm code cache after the
    first visit (V8 keeps compiled wasm of streamed, cacheable responses there)."""
    from pyodide_runtime.host.headless import StudyServer

    profiles = [root / f"profile-{n}" for n in "ab"]
    for p in profiles:
        p.mkdir(parents=True, exist_ok=True)
    with StudyServer(root / "server", _study(30, 60), assets=assets) as server:
        first = _visit(pw, server, profiles, ("A1", "B1"))
        wasm_cache = [_dir_bytes(p / "Default" / "Code Cache" / "wasm") for p in profiles]
        second = _visit(pw, server, profiles, ("A2", "B2"))
    return {"first_visit": first, "second_visit": second, "wasm_code_cache_bytes": wasm_cache}


def _away(pw: Any, root: Path, assets: Path | None, away_s: float) -> dict[str, Any]:
    fps = 30
    s = TwoPlayerSession(pw, root, _study(fps, away_s + 30), assets)
    try:
        s.open()
        a, b = s.players
        _wait(lambda: (b.status().get("frame") or 0) >= 60, 180, "player B playing")
        other = b.context.new_page()
        cdp = b.context.new_cdp_session(b.page)
        try:
            _wait(lambda: b.status().get("away"), 10, "player B's page to count as away")
            cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
            time.sleep(away_s)
            cdp.send("Page.setWebLifecycleState", {"state": "active"})
        finally:
            b.page.bring_to_front()
            other.close()
        resumed = time.monotonic()
        before = b.page.evaluate("window.__bench.long.length")
        worst_rtt = 0.0
        while True:
            t = time.monotonic()
            sb = b.status()
            worst_rtt = max(worst_rtt, time.monotonic() - t)
            sa = a.status()
            if (sb.get("frame") or 0) >= (sa.get("frame") or 0) - 5 and (sb.get("fast_forward_frames") or 0) > 0:
                break
            if t - resumed > 120:
                raise TimeoutError(f"B did not catch up: {sb.get('frame')} vs {sa.get('frame')}")
            time.sleep(0.02)
        caught_up = time.monotonic() - resumed
        long_after = b.page.evaluate("window.__bench.long").__getitem__(slice(before, None))
        return {
            "away_s": away_s, "catch_up_s": round(caught_up, 2), "fast_forward_frames": sb.get("fast_forward_frames"),
            "long_tasks_during_catch_up": len(long_after),
            "max_long_task_ms": round(max((d for _, d in long_after), default=0.0), 1),
            "slowest_status_round_trip_ms": round(worst_rtt * 1000, 1),
        }
    finally:
        s.close()


def bench_browser(workdir: Path, assets: Path | None = None, *, fps: tuple[int, ...] = (30, 60),
                  seconds: float = 20.0, away: tuple[float, ...] = (10.0, 60.0), loss: float = 0.2,
                  floor: bool = True, floor_frames: int = 600, memory_seconds: float = 0.0,
                  preload: bool = True, second_visit: bool = True) -> dict[str, Any]:
    """Run the browser suite; see the module docstring. ``seconds`` is the length of each play session."""
    from playwright.sync_api import sync_playwright

    from pyodide_runtime.host.headless import Player, StudyServer

    out: dict[str, Any] = {"play": [], "away": []}
    with sync_playwright() as pw:
        if floor:
            with StudyServer(workdir / "floor" / "server", _study(30, 5), assets=assets) as server:
                pair = [Player(pw, f"floor{i}", workdir / "floor" / f"p{i}") for i in range(2)]
                try:
                    for p in pair:
                        p.open(f"{server.url}/healthz")
                    assets_url = json.loads(pair[0].page.evaluate("fetch('/study.json').then(r => r.text())"))["assets_url"]
                    base = (assets_url if assets_url.startswith("http") else server.url + assets_url).rstrip("/") + "/"
                    out["floor"] = pair[0].page.evaluate(_FLOOR_JS, [base, floor_frames])
                    out["floor_pair"] = _floor_pair(pair, base)
                finally:
                    for p in pair:
                        p.close()
        for f in fps:
            out["play"].append(_play(pw, workdir / f"play{f}", assets, f, seconds))
        if loss:
            row = _play(pw, workdir / "loss", assets, 30, seconds, f"&loss={loss}")
            out["loss"] = {"loss": loss, **row}
        for a in away:
            out["away"].append(_away(pw, workdir / f"away{int(a)}", assets, a))
        if preload:
            out["preloaded"] = _preloaded(pw, workdir / "preloaded", assets)
        if second_visit:
            out["second_visit"] = _second_visit(pw, workdir / "second-visit", assets)
        if memory_seconds:
            row = _play(pw, workdir / "memory", assets, 30, memory_seconds, sample_every=max(2.0, memory_seconds / 20))
            first, last = row["memory"][0], row["memory"][-1]
            frames = max((last["confirmed_frames"] or 0) - (first["confirmed_frames"] or 0), 1)
            row["growth"] = {
                "js_heap_mb": [round(b - a, 2) if a and b else None for a, b in zip(first["js_heap_mb"], last["js_heap_mb"])],
                "wasm_mb": [round(b - a, 1) if a and b else None for a, b in zip(first["wasm_mb"], last["wasm_mb"])],
                "wasm_bytes_per_confirmed_frame": [round((b - a) * 1e6 / frames) if a and b else None
                                                   for a, b in zip(first["wasm_mb"], last["wasm_mb"])],
            }
            out["memory"] = row
    first = out["play"][0] if out["play"] else None
    if first and "floor" in out:
        floor_ms = out["floor"]["pyodide_ms"] + out["floor"]["numpy_ms"]
        out["first_frame_vs_floor"] = round(first["first_frame_s"] * 1000 / floor_ms, 2)
    if first and out.get("floor_pair"):
        # The players boot two Chromium processes at once on the same cores: compare with two bare pages at once.
        out["first_frame_vs_floor_pair"] = round(first["first_frame_s"] * 1000 / out["floor_pair"]["boot_ms"], 2)
    return out


def _floor_pair(pair: list[Any], base: str) -> dict[str, Any]:
    """Two bare pages booting Pyodide, numpy and our packages at the same time, as two players' pages do."""
    for p in pair:  # start both, then wait for both: the sync API would otherwise run them one after the other
        p.page.evaluate("(base) => { window.__floor = null; (" + _FLOOR_JS_BOOT + ")([base, 1])"
                        ".then((r) => (window.__floor = r), (e) => (window.__floor = {error: String(e)})); }", base)
    results = [_wait(lambda p=p: p.page.evaluate("window.__floor"), 180, "a bare page's boot", 0.1) for p in pair]
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"bare Pyodide boot failed: {errors[0]}")
    boots = [r["pyodide_ms"] + r["numpy_ms"] + r["packages_ms"] for r in results]
    return {"pages": results, "boot_ms": round(sorted(boots)[-1], 1)}


def add_parser(sub: Any) -> None:
    """The ``bench browser`` subcommand."""
    p = sub.add_parser("browser", help="two headless Chromium players: boot, frame rate, long tasks, away, wire; "
                                       "with --config/--example, a study run of any study at set latencies",
                       description="Without --config/--example: the default suite on Coin Chase (floor, play at each "
                                   "--fps, loss, away, memory). With --config STUDY.toml or --example NAME: a study "
                                   "run (see docs/performance.md, 'Heavy envs at real latency'): one browser per "
                                   "seat, each seat's outgoing packets delayed by its --latency-ms +- --jitter-ms "
                                   "(uniform), per-seat fps held, tick percentiles, rollbacks, stalls, long tasks.")
    p.add_argument("--assets", type=Path, help="asset directory (default: $PYODIDE_RUNTIME_ASSETS or the cache)")
    p.add_argument("--fps", default=None,
                   help="comma-separated frame rates to play at (default 30,60); a study run takes one value "
                        "(default: the study's session.fps)")
    p.add_argument("--seconds", type=float, default=None,
                   help="length of each play session (default 20); in a study run the episode length, "
                        "fps * seconds, when the env config has max_steps (default 30)")
    p.add_argument("--away", default="10,60", help="comma-separated seconds of frozen tab (default %(default)s)")
    p.add_argument("--loss", type=float, default=0.2, help="packet loss of the lossy run; 0 skips it")
    p.add_argument("--no-floor", action="store_true", help="skip the bare Pyodide boot and in-browser core run")
    p.add_argument("--memory-seconds", type=float, default=180.0,
                   help="length of the memory run sampling JS heap and wasm memory; 0 skips it (default %(default)s)")
    p.add_argument("--no-preload", action="store_true",
                   help="skip the pairing-to-first-frame run (a study whose pages preload during its instructions)")
    p.add_argument("--no-second-visit", action="store_true",
                   help="skip the returning-participant run (page open to loaded and to first frame, first visit "
                        "then second visit with the browsers' profiles kept)")
    study = p.add_argument_group("study run (--away, --loss, --no-floor, --memory-seconds and --no-preload do not "
                                 "apply)")
    source = study.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="STUDY.toml", help="play this study (its [env] packages and "
                        "source are prepared by the server)")
    source.add_argument("--example", metavar="NAME", help="play an example study shipped with the package")
    study.add_argument("--latency-ms", default="0", metavar="MS[,MS...][/...]",
                       help="one-way delay each seat adds to the packets it sends: one value for every seat or one "
                            "per seat (comma-separated); '/' separates runs, e.g. 25/50/75 (default %(default)s)")
    study.add_argument("--jitter-ms", default="0", metavar="MS[,MS...][/...]",
                       help="+- uniform jitter on each seat's delay, same layout as --latency-ms (one set for all runs "
                            "or one per run; default %(default)s)")
    study.add_argument("--warmup", type=float, default=3.0, metavar="S",
                       help="seconds after the first confirmed frame left out of fps held and tick percentiles "
                            "(default %(default)s)")
    study.add_argument("--step-floor", type=int, default=0, metavar="STEPS",
                       help="first time this many bare steps of the env (and its state save/restore) in one page with "
                            "the study's packages; 0 skips it (default %(default)s)")
    p.add_argument("--workdir", type=Path, help="where servers and browsers keep their files (default: a temp dir)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run)


def run(args: Any) -> int:
    import os
    import tempfile

    from pyodide_runtime.host.assets import AssetError, open_assets
    from pyodide_runtime.host.benchmarks.report import machine, print_table, write_results
    from pyodide_runtime.host.cli import CommandError

    if args.config is not None or args.example is not None:
        from pyodide_runtime.host.benchmarks.study import run_study

        return run_study(args)
    args.fps = "30,60" if args.fps is None else args.fps
    args.seconds = 20.0 if args.seconds is None else args.seconds
    try:
        fps = tuple(int(x) for x in args.fps.split(",") if x)
        away = tuple(float(x) for x in args.away.split(",") if x)
    except ValueError:
        raise CommandError("--fps and --away take comma-separated numbers, e.g. --fps 30,60 --away 10,60") from None
    try:
        env_assets = os.environ.get("PYODIDE_RUNTIME_ASSETS")
        assets = open_assets(args.assets or (Path(env_assets) if env_assets else None)).root
    except AssetError as exc:
        raise CommandError(f"the browser suite needs the self-hosted assets: {exc}") from exc
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-browser-"))
    results: dict[str, Any] = {"suite": "browser", "machine": machine(), "seconds": args.seconds}
    results.update(bench_browser(workdir, assets, fps=fps, seconds=args.seconds, away=away, loss=args.loss,
                                 floor=not args.no_floor, memory_seconds=args.memory_seconds,
                                 preload=not args.no_preload, second_visit=not args.no_second_visit))
    results["machine_after"] = machine()
    rows = [{"run": f"{r['fps_configured']} fps", **r} for r in results["play"]]
    if "loss" in results:
        rows.append({"run": f"30 fps, {results['loss']['loss']:.0%} loss", **results["loss"]})
    print_table("play", rows, ["run", "first_frame_s", "fps_held", "export_after_last_frame_s", "bytes_per_s",
                               "long_tasks", "rollbacks"])
    print_table("away (player B frozen)", results["away"], ["away_s", "catch_up_s", "fast_forward_frames",
                                                            "long_tasks_during_catch_up", "slowest_status_round_trip_ms"])
    if "memory" in results:
        m = results["memory"]
        print(f"\nmemory over {m['frames']} frames: growth {m['growth']}")
    if "floor" in results:
        f = results["floor"]
        print(f"\nfloor: Pyodide {f['pyodide_ms']:.0f} ms + numpy {f['numpy_ms']:.0f} ms; in-page core: bare step "
              f"{f['core']['bare_step_us']} µs, engine {f['core']['engine_frame_us']} µs "
              f"({f['core']['engine_ratio']}×); first frame / floor = {results.get('first_frame_vs_floor')}")
    if "floor_pair" in results:
        print(f"two bare pages booting at once (Pyodide + numpy + our packages): {results['floor_pair']['boot_ms']:.0f} ms;"
              f" first frame / that = {results.get('first_frame_vs_floor_pair')}")
    if "preloaded" in results:
        p = results["preloaded"]
        print(f"\npreloaded behind the instructions: pairing to first frame "
              f"{', '.join(f'{g:.0f} ms' for g in p['pairing_to_first_frame_ms'])} (cold first frame: "
              f"{rows[0]['first_frame_s'] if rows else '-'} s from opening the page)")
    if "second_visit" in results:
        v = results["second_visit"]
        for name in ("first_visit", "second_visit"):
            loaded = ", ".join(f"{x['open_to_loaded_ms']:.0f} ms" for x in v[name])
            frame = ", ".join(f"{x['open_to_first_frame_ms']:.0f} ms" for x in v[name])
            cached = ", ".join(f"{(x['assets'] or {}).get('from_cache')}/{(x['assets'] or {}).get('files')}"
                               for x in v[name])
            print(f"{name.replace('_', ' ')}: page open to loaded {loaded}; to first frame {frame}; "
                  f"runtime files from the HTTP cache {cached}")
    write_results(args.json, results)
    return 0
