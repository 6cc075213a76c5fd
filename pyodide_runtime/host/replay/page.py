"""What the replay page's worker calls inside Pyodide: open a bundle's replay, then one call per shown frame.

    replay = open_replay(bundle_bytes, options_json)   # options: spec, bots, snapshot_every
    info = replay_info(replay)                          # JSON text: frames, episodes, seats, markers, ...
    view = replay.view(frame)                           # a dict; the render payload is bytes or draw-list JSON
"""

from __future__ import annotations

import json
from typing import Any

from pyodide_runtime.host.replay.core import DEFAULT_SNAPSHOT_EVERY, Replay

__all__ = ["open_replay", "replay_info"]


def open_replay(data: Any, options: str | dict[str, Any] = "{}") -> Replay:
    """A :class:`Replay` of the bundle ``data`` (bytes, or a JavaScript ``Uint8Array`` proxy)."""
    to_bytes = getattr(data, "to_bytes", None)
    raw = to_bytes() if callable(to_bytes) else bytes(data)
    opts = json.loads(options) if isinstance(options, str) else dict(options)
    return Replay(raw, spec=opts.get("spec") or None, bots=opts.get("bots") or None,
                  snapshot_every=int(opts.get("snapshot_every") or DEFAULT_SNAPSHOT_EVERY))


def replay_info(replay: Replay) -> str:
    """:meth:`Replay.info` as JSON text."""
    return json.dumps(replay.info())
