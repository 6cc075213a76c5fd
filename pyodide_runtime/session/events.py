"""What a session reports from a tick: one small frozen class per event, each turned into data by ``to_dict()``.

``to_dict()`` is the only conversion of an event into data: the page gets it as is, and the export derives its
diagnostics rows from it (:meth:`pyodide_runtime.export.context.Diagnostics.from_events`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, ClassVar

from pyodide_runtime.session.state import EndCause, Outcome

__all__ = [
    "Event", "Started", "RollbackEvent", "EpisodeEnded", "DesyncDetected", "PeerAway", "PeerBack", "FastForward",
    "Stalled", "HandshakeFailed", "SessionEnded", "PeerReconnecting", "PeerRejoined", "Resumed", "InputDelayChanged",
]


class Event:
    """Base of the session's events; ``TYPE`` is the ``"type"`` of :meth:`to_dict`."""

    __slots__ = ()
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data: ``{"type": TYPE, field: value, ...}`` (tuples as lists, enums as values)."""
        out: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v.value if isinstance(v, Enum) else v
        return out


@dataclass(frozen=True, slots=True)
class Started(Event):
    """The handshake completed; frame 0 starts now."""

    TYPE: ClassVar[str] = "started"
    now_ms: float


@dataclass(frozen=True, slots=True)
class RollbackEvent(Event):
    """Frames ``frame ..`` were resimulated (``depth`` of them) because ``seats`` were mispredicted."""

    TYPE: ClassVar[str] = "rollback"
    frame: int
    depth: int
    seats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EpisodeEnded(Event):
    """Episode ``episode`` ended, confirmed, at global frame ``last_frame`` after ``frames`` steps."""

    TYPE: ClassVar[str] = "episode_ended"
    episode: int
    last_frame: int
    frames: int


@dataclass(frozen=True, slots=True)
class DesyncDetected(Event):
    """Seat ``seat`` reported a different confirmed-state hash for global frame ``frame``."""

    TYPE: ClassVar[str] = "desync"
    frame: int
    seat: int
    local_hash: str
    remote_hash: str


@dataclass(frozen=True, slots=True)
class PeerAway(Event):
    """Seat ``seat`` announced it is away from global frame ``frame`` on."""

    TYPE: ClassVar[str] = "peer_away"
    seat: int
    frame: int


@dataclass(frozen=True, slots=True)
class PeerBack(Event):
    """Seat ``seat`` plays again from global frame ``frame`` on."""

    TYPE: ClassVar[str] = "peer_back"
    seat: int
    frame: int


@dataclass(frozen=True, slots=True)
class FastForward(Event):
    """Frames ``start .. end-1`` were simulated in one catch-up tick."""

    TYPE: ClassVar[str] = "fast_forward"
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Stalled(Event):
    """The simulation reached the prediction window at ``frame`` and waits for ``seats``."""

    TYPE: ClassVar[str] = "stalled"
    frame: int
    confirmed: int
    seats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class InputDelayChanged(Event):
    """The adaptive input delay became ``delay`` at local frame ``frame``: the input sampled at frame ``f >= frame``
    is executed at ``f + delay``. ``rtt_ms`` is the smoothed round trip behind the choice (``None`` before any)."""

    TYPE: ClassVar[str] = "input_delay"
    frame: int
    delay: int
    rtt_ms: float | None


@dataclass(frozen=True, slots=True)
class HandshakeFailed(Event):
    """Seat ``seat`` runs something incompatible."""

    TYPE: ClassVar[str] = "handshake_failed"
    seat: int
    reason: str


@dataclass(frozen=True, slots=True)
class PeerReconnecting(Event):
    """The study server reported seat ``seat`` disconnected at our frame ``frame``: it may reload and rejoin, so
    its silence is allowed for ``rejoin_grace_ms``."""

    TYPE: ClassVar[str] = "peer_reconnecting"
    seat: int
    frame: int


@dataclass(frozen=True, slots=True)
class PeerRejoined(Event):
    """Seat ``seat`` rejoined from a checkpoint (its ``Resume`` arrived) at our frame ``frame``, after ``gap_ms``
    of silence."""

    TYPE: ClassVar[str] = "peer_rejoined"
    seat: int
    frame: int
    gap_ms: float


@dataclass(frozen=True, slots=True)
class Resumed(Event):
    """This session was rebuilt from a checkpoint: ``replayed_frames`` confirmed frames replayed, then it ran on
    from frame ``from_frame`` with ``echoed_frames`` of its own inputs as its peers held them."""

    TYPE: ClassVar[str] = "resumed"
    from_frame: int
    replayed_frames: int
    echoed_frames: int


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """The session is over: ``outcome`` is complete, partial or error (our env raised); ``cause`` says why in a
    machine-readable way and ``reason`` in words."""

    TYPE: ClassVar[str] = "ended"
    outcome: Outcome
    reason: str
    cause: EndCause

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "ended", "outcome", "reason", "cause"}``: the cause is an :class:`EndCause` value, for code to
        branch on; ``reason`` words it for people (the export records the outcome and the words)."""
        return {"type": self.TYPE, "outcome": self.outcome.value, "reason": self.reason, "cause": self.cause.value}
