"""Recompute confirmed records from their inputs alone: the check that rows are a pure function of
(config, seeds, confirmed inputs)."""

from __future__ import annotations

from collections.abc import Sequence

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import FrameLog, FrameRecord
from pyodide_runtime.protocol.messages import AWAY_BIT
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import make_predictor
from pyodide_runtime.sync.timeline import Timeline

__all__ = ["replay"]


def replay(game: Game, config: SessionConfig, records: Sequence[FrameRecord]) -> FrameLog:
    """Simulate ``game`` from scratch with the inputs (and away flags) of ``records``, no network, no prediction.

    Returns the resulting log; its confirmed records must equal ``records`` canonically.
    """
    players = config.players
    queues = InputQueues([game.default_input(s) for s in range(players)], 0)
    for rec in records:
        for seat in range(players):
            queues.append(seat, rec.inputs[seat] | (AWAY_BIT if rec.away[seat] else 0))
    log = FrameLog(config.frame_hash, config.hash_interval)
    stats = {"rollbacks": 0, "resimulated_frames": 0, "max_rollback_depth": 0}
    timeline = Timeline(game, config, queues, log, make_predictor("default", queues.defaults), stats)
    timeline.start(0.0)
    while timeline.frame < len(records) and not timeline.finished:
        timeline.advance(0.0)
    timeline.promote(0.0)
    return log
