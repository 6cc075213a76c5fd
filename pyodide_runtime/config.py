"""Session configuration, validated once up front.

Both peers must run with the same :class:`SessionConfig`; the handshake compares :meth:`SessionConfig.digest`.
Per-episode seeds are derived deterministically from the session seed, so they never travel on the wire.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields

from pyodide_runtime.canonical import digest

__all__ = ["ConfigError", "SessionConfig", "PREDICTIONS", "session_defaults"]

#: Names of the built-in prediction policies (see :mod:`pyodide_runtime.sync.prediction`).
PREDICTIONS = ("repeat", "default")


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything both peers must agree on before frame 0.

    Times are in milliseconds, counts in frames unless a name says otherwise.
    """

    #: Number of human seats (one peer per seat).
    players: int = 2
    #: Simulation rate.
    fps: int = 30
    #: Frames between sampling a local input and executing it.
    input_delay: int = 2
    #: How many frames the simulation may run past the confirmed frame before it stalls.
    max_prediction: int = 8
    #: Episodes to play; the session is complete when all of them are confirmed.
    episodes: int = 1
    #: Session seed; episode ``k`` is reset with :meth:`episode_seed` ``(k)``.
    seed: int = 0
    #: Prediction policy for missing remote inputs: ``"repeat"`` (last known input) or ``"default"``.
    prediction: str = "repeat"
    #: Most frames of away-default input committed ahead of wall time while away (the lease actually used covers
    #: twice the observed gap between ticks, so a tab ticking at 1 Hz keeps its partner running).
    away_lease_frames: int = 75
    #: A peer away longer than this ends the session (partial, data kept).
    away_timeout_ms: int = 120_000
    #: A peer silent longer than this (and not announced away) counts as disconnected.
    disconnect_timeout_ms: int = 5_000
    #: Silence allowed from a peer that announced it is away (its tab may be frozen).
    away_silence_timeout_ms: int = 120_000
    #: Confirmed-frame state hashes are exchanged (and, when sampled, full records hashed) every this many frames.
    hash_interval: int = 30
    #: ``"sampled"``, ``"full"`` or ``"bytes"``: what the confirmed-frame hash chain covers and how (see
    #: :mod:`pyodide_runtime.framelog`; ``"bytes"`` suits large numeric observations).
    frame_hash: str = "sampled"
    #: Most frames simulated by one tick call (bounds the cost of a catch-up).
    max_frames_per_tick: int = 8
    #: A tick that is at least this many frames behind wall time fast-forwards with the away default input.
    fast_forward_threshold: int = 15
    #: Time sync: the peer ahead waits when it leads by at least this many frames.
    time_sync_threshold: int = 2
    #: How often HELLO is resent during the handshake.
    handshake_resend_ms: int = 100
    #: Wall time the live timeline holds (no frames simulated, packets still exchanged) when it enters the next
    #: episode, so the page can show a countdown between episodes; 0 holds nothing. Never changes the data.
    between_episodes_ms: int = 0
    #: Silence allowed from a peer the study server reported disconnected (its page may reload and rejoin from
    #: its last checkpoint); 0: no rejoin, a disconnected peer is waited for no longer than any other.
    rejoin_grace_ms: int = 0
    #: Each peer chooses its own input delay, between ``min_input_delay`` and ``max_input_delay``, from the round
    #: trips it measures and the frame cost the page reports (:meth:`Session.note_frame_cost`), starting at
    #: ``input_delay``. Off: the delay stays ``input_delay``. Never changes the data (see docs/parity.md).
    adaptive_delay: bool = False
    #: Lowest input delay the adaptive delay may choose (frames).
    min_input_delay: int = 1
    #: Highest input delay the adaptive delay may choose (frames).
    max_input_delay: int = 8

    def __post_init__(self) -> None:
        def require(name: str, ok: bool, rule: str) -> None:
            if not ok:
                raise ConfigError(f"SessionConfig.{name} = {getattr(self, name)!r}: {rule}")

        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "prediction":
                require(f.name, isinstance(value, str) and value in PREDICTIONS, f"must be one of {PREDICTIONS}")
            elif f.name == "frame_hash":
                require(f.name, value in ("sampled", "full", "bytes"), "must be 'sampled', 'full' or 'bytes'")
            elif f.name == "adaptive_delay":
                require(f.name, type(value) is bool, "must be true or false")
            else:
                require(f.name, type(value) is int, "must be an int")
        require("players", 1 <= self.players <= 8, "must be between 1 and 8")
        require("fps", 1 <= self.fps <= 240, "must be between 1 and 240")
        require("input_delay", 0 <= self.input_delay <= 30, "must be between 0 and 30")
        require("max_prediction", 0 <= self.max_prediction <= 120, "must be between 0 and 120")
        require("episodes", self.episodes >= 1, "must be at least 1")
        require("seed", 0 <= self.seed < 2**63, "must be between 0 and 2**63 - 1")
        require("away_lease_frames", 1 <= self.away_lease_frames <= 100_000, "must be between 1 and 100000")
        for name in ("away_timeout_ms", "disconnect_timeout_ms", "away_silence_timeout_ms", "handshake_resend_ms"):
            require(name, getattr(self, name) > 0, "must be positive")
        require("rejoin_grace_ms", self.rejoin_grace_ms >= 0, "must not be negative")
        require("hash_interval", self.hash_interval >= 1, "must be at least 1")
        require("max_frames_per_tick", self.max_frames_per_tick >= 1, "must be at least 1")
        require("fast_forward_threshold", self.fast_forward_threshold >= 2, "must be at least 2")
        require("time_sync_threshold", self.time_sync_threshold >= 1, "must be at least 1")
        require("between_episodes_ms", 0 <= self.between_episodes_ms <= 600_000, "must be between 0 and 600000")
        require("min_input_delay", 0 <= self.min_input_delay <= 30, "must be between 0 and 30")
        require("max_input_delay", 0 <= self.max_input_delay <= 30, "must be between 0 and 30")
        require("max_input_delay", self.max_input_delay >= self.min_input_delay,
                f"must be at least min_input_delay ({self.min_input_delay})")
        if self.adaptive_delay:
            require("input_delay", self.min_input_delay <= self.input_delay <= self.max_input_delay,
                    f"with adaptive_delay, must be between min_input_delay ({self.min_input_delay}) and "
                    f"max_input_delay ({self.max_input_delay})")

    @property
    def frame_ms(self) -> float:
        """Wall time of one frame."""
        return 1000.0 / self.fps

    def episode_seed(self, episode: int) -> int:
        """The reset seed of episode ``episode`` (0-based), a pure function of the session seed."""
        raw = hashlib.sha256(f"pyodide_runtime/episode-seed/{self.seed}/{episode}".encode()).digest()
        return int.from_bytes(raw[:4], "big") & 0x7FFFFFFF

    def to_dict(self) -> dict[str, int | str]:
        """Plain-data form (for metadata and the CLI summary).

        The adaptive-delay fields appear only with ``adaptive_delay`` on (without it the bounds change nothing), so
        a config without it has the same form, digest and export metadata as before these fields existed."""
        out = asdict(self)
        if not self.adaptive_delay:
            for name in _ADAPTIVE:
                del out[name]
        return out

    def digest(self) -> bytes:
        """16-byte canonical digest of the fields that must match between peers (checked in the handshake)."""
        return bytes.fromhex(digest(self.to_dict(), size=16))


#: Fields left out of :meth:`SessionConfig.to_dict` while ``adaptive_delay`` is off.
_ADAPTIVE = ("adaptive_delay", "min_input_delay", "max_input_delay")


def session_defaults() -> dict[str, int | str]:
    """Every :class:`SessionConfig` field with its default: what a study gets for a setting it leaves out.

    The study server hands this to the participant page (``/study.json`` ``page_config.session_defaults``), so the
    page never keeps its own copy of a default such as ``fps``.
    """
    return {f.name: f.default for f in fields(SessionConfig)}
