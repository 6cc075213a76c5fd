"""Server settings: network limits, origins, relay, uploads, latency screening and the session cap, validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyodide_runtime.host.server.origins import normalise_origin
from pyodide_runtime.host.server.rooms import RoomSettings

__all__ = ["ServerSettings"]


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server enforces. Sizes are in bytes, times in seconds, rates in messages per second."""

    rooms: RoomSettings = field(default_factory=RoomSettings)
    #: Largest WebSocket message accepted; a bigger one closes the connection with code 1009.
    max_message_bytes: int = 64 * 1024
    #: Token bucket per connection: sustained rate and burst. Messages over the limit are dropped and counted.
    rate: float = 200.0
    burst: float = 400.0
    #: A connection that has had this many messages dropped by the rate limit is closed with code 1008.
    rate_drop_limit: int = 2000
    #: A WebSocket that has not joined a room this long after opening is closed with code 1008.
    join_timeout: float = 30.0
    #: An HTTP connection that is idle, or still sending its request headers, this long is closed (slowloris).
    idle_timeout: float = 15.0
    #: Most WebSocket connections at once.
    max_connections: int = 4000
    #: Origins allowed to open WebSockets besides the page's own; ``"*"`` allows any.
    allow_origins: tuple[str, ...] = ()
    #: Tell every room to use the relay instead of a direct connection.
    force_relay: bool = False
    #: ICE servers handed to the page for WebRTC (RTCIceServer dicts).
    ice_servers: tuple[dict, ...] = ()
    #: Where uploaded bundles are stored; ``None`` disables uploads.
    data_dir: Path | None = None
    max_upload_bytes: int = 64 * 1024 * 1024
    #: WebSocket ping interval that detects dead connections.
    heartbeat: float = 20.0
    #: How long shutdown waits for uploads and other requests in flight.
    shutdown_timeout: float = 10.0
    #: Latency screening: a full room whose largest reported round trip exceeds this (ms) is closed and its pages
    #: are never paired together again. ``None`` turns screening off.
    max_rtt_ms: float | None = None
    #: Screening waits at most this long after the room filled for every seat's report; then it decides on what came.
    screening_timeout: float = 15.0
    #: Most rooms that may become full over the server's life; ``None`` for no cap. Also caps ``rooms.max_sessions``
    #: (the smaller of the two applies, and both then hold it).
    max_sessions: int | None = None
    #: The researcher dashboard's token (``/admin``); ``None`` turns the dashboard off.
    admin_token: str | None = None

    def __post_init__(self) -> None:
        if self.max_message_bytes < 1024:
            raise ValueError("max message size must be at least 1024 bytes")
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        if self.join_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError("join and idle timeouts must be positive")
        if self.rate_drop_limit < 1 or self.max_connections < 1 or self.max_upload_bytes < 1:
            raise ValueError("limits must be positive")
        if self.admin_token is not None and (len(self.admin_token) < 16 or not self.admin_token.isprintable()
                                             or self.admin_token != self.admin_token.strip()):
            raise ValueError("the admin token must be at least 16 printable characters, without surrounding spaces")
        object.__setattr__(self, "allow_origins", tuple(normalise_origin(o) for o in self.allow_origins))
        if self.max_rtt_ms is not None and not (math.isfinite(self.max_rtt_ms) and self.max_rtt_ms > 0):
            raise ValueError("max_rtt_ms must be a positive number of milliseconds")
        if not self.screening_timeout > 0:
            raise ValueError("screening_timeout must be positive")
        caps = [c for c in (self.max_sessions, self.rooms.max_sessions) if c is not None]
        if caps:
            cap = min(caps)
            if cap < 1:
                raise ValueError("max_sessions must be at least 1")
            object.__setattr__(self, "max_sessions", cap)
            if self.rooms.max_sessions != cap:
                object.__setattr__(self, "rooms", replace(self.rooms, max_sessions=cap))
