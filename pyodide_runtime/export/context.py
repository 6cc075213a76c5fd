"""What the writer needs besides the frame log: provenance (:class:`ExportContext`) and per-participant
diagnostics (:class:`Diagnostics`), both plain data that the session or the page can fill in."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from pyodide_runtime import __version__

__all__ = ["ExportContext", "Diagnostics", "DEFAULT_INLINE_LIMIT"]

#: JSON cells longer than this many characters go to blobs.csv (images and other large arrays).
DEFAULT_INLINE_LIMIT = 16384


@dataclass
class ExportContext:
    """Provenance of one participant's export.

    ``config`` is a :class:`~pyodide_runtime.config.SessionConfig` or its ``to_dict()``; ``env`` is the game's
    ``describe()``. ``wheel_sha256`` and ``pyodide_version`` are passed through as given by the page.
    ``agents``/``seats`` default to ``env["agents"]``/``env["seats"]``.
    """

    study: str
    session: str
    participant: str
    seat: int
    config: Mapping[str, Any]
    env: Mapping[str, Any]
    agents: tuple[str, ...] = ()
    seats: tuple[str, ...] = ()
    package_version: str = __version__
    wheel_sha256: str | None = None
    pyodide_version: str | None = None
    python_version: str = field(default_factory=platform.python_version)
    inline_limit: int = DEFAULT_INLINE_LIMIT
    #: Every package the page loaded (``{"name", "version", "sha256"}``), as the page reports it; ``None`` outside it.
    packages: tuple[dict[str, Any], ...] | None = None
    #: The study's ONNX policies (agent, seat, model sha256 and size, how it acts, the page that ran it); ``None``
    #: without policies. The same in every participant's export.
    policies: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        to_dict = getattr(self.config, "to_dict", None)
        self.config = dict(to_dict() if callable(to_dict) else self.config)
        self.env = dict(self.env)
        self.agents = tuple(str(a) for a in (self.agents or self.env.get("agents") or ()))
        self.seats = tuple(str(s) for s in (self.seats or self.env.get("seats") or ()))
        if not self.agents:
            self.agents = self.seats
        missing = [s for s in self.seats if s not in self.agents]
        if missing:
            raise ValueError(f"seats {missing} are not among the agents {list(self.agents)}")
        if type(self.seat) is not int or self.seat < 0:
            raise ValueError(f"seat must be a non-negative int, got {self.seat!r}")
        if self.packages is not None:
            self.packages = tuple({"name": str(p.get("name")), "version": p.get("version"), "sha256": p.get("sha256")}
                                  for p in sorted(self.packages, key=lambda p: str(p.get("name"))))
        if self.inline_limit < 64:
            raise ValueError("inline_limit must be at least 64 characters")

    @classmethod
    def from_session(cls, session: Any, *, study: str, session_id: str, participant: str, **kw: Any) -> ExportContext:
        """Build from a :class:`~pyodide_runtime.session.Session` (its game, config and seat)."""
        game = session.game
        return cls(
            study=study, session=session_id, participant=participant, seat=session.seat, config=session.config,
            env=game.describe(), agents=tuple(game.agents), seats=tuple(game.seats), **kw,
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportContext:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["agents"] = tuple(kw.get("agents", ()))
        kw["seats"] = tuple(kw.get("seats", ()))
        return cls(**kw)


def _as_dict(item: Any, names: Sequence[str]) -> dict[str, Any]:
    """An event object, a mapping or a tuple, as a dict of the given field names (missing ones ``None``)."""
    if isinstance(item, Mapping):
        return {n: item.get(n) for n in names}
    if isinstance(item, (tuple, list)):
        return {n: (item[i] if i < len(item) else None) for i, n in enumerate(names)}
    return {n: getattr(item, n, None) for n in names}


@dataclass
class Diagnostics:
    """Per-participant facts for the non-canonical files. Every field is optional.

    ``outcome`` and ``end_reason`` say how the session ended on this side (``complete``, ``partial``, or
    ``error`` when this side's env raised; its description and traceback are ``stats["error"]``).

    List items may be dicts, tuples in field order, or the session's event objects:
    ``rollbacks`` (frame, depth, seats, at_ms), ``away`` (seat, start_frame, end_frame, start_ms, end_ms, mode),
    ``fast_forwards`` (start_frame, end_frame, at_ms), ``desyncs`` (frame, seat, local_hash, remote_hash),
    ``rejoins`` (event, seat, frame, gap_ms, from_frame, replayed_frames, echoed_frames: a partner reported
    reconnecting or rejoined, or this side resumed from its checkpoint).
    ``rendered`` maps a global frame to what the page showed for it; ``network`` holds RTT series, loss,
    frames-ahead series and rejected-message counts; ``stats`` the session's own counters
    (``Session.diagnostics()``); ``tick_intervals_ms`` the page's tick intervals (summarised, not stored), or
    ``tick_stats`` a summary the page computed itself.
    """

    user_agent: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    outcome: str | None = None
    end_reason: str | None = None
    tick_intervals_ms: Sequence[float] = ()
    tick_stats: Mapping[str, Any] | None = None
    rendered: Mapping[int, Any] = field(default_factory=dict)
    rollbacks: Sequence[Any] = ()
    away: Sequence[Any] = ()
    fast_forwards: Sequence[Any] = ()
    desyncs: Sequence[Any] = ()
    rejoins: Sequence[Any] = ()
    network: Mapping[str, Any] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    ROLLBACK_FIELDS = ("frame", "depth", "seats", "at_ms")
    AWAY_FIELDS = ("seat", "start_frame", "end_frame", "start_ms", "end_ms", "mode")
    FAST_FORWARD_FIELDS = ("start_frame", "end_frame", "at_ms")
    DESYNC_FIELDS = ("frame", "seat", "local_hash", "remote_hash")
    REJOIN_FIELDS = ("event", "seat", "frame", "gap_ms", "from_frame", "replayed_frames", "echoed_frames")

    #: The one place where events become diagnostics: an event's ``to_dict()`` ``type`` -> (the list it goes to,
    #: {its key: the row's key}). The ``ended`` event gives ``outcome`` and ``end_reason`` instead.
    EVENT_ROWS: ClassVar[dict[str, tuple[str, dict[str, str]]]] = {
        "rollback": ("rollbacks", {"frame": "frame", "depth": "depth", "seats": "seats"}),
        "fast_forward": ("fast_forwards", {"start": "start_frame", "end": "end_frame"}),
        "desync": ("desyncs", {k: k for k in DESYNC_FIELDS}),
        "peer_reconnecting": ("rejoins", {"type": "event", "seat": "seat", "frame": "frame"}),
        "peer_rejoined": ("rejoins", {"type": "event", "seat": "seat", "frame": "frame", "gap_ms": "gap_ms"}),
        "resumed": ("rejoins", {"type": "event", "from_frame": "from_frame", "replayed_frames": "replayed_frames",
                                "echoed_frames": "echoed_frames"}),
    }

    @classmethod
    def from_events(cls, events: Sequence[Any], **kw: Any) -> Diagnostics:
        """Collect rollbacks, fast-forwards, desyncs and the end reason from a session's events (the event
        objects, or their ``to_dict()``)."""
        rows: dict[str, list[dict[str, Any]]] = {"rollbacks": [], "fast_forwards": [], "desyncs": [], "rejoins": []}
        for e in events:
            d = e if isinstance(e, Mapping) else e.to_dict()
            kind = d["type"]
            if kind in cls.EVENT_ROWS:
                name, keys = cls.EVENT_ROWS[kind]
                rows[name].append({row_key: d[key] for key, row_key in keys.items()})
            elif kind == "ended":
                kw.setdefault("outcome", d["outcome"])
                kw.setdefault("end_reason", d["reason"])
        for name, items in rows.items():
            kw.setdefault(name, items)
        return cls(**kw)

    def tick_summary(self) -> dict[str, Any] | None:
        """Count, mean, median, p95 and max of the tick intervals (``tick_stats`` when the page computed them;
        ``None`` if neither was given)."""
        ticks = sorted(float(t) for t in self.tick_intervals_ms)
        if not ticks:
            return dict(self.tick_stats) if self.tick_stats is not None else None
        n = len(ticks)
        return {
            "count": n, "mean_ms": sum(ticks) / n, "median_ms": ticks[n // 2],
            "p95_ms": ticks[min(n - 1, int(0.95 * n))], "max_ms": ticks[-1], "min_ms": ticks[0],
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for checkpoints)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["network"], out["stats"], out["extra"] = dict(self.network), dict(self.stats), dict(self.extra)
        out["rendered"] = {str(k): v for k, v in dict(self.rendered).items()}
        for name, names in (("rollbacks", self.ROLLBACK_FIELDS), ("away", self.AWAY_FIELDS),
                            ("fast_forwards", self.FAST_FORWARD_FIELDS), ("desyncs", self.DESYNC_FIELDS),
                            ("rejoins", self.REJOIN_FIELDS)):
            out[name] = [_as_dict(x, names) for x in getattr(self, name)]
        out["tick_intervals_ms"] = list(self.tick_intervals_ms)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnostics:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["rendered"] = {int(k): v for k, v in dict(kw.get("rendered") or {}).items()}
        return cls(**kw)
