"""The study run of ``bench browser``: any study, real browsers, conditioned network, per-seat figures.

``pyodide-runtime bench browser --config STUDY.toml`` (or ``--example NAME``) serves the study with the real
server (which prepares ``[env] packages`` and ``source`` as ``serve`` does), opens one headless Chromium per seat on
the random autopilot, plays one episode, and reads each seat's export bundle and page.

How the network is conditioned: each page's conditioner (``js_bridge/conditioner.mjs``, in the worker) delays
every packet *its seat sends* by ``latency_ms + u * jitter_ms`` with ``u`` uniform in [-1, 1], drawn per packet
from a seeded generator (so packets may overtake each other when the jitter exceeds the send interval). The run
writes the values into the study copy as ``[network.seats.N]`` (test mode on), so seat N's outgoing packets get
``--latency-ms``/``--jitter-ms`` value N whatever order the browsers join in. The round trip between two seats is
therefore the sum of their latencies, ± the sum of their jitters, on top of loopback; a packet is read by the
receiving engine on its next tick, which adds up to one frame period per direction.

The study copy: the config's folder is copied into the work directory and its config rewritten with
``test_mode = true`` (the autopilot and the conditioner need it), ``session.fps`` from ``--fps``,
``session.episodes = 1``, ``[network]`` as above and, when the env config has ``max_steps``, ``max_steps =
fps * seconds``; an env without ``max_steps`` plays its own episode length.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import sys
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from pyodide_runtime.host.benchmarks import study_stats as S

__all__ = ["prepare_study", "study_run", "toml_dumps"]

#: Recorded in every page before its scripts run: long tasks, every status message the worker posts (its cumulative
#: tick counters, frame and confirmed frames) with the page's clock, and the main thread's time in the page's
#: handlers of the worker's messages and in its animation-frame callbacks (drawing), whatever the page's code.
_RECORDER = """
window.__study = { long: [], status: [], main: { message_ms: 0, messages: 0, raf_ms: 0, rafs: 0 } };
{
  const main = window.__study.main, raf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (cb) => raf((ts) => {
    const t = performance.now();
    try { cb(ts); } finally { main.raf_ms += performance.now() - t; main.rafs++; }
  });
}
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__study.long.push([e.startTime, e.duration]);
  }).observe({ entryTypes: ["longtask"] });
} catch (e) { window.__study.long_error = String(e); }
if (window.Worker) {
  const Base = window.Worker;
  window.Worker = class extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const d = e.data;
        if (!d || d.type !== "status" || !d.status) return;
        const s = d.status, c = s.tick_cost_ms || {};
        window.__study.status.push([performance.now(), s.frame, s.confirmed_frames, c.count || 0,
                                    (c.mean || 0) * (c.count || 0), c.max || 0]);
      });
    }
    set onmessage(fn) {
      const main = window.__study.main;
      super.onmessage = typeof fn !== "function" ? fn : (e) => {
        const t = performance.now();
        try { return fn.call(this, e); } finally { main.message_ms += performance.now() - t; main.messages++; }
      };
    }
    get onmessage() { return super.onmessage; }
  };
}
"""

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (result files name no home directories)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _log(message: str) -> None:
    print(f"[bench study] {message}", file=sys.stderr, flush=True)


# -- the study copy ---------------------------------------------------------------------------------------------

def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise ValueError(f"cannot write a {type(v).__name__} to TOML")


def toml_dumps(data: dict[str, Any]) -> str:
    """TOML text for plain data (tables of strings, numbers, booleans, lists and tables), as ``tomllib`` reads it."""
    lines: list[str] = []

    def table(d: dict[str, Any], path: list[str]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in d.items() if isinstance(v, dict)}
        if path and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        for k, v in scalars.items():
            lines.append(f"{_key(k)} = {_value(v)}")
        if scalars or (path and not tables):
            lines.append("")
        for k, v in tables.items():
            table(v, [*path, k])

    table(data, [])
    return "\n".join(lines).rstrip() + "\n"


def resolve_config(config: Path | None, example: str | None) -> tuple[Path, str]:
    """The study's config file and a name for it; ``ArgumentError`` for a missing file or an unknown example."""
    from pyodide_runtime.host.study_config import StudyConfigError, example_config, load_study_config

    if example is not None:
        try:
            path = example_config(example)
        except ValueError as exc:
            raise S.ArgumentError(f"--example: {exc}") from None
        name = example
    else:
        assert config is not None
        path = Path(config)
        if not path.is_file():
            raise S.ArgumentError(f"--config {config}: no such file")
        name = path.parent.name if path.stem == "study" else path.stem
    try:
        load_study_config(path)
    except StudyConfigError as exc:
        raise S.ArgumentError(f"the study config does not load: {exc}") from None
    return path, name


