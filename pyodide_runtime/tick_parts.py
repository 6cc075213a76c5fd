"""Where a page's tick goes: cumulative totals and per-tick distributions of its parts.

:class:`TickParts` keeps, for each named part (``session``, ``env_step``, ``snapshot``...), the total time, and a
fixed-bucket histogram of the part's time per tick (0.01 ms buckets up to 20 ms, plus one bucket for exactly zero),
from which :meth:`TickParts.summary` reads the median and high percentiles. Recording a tick is a few additions;
reading a summary walks the buckets, and is only done when a status is built.

Diagnostics only: nothing here reaches canonical data.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["BUCKET_MS", "Histogram", "TickParts"]

#: Width of a histogram bucket (ms); times of 20 ms or more land in the last bucket (reported as the max).
BUCKET_MS = 0.01
_BUCKETS = 2002  # [0] exactly zero, [1 + i] for (i * BUCKET_MS, (i + 1) * BUCKET_MS], last one for >= 20 ms


class Histogram:
    """Count, total, max and a fixed-bucket distribution of non-negative times (ms)."""

    __slots__ = ("count", "total", "max", "_buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self._buckets = array("I", bytes(4 * _BUCKETS))

    def add(self, ms: float) -> None:
        """Record one sample (negative values, from clock jitter, count as zero)."""
        self.count += 1
        if ms <= 0.0:
            self._buckets[0] += 1
            return
        self.total += ms
        if ms > self.max:
            self.max = ms
        i = int(ms / BUCKET_MS) + 1
        self._buckets[i if i < _BUCKETS else _BUCKETS - 1] += 1

    def percentile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (0 for the zero bucket, at most the max);
        ``None`` if empty."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Sequence[float]) -> list[float | None]:
        """:meth:`percentile` of each of ``qs`` (ascending), in one walk over the buckets."""
        if self.count == 0:
            return [None] * len(qs)
        ranks = [max(1, math.ceil(q * self.count)) for q in qs]
        top = round(self.max, 3)  # no bucket's upper bound is reported above the largest sample
        out: list[float | None] = []
        seen = 0
        for i, n in enumerate(self._buckets):
            if not n:
                continue
            seen += n
            while len(out) < len(ranks) and seen >= ranks[len(out)]:
                out.append(0.0 if i == 0 else top if i == _BUCKETS - 1 else min(top, round(i * BUCKET_MS, 4)))
            if len(out) == len(ranks):
                return out
        return out + [top] * (len(ranks) - len(out))

    def summary(self) -> dict[str, Any]:
        """``{count, total_ms, mean_ms, max_ms, p50, p95, p99}`` (percentiles per sample, ms)."""
        return {"count": self.count, "total_ms": round(self.total, 3),
                "mean_ms": round(self.total / self.count, 4) if self.count else None,
                "max_ms": round(self.max, 3),
                **dict(zip(("p50", "p95", "p99"), self.percentiles((0.5, 0.95, 0.99))))}


class TickParts:
    """Per-part histograms of the time each tick spent in it (every part gets a sample on every tick)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.parts = {name: Histogram() for name in self.names}
        self._items = tuple(self.parts.items())
        self.ticks = 0

    def record(self, times: Mapping[str, float]) -> None:
        """One tick's times by part (ms); a part missing from ``times`` took 0 on this tick (each as
        :meth:`Histogram.add`, inlined: this runs on every tick)."""
        self.ticks += 1
        get = times.get
        for name, hist in self._items:
            ms = get(name, 0.0)
            hist.count += 1
            if ms <= 0.0:
                hist._buckets[0] += 1
                continue
            hist.total += ms
            if ms > hist.max:
                hist.max = ms
            i = int(ms / BUCKET_MS) + 1
            hist._buckets[i if i < _BUCKETS else _BUCKETS - 1] += 1

    def summary(self) -> dict[str, dict[str, Any]]:
        """Each part's :meth:`Histogram.summary` by name."""
        return {name: hist.summary() for name, hist in self.parts.items()}
