"""A session's states and how it ended: :class:`SessionState`, :class:`Outcome` and :class:`EndCause`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = ["SessionState", "Outcome", "EndCause", "End"]


class SessionState(StrEnum):
    HANDSHAKE = "handshake"  #: exchanging hellos; no frame simulated yet
    RUNNING = "running"
    DRAINING = "draining"  #: every episode confirmed; waiting for the peers to acknowledge our inputs
    ENDED = "ended"


class Outcome(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    ERROR = "error"  #: our own env raised


class EndCause(Enum):
    """Why a session ended; :meth:`End.message` words it with the cause's detail."""

    ALL_CONFIRMED = "all_confirmed"
    CLOSED = "closed"  #: the page closed the session (detail: reason)
    ENV_ERROR = "env_error"  #: our env raised (detail: reason, from the error description)
    AWAY_TIMEOUT = "away_timeout"  #: this participant was away too long (detail: limit_ms)
    HANDSHAKE_FAILED = "handshake_failed"  #: detail: seat, reason
    PEER_LEFT = "peer_left"  #: its goodbye said so (detail: seat, why)
    PEER_ENV_ERROR = "peer_env_error"  #: its goodbye said its env raised (detail: seat)
    PEER_GONE = "peer_gone"  #: the study server saw it leave (detail: seat, reason)
    PEER_GONE_BEFORE_START = "peer_gone_before_start"  #: detail: seat, reason
    PEER_SILENT = "peer_silent"  #: detail: seat, limit_ms
    PEER_AWAY_TIMEOUT = "peer_away_timeout"  #: detail: seat, limit_ms

    @property
    def template(self) -> str:
        return _TEMPLATES[self]


_TEMPLATES = {
    EndCause.ALL_CONFIRMED: "all episodes confirmed",
    EndCause.CLOSED: "{reason}",
    EndCause.ENV_ERROR: "{reason}",
    EndCause.AWAY_TIMEOUT: "away longer than {limit_ms} ms",
    EndCause.HANDSHAKE_FAILED: "handshake with seat {seat} failed: {reason}",
    EndCause.PEER_LEFT: "seat {seat} left ({why})",
    EndCause.PEER_ENV_ERROR: "seat {seat} stopped: its env raised an error",
    EndCause.PEER_GONE: "seat {seat} {reason}",
    EndCause.PEER_GONE_BEFORE_START: "seat {seat} {reason} before the session started",
    EndCause.PEER_SILENT: "seat {seat} disconnected (silent for {limit_ms} ms)",
    EndCause.PEER_AWAY_TIMEOUT: "seat {seat} away longer than {limit_ms} ms",
}


@dataclass(frozen=True)
class End:
    """How a session ended: its outcome, the cause and the cause's detail."""

    outcome: Outcome
    cause: EndCause
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """The cause in words (the session's ``end_reason``)."""
        return self.cause.template.format(**self.detail)
