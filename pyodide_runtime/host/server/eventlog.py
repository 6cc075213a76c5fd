"""Structured logs: one JSON object per line on stderr, one line per event."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["EventLog"]


class EventLog:
    """Write ``{"ts": ..., "event": name, **fields}`` lines; ``ts`` is UTC ISO-8601 with milliseconds."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._clock = clock

    def __call__(self, event: str, **fields: Any) -> None:
        now = self._clock()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        line = json.dumps({"ts": stamp, "event": event, **fields}, default=str, separators=(",", ":"))
        stream = self._stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed stderr must never take the server down
            pass
