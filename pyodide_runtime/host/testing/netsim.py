"""A seeded virtual clock and network: per-link delay, jitter, loss, duplication, reordering, outages.

Links are directional, so asymmetric conditions are a matter of giving ``(a, b)`` and ``(b, a)`` different
:class:`LinkSpec` values. A partition is an outage on every link between two groups of seats.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from pyodide_runtime.host.study_config import NETWORK_CONDITIONS

__all__ = ["LinkSpec", "Network", "VirtualClock"]


def _default(key: str) -> float:
    """The default of network condition ``key``, the same as the page's conditioner uses."""
    return float(NETWORK_CONDITIONS[key].default)


_PROBABILITIES = tuple(key for key, c in NETWORK_CONDITIONS.items() if c.probability)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """Conditions of one direction of a link. Probabilities are per packet; outages are ``(start_ms, end_ms)``.

    The condition names and defaults are those of the page's conditioner
    (:data:`pyodide_runtime.host.study_config.NETWORK_CONDITIONS`).
    """

    latency_ms: float = _default("latency_ms")
    jitter_ms: float = _default("jitter_ms")
    loss: float = _default("loss")
    duplicate: float = _default("duplicate")
    reorder: float = _default("reorder")
    reorder_ms: float = _default("reorder_ms")
    outages: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= NETWORK_CONDITIONS[name].high:
                raise ValueError(f"LinkSpec.{name} must be a probability")
        if self.latency_ms < 0 or self.jitter_ms < 0 or self.reorder_ms < 0:
            raise ValueError("LinkSpec delays must be non-negative")


@dataclass(slots=True)
class VirtualClock:
    """Milliseconds of simulated time."""

    now_ms: float = 0.0

    def advance_to(self, t: float) -> None:
        if t < self.now_ms:
            raise ValueError("a virtual clock cannot go backwards")
        self.now_ms = t


@dataclass
class Network:
    """Packets in flight between seats. ``send`` at some time, ``deliver`` what has arrived by a later time."""

    seed: int = 0
    default: LinkSpec = field(default_factory=LinkSpec)
    links: dict[tuple[int, int], LinkSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queues: dict[int, list[tuple[float, int, int, bytes]]] = {}
        self._counter = 0
        self.stats = {"sent": 0, "lost": 0, "duplicated": 0, "reordered": 0, "delivered": 0, "outage_drops": 0}

    def link(self, src: int, dst: int) -> LinkSpec:
        return self.links.get((src, dst), self.default)

    def partition(self, start_ms: float, end_ms: float, group_a: list[int], group_b: list[int]) -> None:
        """Drop every packet between the two groups during ``[start_ms, end_ms)``."""
        for a in group_a:
            for b in group_b:
                for src, dst in ((a, b), (b, a)):
                    spec = self.link(src, dst)
                    self.links[(src, dst)] = LinkSpec(
                        spec.latency_ms, spec.jitter_ms, spec.loss, spec.duplicate, spec.reorder, spec.reorder_ms,
                        spec.outages + ((start_ms, end_ms),),
                    )

    def send(self, now_ms: float, src: int, dst: int, data: bytes) -> None:
        spec = self.link(src, dst)
        rng = self._rng
        self.stats["sent"] += 1
        if any(a <= now_ms < b for a, b in spec.outages):
            self.stats["outage_drops"] += 1
            return
        if spec.loss and rng.random() < spec.loss:
            self.stats["lost"] += 1
            return
        copies = 1
        if spec.duplicate and rng.random() < spec.duplicate:
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            delay = spec.latency_ms + (rng.uniform(0, spec.jitter_ms) if spec.jitter_ms else 0.0)
            if spec.reorder and rng.random() < spec.reorder:
                delay += rng.uniform(0, spec.reorder_ms)
                self.stats["reordered"] += 1
            self._counter += 1
            heapq.heappush(self._queues.setdefault(dst, []), (now_ms + delay, self._counter, src, data))

    def deliver(self, now_ms: float, dst: int) -> list[tuple[int, bytes]]:
        """Packets for ``dst`` that have arrived by ``now_ms``, in arrival order, as ``(src, data)``."""
        q = self._queues.get(dst)
        out: list[tuple[int, bytes]] = []
        while q and q[0][0] <= now_ms:
            _, _, src, data = heapq.heappop(q)
            out.append((src, data))
        self.stats["delivered"] += len(out)
        return out

    def next_arrival(self, dst: int) -> float | None:
        q = self._queues.get(dst)
        return q[0][0] if q else None
