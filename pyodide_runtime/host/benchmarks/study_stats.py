"""Argument parsing and statistics of ``bench browser --config/--example`` (the study run), without a browser.

Everything here works on plain numbers, so the unit tests check it on synthetic timelines:

- :func:`per_seat` reads ``--latency-ms 25,40`` / ``--latency-ms 25`` (one value for every seat), and
  :func:`condition_sets` splits ``25/50/75`` into one study run per set;
- :func:`fps_held` is confirmed frames per second of wall time over the steady part of a run, from the export's
  ``diagnostics/frames.csv`` ``confirmed_ms`` column (the worker's clock when each frame was confirmed);
- :func:`stalls` finds gaps longer than a threshold between two frames' first simulations (``first_ms``);
- :func:`tick_windows` turns the worker's cumulative tick counters, as seen in successive status messages, into
  ``(ticks, mean ms)`` windows (a window is one status message to the next); the study run sums them over the
  steady part for its worker time per frame of play. Tick percentiles come from the worker's own histogram
  (``tick_cost_ms``), not from these windows; :func:`tick_distribution` (tick-weighted window means) is kept for
  callers that only have the counters;
- :func:`percentiles` and :func:`histogram`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ArgumentError", "per_seat", "condition_sets", "percentiles", "histogram", "fps_held", "stalls",
           "tick_windows", "tick_distribution"]


class ArgumentError(ValueError):
    """A bad command-line value; the message says what to write instead."""


def per_seat(text: str, seats: int, name: str) -> list[float]:
    """``"25"`` -> ``[25.0] * seats``; ``"25,40"`` -> ``[25.0, 40.0]`` when ``seats == 2``; else ``ArgumentError``."""
    parts = [p.strip() for p in str(text).split(",")]
    if any(p == "" for p in parts):
        raise ArgumentError(f"{name} {text!r}: an empty value; write one number for every seat, or one per seat "
                            f"separated by commas (e.g. {name} 25 or {name} {','.join(['25'] * seats)})")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ArgumentError(f"{name} {text!r}: {p!r} is not a number of milliseconds") from None
        if not math.isfinite(v) or v < 0:
            raise ArgumentError(f"{name} {text!r}: {p!r} must be a number of milliseconds >= 0")
        values.append(v)
    if len(values) == 1:
        return values * seats
    if len(values) != seats:
        raise ArgumentError(f"{name} {text!r} has {len(values)} values but the study has {seats} seats: give one "
                            f"value for all seats or exactly one per seat ({name} {','.join(['25'] * seats)})")
    return values


def condition_sets(latency: str, jitter: str, seats: int) -> list[tuple[list[float], list[float]]]:
    """One ``(latency per seat, jitter per seat)`` per study run: ``/`` separates runs, ``,`` seats.

    ``--latency-ms 25/50/75 --jitter-ms 10`` is three runs with the same jitter; ``--jitter-ms`` has either one
    set or as many as ``--latency-ms``.
    """
    lat = [per_seat(x, seats, "--latency-ms") for x in str(latency).split("/")]
    jit_sets = str(jitter).split("/")
    if len(jit_sets) not in (1, len(lat)):
        raise ArgumentError(f"--jitter-ms {jitter!r} has {len(jit_sets)} runs ('/'-separated) but --latency-ms "
                            f"{latency!r} has {len(lat)}: give one jitter for all runs or one per run")
    jit = [per_seat(x, seats, "--jitter-ms") for x in jit_sets]
    if len(jit) == 1:
        jit = jit * len(lat)
    for la, ji in zip(lat, jit):
        for seat, (l, j) in enumerate(zip(la, ji)):
            if j > l:
                raise ArgumentError(f"seat {seat}: jitter {j:g} ms is larger than latency {l:g} ms; a packet cannot "
                                    "arrive before it was sent (the page clamps the delay at 0, which would skew it)")
    return list(zip(lat, jit))


def percentiles(values: Iterable[float], ps: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles ``{"p50": .., "p95": .., "p99": ..}`` (``None`` for no values)."""
    v = sorted(float(x) for x in values)
    out: dict[str, float | None] = {}
    for p in ps:
        key = f"p{p:g}"
        if not v:
            out[key] = None
            continue
        rank = max(1, math.ceil(p / 100 * len(v)))
        out[key] = round(v[rank - 1], 2)
    return out


def histogram(values: Iterable[int]) -> dict[str, int]:
    """``{"1": 12, "2": 3, ...}``: how often each value occurs, in increasing order (string keys, for JSON)."""
    counts = Counter(int(x) for x in values)
    return {str(k): counts[k] for k in sorted(counts)}


def fps_held(confirmed_ms: Iterable[float], warmup_ms: float) -> dict[str, Any]:
    """Confirmed frames per second of wall time, after the first ``warmup_ms`` of confirmations.

    The steady part starts ``warmup_ms`` after the first confirmation and ends at the last one; frames confirmed
    after its start count. ``fps`` is ``None`` when the steady part is empty.
    """
    times = sorted(float(t) for t in confirmed_ms)
    if len(times) < 2:
        return {"fps": None, "frames": len(times), "seconds": 0.0}
    start = times[0] + warmup_ms
    end = times[-1]
    if end <= start:
        return {"fps": None, "frames": len(times), "seconds": 0.0}
    frames = sum(1 for t in times if start < t <= end)
    seconds = (end - start) / 1000
    return {"fps": round(frames / seconds, 2), "frames": frames, "seconds": round(seconds, 2)}


def stalls(first_ms: Sequence[float], threshold_ms: float = 100.0) -> dict[str, Any]:
    """Gaps longer than ``threshold_ms`` between consecutive frames' first simulations (frame order)."""
    gaps = [b - a for a, b in zip(first_ms, first_ms[1:]) if b - a > threshold_ms]
    return {"count": len(gaps), "max_ms": round(max(gaps), 1) if gaps else 0.0, "total_ms": round(sum(gaps), 1),
            "threshold_ms": threshold_ms}


def tick_windows(samples: Iterable[tuple[float, float]]) -> list[tuple[int, float]]:
    """``(ticks, mean ms)`` per window between successive cumulative ``(count, total_ms)`` samples.

    Samples may repeat or arrive out of order (they are sorted by count); windows without ticks are skipped.
    """
    out: list[tuple[int, float]] = []
    prev_count, prev_total = 0.0, 0.0
    for count, total in sorted((float(c), float(t)) for c, t in samples):
        ticks = int(round(count - prev_count))
        if ticks > 0:
            out.append((ticks, max(0.0, (total - prev_total) / ticks)))
            prev_count, prev_total = count, total
    return out


def tick_distribution(windows: Sequence[tuple[int, float]]) -> dict[str, Any]:
    """Tick-weighted p50/p95/p99 of the window means, and how fine the windows were."""
    expanded = [mean for ticks, mean in windows for _ in range(ticks)]
    sizes = sorted(t for t, _ in windows)
    return {**percentiles(expanded), "ticks": len(expanded), "windows": len(windows),
            "window_ticks_median": sizes[len(sizes) // 2] if sizes else None,
            "single_tick_windows": sum(1 for t in sizes if t == 1)}