def study_seats(path: Path) -> tuple[int, int]:
    """``(participant pages, fps)`` of the study config at ``path`` (session defaults where it says nothing): the
    seats that ``[policies]`` play have no page."""
    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.host.study_config import load_study_config

    loaded = load_study_config(path)
    session = loaded.page.get("session") or {}
    players = int(session.get("players", SessionConfig.players)) - len(loaded.policies)
    return players, int(session.get("fps", SessionConfig.fps))


def prepare_study(path: Path, into: Path, *, fps: int, seconds: float, latency: list[float],
                  jitter: list[float]) -> tuple[Path, dict[str, Any]]:
    """Copy the study's folder into ``into`` and write the benchmark's config there; return it and what changed."""
    from pyodide_runtime.host.study_config import load_study_config

    folder = into / "study"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns(".git", "__pycache__", ".venv", "node_modules"))
    toml = path.suffix.lower() == ".toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8")) if toml else json.loads(path.read_text(encoding="utf-8"))
    raw["test_mode"] = True
    session = raw.setdefault("session", {})
    session["fps"] = int(fps)
    session["episodes"] = 1
    env_config = (raw.get("env") or {}).get("config") if toml else raw.get("env_config")
    changes: dict[str, Any] = {"test_mode": True, "session.fps": fps, "session.episodes": 1}
    if isinstance(env_config, dict) and "max_steps" in env_config:
        env_config["max_steps"] = max(1, round(fps * seconds))
        changes["env.config.max_steps"] = env_config["max_steps"]
    seats = {str(i): {"latency_ms": latency[i], "jitter_ms": jitter[i], "seed": 101 + i} for i in range(len(latency))}
    raw["network"] = {"seats": seats}
    changes["network.seats"] = seats
    out = folder / ("bench-study.toml" if toml else "bench-study.json")
    out.write_text(toml_dumps(raw) if toml else json.dumps(raw, indent=1))
    load_study_config(out)  # the copy must load as the original did
    return out, changes


# -- one run ------------------------------------------------------------------------------------------------------

