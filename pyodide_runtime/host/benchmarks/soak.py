"""Soak: a long two-peer session at 30 fps in virtual time, with faults throughout (``bench soak``).

The session plays Coin Chase for ``minutes`` of simulated time (30-second episodes) over a seeded network with
latency, jitter, loss, reordering and duplication, plus a partition every few minutes and away periods (hidden,
worker-throttled and frozen tabs) on alternating seats. Memory is sampled along the way.

What grows and what must not: a session keeps every confirmed frame record (the export is built from them) and
every confirmed input, so memory grows linearly with frames played, by design. Everything else must stay
bounded whatever the length: rollback snapshots, speculative records, pending rollbacks, remote hashes waiting
for comparison, and packets in flight. :func:`run_soak` reports the bytes per frame (the slope of traced memory
against confirmed frames), the residual around that line, and the peak size of each bounded structure.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.session import Session
from pyodide_runtime.host.testing.harness import AwaySpan, random_policy, run_peers
from pyodide_runtime.host.testing.netsim import LinkSpec, Network

__all__ = ["fault_schedule", "run_soak", "BOUNDED"]

#: Structures that must stay bounded however long a session runs.
BOUNDED = ("snapshots", "speculative", "used_inputs", "mispredicted", "carried", "remote_hashes", "in_flight")
_EPISODE_FRAMES = 900
_COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"


def fault_schedule(minutes: float, seed: int) -> tuple[list[tuple[float, float]], list[AwaySpan]]:
    """Partitions (``(start_ms, end_ms)``) and away spans spread over ``minutes`` of play, seeded."""
    rng = random.Random(f"soak/{seed}")
    end = minutes * 60_000
    partitions = []
    t = 40_000.0
    while t < end - 10_000:
        partitions.append((t, t + rng.choice((1_000, 2_000, 3_000))))
        t += 240_000
    away = []
    t, i = 80_000.0, 0
    while t < end - 30_000:
        mode = ("hidden", "worker", "frozen")[i % 3]
        end_ms = t + rng.uniform(5_000, 20_000)
        if mode == "frozen":  # browsers freeze only hidden pages: the page is hidden (and says so) first
            away.append(AwaySpan(i % 2, t, t + 3_000, "hidden"))
            away.append(AwaySpan(i % 2, t + 3_000, end_ms, mode))
        else:
            away.append(AwaySpan(i % 2, t, end_ms, mode))
        t += 360_000 if i % 3 == 2 else 120_000
        i += 1
    return partitions, away


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


def _bounded_sizes(sessions: list[Session], net: Network) -> dict[str, int]:
    sizes = dict.fromkeys(BOUNDED, 0)
    for s in sessions:
        tl, log = s.timeline, s.log
        sizes["snapshots"] = max(sizes["snapshots"], tl.snapshot_count)
        sizes["speculative"] = max(sizes["speculative"], len(log._speculative))
        sizes["used_inputs"] = max(sizes["used_inputs"], len(tl._used))
        sizes["mispredicted"] = max(sizes["mispredicted"], len(tl._mispredicted))
        sizes["carried"] = max(sizes["carried"], len(log._carry))
        sizes["remote_hashes"] = max(sizes["remote_hashes"], *(len(p.remote_hashes) for p in s.peers.values()))
    sizes["in_flight"] = sum(len(q) for q in net._queues.values())
    return sizes


def _slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    return slope, my - slope * mx


def run_soak(minutes: float = 60.0, seed: int = 0, sample_every_s: float = 30.0, trace: bool = True) -> dict[str, Any]:
    """Play ``minutes`` of a faulty two-peer session in virtual time; parity, faults seen and memory over time."""
    from pyodide_runtime.envs.loading import load_game

    episodes = max(1, round(minutes * 60 * 30 / _EPISODE_FRAMES))
    config = SessionConfig(episodes=episodes, seed=seed)
    env_config = {"max_steps": _EPISODE_FRAMES, "target_score": 1_000_000}
    sessions = [Session(load_game(_COIN_CHASE, env_config), config, s) for s in range(2)]
    partitions, away = fault_schedule(minutes, seed)
    net = Network(seed=seed, default=LinkSpec(latency_ms=50, jitter_ms=30, loss=0.03, duplicate=0.02, reorder=0.03))
    for start, end in partitions:
        net.partition(start, end, [0], [1])
    samples: list[dict[str, Any]] = []
    peaks = dict.fromkeys(BOUNDED, 0)
    next_sample = [0.0]
    t0 = time.perf_counter()

    def on_tick(seat: int, now_ms: float, session: Session) -> None:
        sizes = _bounded_sizes(sessions, net)
        for k, v in sizes.items():
            if v > peaks[k]:
                peaks[k] = v
        if seat == 0 and now_ms >= next_sample[0]:
            next_sample[0] = now_ms + sample_every_s * 1000
            samples.append({
                "virtual_s": round(now_ms / 1000, 1), "wall_s": round(time.perf_counter() - t0, 2),
                "confirmed_frames": min(s.confirmed_frames for s in sessions),
                "traced_bytes": tracemalloc.get_traced_memory()[0] if trace else None, "rss_bytes": _rss_bytes(),
                **sizes,
            })

    if trace:
        tracemalloc.start()
    try:
        result = run_peers(
            lambda seat: sessions[seat].game, config, network=net, seed=seed, policy=random_policy(seed),
            away=away, sessions=sessions, on_tick=on_tick, tick_jitter_ms=2.0, max_ms=minutes * 60_000 * 1.5 + 60_000,
        )
        next_sample[0] = 0.0
        on_tick(0, result.end_ms, sessions[0])  # the final sample
    finally:
        if trace:
            tracemalloc.stop()
    wall = time.perf_counter() - t0
    report: dict[str, Any] = {
        "minutes": minutes, "seed": seed, "episodes": episodes, "frames_per_episode": _EPISODE_FRAMES,
        "wall_seconds": round(wall, 1), "virtual_seconds": round(result.end_ms / 1000, 1),
        "outcomes": [p.outcome for p in result.peers], "end_reasons": [p.session.end_reason for p in result.peers],
        "identical": result.identical(),
        "confirmed_frames": [p.session.confirmed_frames for p in result.peers],
        "faults": {
            "partitions": len(partitions), "away_spans": [f"seat{a.seat}:{a.mode}:{(a.end_ms - a.start_ms) / 1000:.0f}s"
                                                        for a in away],
            "network": result.network, "rollbacks": result.total("rollbacks"),
            "resimulated_frames": result.total("resimulated_frames"), "stalls": result.total("stalls"),
            "fast_forward_frames": result.total("fast_forward_frames"), "rejected": result.rejected(),
        },
        "bounded_peaks": peaks, "samples": samples,
    }
    traced = [(s["confirmed_frames"], s["traced_bytes"]) for s in samples if s["traced_bytes"] is not None]
    if len(traced) >= 3:
        xs, ys = [float(x) for x, _ in traced], [float(y) for _, y in traced]
        slope, intercept = _slope(xs, ys)
        residuals = [y - (slope * x + intercept) for x, y in zip(xs, ys)]
        half = len(xs) // 2
        report["memory"] = {
            "bytes_per_frame": round(slope, 1),  # both peers' records, inputs and kept state, per confirmed frame
            "bytes_per_frame_first_half": round(_slope(xs[: half + 1], ys[: half + 1])[0], 1),
            "bytes_per_frame_second_half": round(_slope(xs[half:], ys[half:])[0], 1),
            "residual_range_bytes": round(max(residuals) - min(residuals)),
            "traced_peak_bytes": max(ys),
            "rss_first_bytes": samples[0]["rss_bytes"], "rss_last_bytes": samples[-1]["rss_bytes"],
        }
    return report


def add_parser(sub: Any) -> None:
    """``bench soak``: the parser, for :mod:`pyodide_runtime.host.commands.bench`."""
    from pathlib import Path

    p = sub.add_parser("soak", help="a long faulty two-peer session in virtual time: parity and bounded memory")
    p.add_argument("--minutes", type=float, default=60.0, help="simulated minutes of play (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=float, default=30.0, help="virtual seconds between memory samples")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(bench_run=run_cli)


def run_cli(args: Any) -> int:
    """Run ``bench soak``; exit 1 unless both peers completed with identical data."""
    import json
    import sys

    from pyodide_runtime.host.cli import CommandError

    if args.minutes <= 0 or args.sample_every <= 0:
        raise CommandError("--minutes and --sample-every must be positive")
    print(f"bench soak: {args.minutes:g} simulated minutes at 30 fps with faults…", file=sys.stderr)
    report = run_soak(args.minutes, args.seed, args.sample_every)
    mem = report.get("memory", {})
    print(f"{report['confirmed_frames'][0]:,} frames in {report['wall_seconds']} s: outcomes {report['outcomes']}, "
          f"identical {report['identical']}; {report['faults']['rollbacks']:,} rollbacks, "
          f"{report['faults']['fast_forward_frames']:,} fast-forward frames")
    if mem:
        print(f"memory: {mem['bytes_per_frame']} bytes per confirmed frame (both peers), residual range "
              f"{mem['residual_range_bytes']:,} bytes; bounded peaks {report['bounded_peaks']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0 if report["identical"] and report["outcomes"] == ["complete", "complete"] else 1
