"""What the participant page is told about the runtime itself, from one Python source.

The page's JavaScript keeps no copies of Python's defaults and constants: the server serves them in ``/study.json``
under ``page_config`` (built by :func:`page_config`), and ``js_bridge/`` reads them from there:

- ``session_defaults``: every :class:`pyodide_runtime.config.SessionConfig` field with its default (the page's
  frame rate when the study leaves ``session.fps`` out);
- ``p2p_timeout_ms``: how long WebRTC may take to open before the relay takes over, unless the study says
  (:data:`pyodide_runtime.host.study_config.P2P_TIMEOUT_MS`);
- ``network_conditions``: the test network conditions, in order, each with its default, its largest value and its
  kind (:data:`pyodide_runtime.host.study_config.NETWORK_CONDITIONS`);
- ``close_codes`` and ``final_close_codes``: the WebSocket close codes of :data:`CLOSE_CODES`, by name, and those
  after which the page does not reconnect;
- ``relay_broadcast``: the seat byte of a relay frame meant for every other seat of the room (:data:`BROADCAST`);
- ``participant_keys``: the URL parameters that carry the participant id, in order of preference
  (:data:`pyodide_runtime.host.server.participants.PARTICIPANT_PARAMS`).

Documented in ``docs/server.md`` (``/study.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyodide_runtime.config import session_defaults
from pyodide_runtime.host.server.participants import PARTICIPANT_PARAMS
from pyodide_runtime.host.study_config import NETWORK_CONDITIONS, P2P_TIMEOUT_MS

__all__ = ["BROADCAST", "CLOSE_CODES", "CloseCode", "close_code", "page_config"]

#: Binary relay frames addressed to this seat go to every other seat of the room.
BROADCAST = 0xFF


@dataclass(frozen=True)
class CloseCode:
    """A WebSocket close code the server uses, and whether the page reconnects after it."""

    code: int
    #: When the server closes with it (as ``docs/server.md`` says).
    when: str
    #: Nothing to come back to: the page does not reconnect with its seat token.
    final: bool


#: Every close code the server closes a ``/ws`` socket with, by name: 1000-1009 from RFC 6455, 4000-4999 our own.
CLOSE_CODES: dict[str, CloseCode] = {
    "left": CloseCode(1000, "after 'leave'", final=True),
    "going_away": CloseCode(1001, "the server is shutting down", final=False),
    "policy": CloseCode(1008, "too many messages dropped by the rate limit, or no 'join' in time", final=False),
    "too_big": CloseCode(1009, "a message larger than --max-message-kb", final=False),
    "replaced": CloseCode(4000, "the seat was reclaimed by a newer connection (a reload)", final=True),
    "expired": CloseCode(4001, "the room expired", final=True),
    "refused": CloseCode(4003, "the join was refused; an error message came first", final=True),
    "screened": CloseCode(4004, "the room failed the latency screening ('screened' came first); the page joins again "
                                "with a fresh join to meet another partner", final=True),
}


def close_code(name: str) -> int:
    """The close code called ``name`` in :data:`CLOSE_CODES`."""
    return CLOSE_CODES[name].code


def page_config() -> dict[str, Any]:
    """``/study.json`` ``page_config``: the runtime's defaults and constants the page reads (module docstring)."""
    return {
        "session_defaults": session_defaults(),
        "p2p_timeout_ms": P2P_TIMEOUT_MS,
        "network_conditions": {key: condition.to_json() for key, condition in NETWORK_CONDITIONS.items()},
        "close_codes": {name: c.code for name, c in CLOSE_CODES.items()},
        "final_close_codes": [c.code for c in CLOSE_CODES.values() if c.final],
        "participant_keys": list(PARTICIPANT_PARAMS),
        "relay_broadcast": BROADCAST,
    }