def _read_bundle(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as z:
        meta = json.loads(z.read("metadata.json"))
        frames = list(csv.DictReader(io.StringIO(z.read("diagnostics/frames.csv").decode())))
        names = set(z.namelist())
        rollbacks = (list(csv.DictReader(io.StringIO(z.read("diagnostics/rollbacks.csv").decode())))
                     if "diagnostics/rollbacks.csv" in names else [])
    return {"meta": meta, "frames": frames, "rollbacks": rollbacks}


def seat_figures(bundle: dict[str, Any], page: dict[str, Any], status: dict[str, Any], *, fps: int,
                 warmup_s: float, stall_ms: float = 100.0) -> dict[str, Any]:
    """Per-seat figures from its export bundle (frames, rollbacks, metadata) and its page's recordings."""
    local = bundle["meta"].get("participant_local") or {}
    frames = sorted(bundle["frames"], key=lambda r: int(r["global_frame"]))
    confirmed = [float(r["confirmed_ms"]) for r in frames if r.get("confirmed_ms") not in (None, "")]
    first = [float(r["first_ms"]) for r in frames if r.get("first_ms") not in (None, "")]
    depths = [int(r["depth"]) for r in bundle["rollbacks"]]
    held = S.fps_held(confirmed, warmup_s * 1000)
    span_s = (max(confirmed) - min(first)) / 1000 if confirmed and first else 0.0
    # Tick cost: status windows once the steady part started (frame >= warmup frames).
    warm_frames = int(fps * warmup_s)
    rows = page.get("status") or []
    steady_rows = [r for r in rows if (r[1] or 0) >= warm_frames]
    base = [r for r in rows if (r[1] or 0) < warm_frames]
    b = max(base, key=lambda r: r[3]) if base else [0, 0, 0, 0, 0.0]  # the steady part starts at this sample
    windows = S.tick_windows([(r[3] - b[3], r[4] - b[4]) for r in steady_rows])
    steady_ms = sum(t * m for t, m in windows)
    advanced = (max((r[1] or 0) for r in steady_rows) - (b[1] or 0)) if steady_rows else 0
    cost = status.get("tick_cost_ms") or {}
    parts = _tick_parts(status.get("tick_parts_ms") or {})
    env_p50 = parts["p50"].get("env_step")
    env_mean = parts["mean"].get("env_step")
    stats = local.get("stats") or {}
    simulated = stats.get("frames_simulated") or (len(confirmed) + sum(depths))
    steady_t0 = min((r[0] for r in steady_rows), default=math.inf)
    long_steady = [d for start, d in (page.get("long") or []) if start >= steady_t0]
    return {
        "seat": local.get("seat", status.get("seat")),
        "conditions": status.get("conditions"),
        "outcome": status.get("outcome"),
        "confirmed_frames": len(confirmed),
        "fps_held": held["fps"],
        "steady": {"frames": held["frames"], "seconds": held["seconds"], "warmup_s": warmup_s},
        "tick_ms": {
            "mean": round(cost.get("mean") or 0.0, 2), "max": round(cost.get("max") or 0.0, 2),
            "p50": cost.get("p50"), "p95": cost.get("p95"), "p99": cost.get("p99"), "ticks": cost.get("count") or 0,
            "method": "worker tick cost (the Python tick plus the JS<->Python conversions), every tick of the session "
                      "(the first one, which builds the game, included): p50/p95/p99 are the worker's own "
                      "percentiles (upper bounds of 0.05 ms buckets), mean and max are exact",
        },
        # Where a tick goes: each part's median and mean per tick (status tick_parts_ms, docs/bridge.md).
        "tick_parts_ms": {**parts, "clock_resolution_ms": (status.get("tick_parts_ms") or {}).get("clock_resolution_ms"),
                          "method": "per part, the median (p50, upper bounds of 0.01 ms buckets) and mean of its time "
                                    "per tick, every tick of the session; a clock of 0.1 ms resolution (a page that "
                                    "is not cross-origin isolated) makes medians of parts under it 0 or 0.1: read "
                                    "the means for those"},
        # The worker's overhead above the env: the tick's median minus the env step's median (and the same with
        # means, which a coarse clock does not round to its resolution).
        "worker_overhead_ms": {
            "p50": round(cost["p50"] - env_p50, 3) if cost.get("p50") is not None and env_p50 is not None else None,
            "mean": (round((cost.get("mean") or 0.0) - env_mean, 3) if cost.get("count") and env_mean is not None
                     else None),
        },
        "main_thread_ms": _main_thread(status.get("main_thread_ms") or {}, page.get("main") or {},
                                       cost.get("count") or 0),
        "status_messages": len(rows),
        "tick_interval_ms": local.get("tick_intervals"),
        # All the worker's tick time over all frames it simulated (first simulations and resimulations); this
        # includes the first tick, which builds the game (and verifies its snapshots).
        "tick_ms_per_simulated_frame": (round((cost.get("mean") or 0.0) * (cost.get("count") or 0) / simulated, 2)
                                        if simulated else None),
        # Steady part: worker tick time per frame of play (its resimulations included).
        "steady_tick_ms_per_frame": round(steady_ms / advanced, 2) if advanced > 0 else None,
        "frames_simulated": simulated,
        "input_delay": _input_delay(bundle["meta"], stats, len(frames)),
        "rollbacks": len(depths),
        "rollback_depth_histogram": S.histogram(depths),
        "max_rollback_depth": max(depths, default=0),
        "resimulated_frames": sum(depths),
        "resimulated_per_s": round(sum(depths) / span_s, 2) if span_s > 0 else None,
        "stalls": S.stalls([t for t in first if confirmed and t >= min(confirmed) + warmup_s * 1000], stall_ms),
        "stalls_whole_session": S.stalls(first, stall_ms),
        "session_stall_count": status.get("stalls"),
        "long_tasks": {"count": len(long_steady), "max_ms": round(max(long_steady, default=0.0), 1),
                       "total_ms": round(sum(long_steady), 1),
                       "boot_count": len(page.get("long") or []) - len(long_steady)},
        "session_s": round(span_s, 2),
        "loopback_rtt_ms": status.get("rtt_ms"),  # the page's own probe: the path before the conditioner
        "transport": status.get("transport"),
        "policies": [_policy_figures(p) for p in (local.get("extra") or {}).get("policies") or ()],
    }


def _input_delay(meta: dict[str, Any], stats: dict[str, Any], frames: int) -> dict[str, Any]:
    """The input delay this seat played with: the configured start, and with ``adaptive_delay`` every change and
    how many frames each delay held for (from the session's ``input_delays`` diagnostics)."""
    config = (meta.get("canonical") or {}).get("config") or {}
    start = config.get("input_delay")
    changes = stats.get("input_delays")
    if not config.get("adaptive_delay") or changes is None:
        return {"adaptive": False, "start": start, "final": start, "frames_at": {str(start): frames}}
    held: dict[str, int] = {}
    at, delay = 0, start
    for change in changes:
        held[str(delay)] = held.get(str(delay), 0) + max(0, min(change["frame"], frames) - at)
        at, delay = max(at, min(change["frame"], frames)), change["delay"]
    held[str(delay)] = held.get(str(delay), 0) + max(0, frames - at)
    return {"adaptive": True, "start": start, "final": stats.get("input_delay"), "changes": len(changes),
            "frames_at": {k: v for k, v in sorted(held.items(), key=lambda kv: int(kv[0])) if v},
            "history": [dict(c) for c in changes]}


def _tick_parts(parts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each part's per-tick median and mean from the status's ``tick_parts_ms``."""
    named = parts.get("parts") or {}
    return {"p50": {k: v.get("p50") for k, v in named.items()},
            "mean": {k: v.get("mean_ms") for k, v in named.items()},
            "env_step_per_frame_ms": parts.get("env_step_per_frame_ms")}


def _main_thread(own: dict[str, Any], recorded: dict[str, Any], ticks: int) -> dict[str, Any]:
    """The main thread's time per tick: the page's own measure (``main_thread_ms`` in its status) and the
    recorder's (its handlers of the worker's messages plus its animation-frame callbacks, per worker tick)."""
    per_frame = own.get("per_frame") or {}
    total = (recorded.get("message_ms") or 0.0) + (recorded.get("raf_ms") or 0.0)
    return {
        "p50": per_frame.get("p50"), "p95": per_frame.get("p95"), "per_tick_mean": own.get("per_tick_mean_ms"),
        "recorded_per_tick_mean": round(total / ticks, 4) if ticks and recorded else None,
        "recorded": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in recorded.items()},
        "method": "p50/p95: per painted frame, its drawing plus the page's handling of the worker's messages since "
                  "the previous paint (the page's main_thread_ms); per_tick_mean: all of that over the worker's "
                  "ticks; recorded_per_tick_mean: the bench recorder's time in the page's worker-message handler "
                  "and animation-frame callbacks, over the worker's ticks",
    }


def _policy_figures(report: dict[str, Any]) -> dict[str, Any]:
    """A hosted policy seat's inference figures from the owning page's export (each decision's inference time, as
    the worker measured it around onnxruntime-web's ``run``)."""
    times = [d["inference_ms"] for d in report.get("decisions") or () if d.get("inference_ms") is not None]
    return {"agent": report.get("agent"), "seat": report.get("seat"), "decisions": len(report.get("decisions") or ()),
            "requests": report.get("requests"), "skipped": (report.get("runner") or {}).get("skipped"),
            "failures": len(report.get("failures") or ()), "inference_ms": S.percentiles(times),
            "model_bytes": (report.get("policy") or {}).get("model_bytes")}


def study_run(pw: Any, config: Path, workdir: Path, assets: Path | None, *, players: int, fps: int,
              seconds: float, warmup_s: float, latency: list[float], jitter: list[float],
              start_timeout: float = 600.0) -> dict[str, Any]:
    """Serve ``config``, play it with ``players`` browsers, and return the run's figures."""
    from pyodide_runtime.host.benchmarks.report import machine
    from pyodide_runtime.host.compare import compare
    from pyodide_runtime.host.headless import Player, StudyServer, wait_for
    from pyodide_runtime.host.validate import validate

    load_before = machine()["load_1min"]
    study, changes = prepare_study(config, workdir, fps=fps, seconds=seconds, latency=latency, jitter=jitter)
    rtt = latency[0] + latency[1] if players >= 2 else None
    _log(f"serving {config} (RTT {rtt} ms, jitter {jitter}, {fps} fps); [env] packages are prepared first")
    server = StudyServer(workdir / "server", study, assets=assets, env=None, start_timeout=start_timeout)
    server.__enter__()
    browsers: list[Any] = []
    try:
        for i in range(players):
            p = Player(pw, "ABCDEFGH"[i], workdir / "ABCDEFGH"[i])
            p.context.add_init_script(_RECORDER)
            browsers.append(p)
        t0 = time.monotonic()
        for i, p in enumerate(browsers):
            p.open(f"{server.url}/?participant={p.name}&autopilot=random&autopilot_seed={i + 1}")
        _log(f"{players} pages open at {server.url}; booting Pyodide and the study's packages")

        def playing() -> bool:
            sts = [p.status() for p in browsers]
            errors = [e for st in sts for e in (st.get("errors") or [])]
            if errors:
                raise RuntimeError(f"a page reported errors: {errors[:3]}")
            return all((st.get("frame") or 0) >= 1 for st in sts)

        wait_for(playing, start_timeout, "the first simulated frame on every page", 0.5)
        first_frame_s = time.monotonic() - t0
        _log(f"first frame after {first_frame_s:.1f} s; playing")
        total = changes.get("env.config.max_steps")
        deadline = time.monotonic() + (seconds * 6 + 120)
        last_note = time.monotonic()
        while not all(p.bundles() for p in browsers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the session did not end: {[p.status().get('phase') for p in browsers]}")
            if time.monotonic() - last_note > 5:
                sts = [p.status() for p in browsers]
                _log("  " + "; ".join(f"{p.name}: frame {st.get('frame')}/{total or '?'} confirmed "
                                      f"{st.get('confirmed_frames')} rollbacks {st.get('rollbacks')}"
                                      for p, st in zip(browsers, sts)))
                last_note = time.monotonic()
            time.sleep(0.5)
        bundles = [p.bundles()[0] for p in browsers]
        statuses = [p.status() for p in browsers]
        pages = [p.page.evaluate("window.__study") for p in browsers]
        _log("both exports saved; comparing and validating")
    finally:
        for p in browsers:
            p.close()
        server.__exit__(None, None, None)
    seats = [{"player": p.name, **seat_figures(_read_bundle(b), page, st, fps=fps, warmup_s=warmup_s),
              "bundle": b.name} for p, b, page, st in zip(browsers, bundles, pages, statuses)]
    seats.sort(key=lambda s: (s["seat"] is None, s["seat"]))
    identical = None
    differences = None
    if len(bundles) >= 2:
        result = compare(bundles[0], bundles[1])
        identical, differences = result.identical, result.total
    valid = [validate(b).ok for b in bundles]
    return {
        "rtt_ms": rtt, "latency_ms": latency, "jitter_ms": jitter, "fps": fps,
        "first_frame_s": round(first_frame_s, 2), "identical": identical, "differences": differences,
        "valid": valid, "load_1min_before": load_before, "load_1min_after": machine()["load_1min"],
        "study_changes": changes, "seats": seats,
    }


_STEP_FLOOR_JS = """
async (frames) => {
  const study = await (await fetch("/study.json", { cache: "no-store" })).json();
  const base = new URL(study.assets_url, location.href).href;
  const { loadRuntime, writeEnvFile } = await import(new URL(study.bridge_url + "loader.mjs", location.href).href);
  const { pyodide } = await loadRuntime({ assetsURL: base.endsWith("/") ? base : base + "/",
                                          packages: study.env.packages || [] });
  if (study.env.file) await writeEnvFile(pyodide, study.env.file);
  pyodide.globals.set("spec", study.env.spec);
  pyodide.globals.set("env_config", JSON.stringify(study.config.env_config ?? null));
  pyodide.globals.set("frames", frames);
  return JSON.parse(pyodide.runPython(`
import json, random, time
from pyodide_runtime import pyodide_compat
pyodide_compat.prepare()
from pyodide_runtime.envs.loading import load_game
game = load_game(spec, json.loads(env_config))
counts = [game.input_count(s) for s in range(len(game.seats))]
rng = random.Random(3)
episode = 1
game.reset(episode)
steps, gets, sets, renders = [], [], [], []
for i in range(frames):
    inputs = [rng.randrange(n) for n in counts]
    t = time.perf_counter()
    over = game.step(inputs).episode_over
    steps.append((time.perf_counter() - t) * 1000)
    if i % 5 == 0:
        t = time.perf_counter()
        state = game.get_state()
        gets.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        game.set_state(state)
        sets.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        game.render()
        renders.append((time.perf_counter() - t) * 1000)
    if over:
        episode += 1
        game.reset(episode)
json.dumps({"step": steps, "get_state": gets, "set_state": sets, "render": renders})
`));
}
"""


def step_floor(pw: Any, config: Path, workdir: Path, assets: Path | None, frames: int) -> dict[str, Any]:
    """The env's own cost in a bare Chromium page with the study's packages: ``Game.step`` and state save/restore
    through the runtime's adapter, no engine, no network (the main thread of a page, as fast as the worker)."""
    from pyodide_runtime.host.headless import Player, StudyServer

    _log(f"step floor: {frames} bare steps of the env in one page")
    with StudyServer(workdir / "server", config, assets=assets, env=None, start_timeout=600) as server:
        p = Player(pw, "floor", workdir / "floor")
        try:
            p.open(f"{server.url}/healthz")
            raw = p.page.evaluate(_STEP_FLOOR_JS, frames)
        finally:
            p.close()

    def summary(values: list[float]) -> dict[str, Any]:
        return {"count": len(values), "mean": round(sum(values) / len(values), 2) if values else None,
                **S.percentiles(values), "max": round(max(values), 2) if values else None}

    steps = raw["step"][min(10, len(raw["step"]) // 10):]  # the first steps warm caches up
    return {"frames": frames, "step_ms": summary(steps), "get_state_ms": summary(raw["get_state"]),
            "set_state_ms": summary(raw["set_state"]), "render_ms": summary(raw["render"]),
            "method": "Game.step with random inputs in a bare page (main thread) with the study's packages; the "
                      "first steps are left out; get_state, set_state and render (what the page draws each tick) "
                      "every 5th step; time.perf_counter"}


# -- the command ----------------------------------------------------------------------------------------------------

def parse_args(args: Any) -> dict[str, Any]:
    """Check a study run's arguments before anything starts; ``ArgumentError`` says what is wrong."""
    config, name = resolve_config(args.config, args.example)
    players, study_fps = study_seats(config)
    if players < 1:
        raise S.ArgumentError("the study has no participant seat: every seat is played by a policy")
    if args.fps is None:
        fps = study_fps
    else:
        try:
            fps = int(str(args.fps).strip())
        except ValueError:
            raise S.ArgumentError(f"--fps {args.fps!r}: a study run plays at one frame rate, e.g. --fps 30") from None
        if not 1 <= fps <= 240:
            raise S.ArgumentError(f"--fps {fps}: must be between 1 and 240")
    seconds = 30.0 if args.seconds is None else float(args.seconds)
    if not seconds > 0:
        raise S.ArgumentError(f"--seconds {args.seconds}: must be positive")
    warmup = float(args.warmup)
    if args.step_floor < 0:
        raise S.ArgumentError(f"--step-floor {args.step_floor}: a number of steps >= 0")
    if not 0 <= warmup < seconds:
        raise S.ArgumentError(f"--warmup {args.warmup}: must be >= 0 and shorter than --seconds ({seconds:g})")
    runs = S.condition_sets(args.latency_ms, args.jitter_ms, players)
    return {"config": config, "name": name, "players": players, "fps": fps, "seconds": seconds, "warmup": warmup,
            "runs": runs}


def run_study(args: Any) -> int:
    """``bench browser --config/--example``: one study run per condition set; table on stdout, JSON with --json."""
    import os
    import tempfile

    from pyodide_runtime.host.assets import AssetError, open_assets
    from pyodide_runtime.host.benchmarks.report import machine, print_table, write_results
    from pyodide_runtime.host.cli import CommandError

    try:
        opts = parse_args(args)
    except S.ArgumentError as exc:
        raise CommandError(str(exc)) from None
    from playwright.sync_api import sync_playwright

    try:
        env_assets = os.environ.get("PYODIDE_RUNTIME_ASSETS")
        assets = open_assets(args.assets or (Path(env_assets) if env_assets else None)).root
    except AssetError as exc:
        raise CommandError(f"the browser study run needs the self-hosted assets: {exc}") from exc
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-study-"))
    results: dict[str, Any] = {
        "suite": "browser-study", "study": opts["name"], "config": _shown(opts["config"]), "machine": machine(),
        "players": opts["players"], "fps": opts["fps"], "seconds": opts["seconds"], "warmup_s": opts["warmup"],
        "conditioning": "each seat delays the packets it sends by latency_ms + u * jitter_ms, u uniform in [-1, 1] "
                        "per packet (js_bridge/conditioner.mjs); RTT = sum of the two seats' latencies",
        "runs": [],
    }
    with sync_playwright() as pw:
        if args.step_floor:
            copy, _ = prepare_study(opts["config"], workdir / "floor", fps=opts["fps"], seconds=opts["seconds"],
                                    latency=opts["runs"][0][0], jitter=opts["runs"][0][1])
            results["step_floor"] = step_floor(pw, copy, workdir / "floor", assets, args.step_floor)
            f = results["step_floor"]
            _log(f"step floor: step p50 {f['step_ms']['p50']} ms, p99 {f['step_ms']['p99']} ms; "
                 f"get_state p50 {f['get_state_ms']['p50']} ms, set_state p50 {f['set_state_ms']['p50']} ms, "
                 f"render p50 {f['render_ms']['p50']} ms")
        for i, (latency, jitter) in enumerate(opts["runs"]):
            _log(f"run {i + 1}/{len(opts['runs'])}: latency {latency} ms, jitter {jitter} ms")
            row = study_run(pw, opts["config"], workdir / f"run{i + 1}", assets, players=opts["players"],
                            fps=opts["fps"], seconds=opts["seconds"], warmup_s=opts["warmup"], latency=latency,
                            jitter=jitter)
            results["runs"].append(row)
            _log(f"run {i + 1} done: fps held {[s['fps_held'] for s in row['seats']]}, "
                 f"identical {row['identical']}, valid {row['valid']}")
    results["machine_after"] = machine()
    table = [{"rtt_ms": r["rtt_ms"], "jitter_ms": r["jitter_ms"], "seat": s["seat"], "fps_held": s["fps_held"],
              "tick_p50": s["tick_ms"]["p50"], "tick_p95": s["tick_ms"]["p95"], "tick_p99": s["tick_ms"]["p99"],
              "tick_max": s["tick_ms"]["max"], "overhead_p50": s["worker_overhead_ms"]["p50"],
              "main_p50": s["main_thread_ms"]["p50"], "delay": s["input_delay"]["final"],
              "rollbacks": s["rollbacks"], "max_depth": s["max_rollback_depth"],
              "resim_per_s": s["resimulated_per_s"], "stalls_100ms": s["stalls"]["count"],
              "long_tasks": s["long_tasks"]["count"], "identical": r["identical"]}
             for r in results["runs"] for s in r["seats"]]
    print_table(f"study run: {opts['name']} at {opts['fps']} fps", table, list(table[0]) if table else [])
    write_results(args.json, results)
    bad = [r for r in results["runs"] if r["identical"] is False or not all(r["valid"])]
    if bad:
        print(f"{len(bad)} run(s) produced exports that differ or do not validate", file=sys.stderr)
        return 1
    return 0
