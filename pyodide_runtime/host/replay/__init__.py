"""Replay an export bundle: re-simulate it from its confirmed inputs, view it in the browser, export a video.

:class:`Replay` (pure Python, CPython and Pyodide) rebuilds the study's game and steps it to any confirmed frame;
:mod:`pyodide_runtime.host.replay.video` rasterises and encodes frames in CPython; :mod:`pyodide_runtime.host.replay.server`
serves the replay page. See ``docs/replay.md``.
"""

from pyodide_runtime.host.replay.core import (
    DEFAULT_SNAPSHOT_EVERY, Marker, Replay, ReplayError, bots_from_metadata, observation_digest,
)

__all__ = ["Replay", "ReplayError", "Marker", "observation_digest", "bots_from_metadata", "DEFAULT_SNAPSHOT_EVERY"]
