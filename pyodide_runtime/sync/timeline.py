"""The rollback engine: simulate frames with known or predicted inputs, snapshot, roll back and resimulate.

Frames are global (they keep counting across episodes). The live game is always *ready to simulate*
:attr:`Timeline.frame`: when a step ends an episode, the next episode is reset right away (speculatively, if the
end was predicted), and the snapshot of a frame is taken before it is simulated, so it includes that reset.

Snapshots are only taken for frames simulated with at least one predicted input: a rollback can only target
such a frame (the first one whose prediction was wrong). They are pruned once the frame is confirmed, because a
late input can only belong to a frame past the confirmed frame. That is the whole retention rule. It holds in
resimulation too: a rollback resimulates the frames whose inputs are all known by now without a snapshot
(``stats["resim_snapshots_skipped"]`` counts them), since no later rollback can target them.
"""

from __future__ import annotations

from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.base import Game
from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord
from pyodide_runtime.protocol.messages import AWAY_BIT
from pyodide_runtime.snapshot import SnapshotError
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import Predictor

__all__ = ["Timeline", "SnapshotError"]

_ACTION_MASK = AWAY_BIT - 1


class Timeline:
    """Owns the game's simulated timeline for one peer."""

    __slots__ = (
        "game", "config", "queues", "log", "predict", "frame", "episode", "episode_frame",
        "_snapshots", "_used", "pending_rollback", "_mispredicted", "stats", "_clock", "_present",
        "simulated", "_episodes", "_max_prediction",
    )

    def __init__(
        self, game: Game, config: SessionConfig, queues: InputQueues, log: FrameLog, predict: Predictor,
        stats: dict[str, int],
    ) -> None:
        self.game = game
        self.config = config
        self.queues = queues
        self.log = log
        self.predict = predict
        self.frame = 0
        self.episode = 0
        self.episode_frame = 0
        self._snapshots: dict[int, tuple[Any, int, int]] = {}
        self._used: dict[int, tuple[int, ...]] = {}
        self.pending_rollback: int | None = None
        self._mispredicted: set[int] = set()
        self.stats = stats
        self._clock = 0.0
        self._present = (False,) * queues.seats
        self.simulated = 0
        self._episodes = config.episodes
        self._max_prediction = config.max_prediction

    # -- lifecycle --------------------------------------------------------------------------------------------
    def check_snapshots(self) -> None:
        """Reset episode 0 and round-trip a snapshot; raise :class:`SnapshotError` if the game cannot do it."""
        try:
            self.game.reset(self.config.episode_seed(0))
            self.game.set_state(self.game.get_state())
        except NotImplementedError as exc:
            raise SnapshotError(
                f"{type(self.game).__name__} cannot be snapshotted ({exc or 'get_state/set_state not implemented'}); "
                "rollback needs snapshots, so the session refuses to run it"
            ) from exc

    def start(self, now_ms: float) -> None:
        """Reset episode 0 (frame 0 is next)."""
        self._clock = now_ms
        self._reset(0, 0)

    @property
    def finished(self) -> bool:
        """All episodes ended on the current (possibly speculative) timeline."""
        return self.episode >= self._episodes

    def _reset(self, episode: int, start_frame: int) -> None:
        seed = self.config.episode_seed(episode)
        result = self.game.reset(seed)
        self.log.add_episode_start(EpisodeStart(episode, seed, start_frame, result.observations, result.infos))

    # -- simulation -------------------------------------------------------------------------------------------
    def can_advance(self) -> bool:
        """Whether the next frame may be simulated (not finished, not past the prediction window)."""
        if self.episode >= self._episodes:
            return False
        return self.frame - self.queues.confirmed_count() < self._max_prediction

    def advance(self, now_ms: float) -> FrameRecord:
        """Simulate :attr:`frame` with known inputs where available and predictions elsewhere."""
        self._clock = now_ms
        return self._simulate(self.frame)

    def _simulate(self, g: int) -> FrameRecord:
        queues = self.queues
        values = queues.at(g)
        predicted = -1 in values
        if predicted:
            predict = self.predict
            for seat, v in enumerate(values):
                if v < 0:
                    values[seat] = predict(seat, g, queues.last(seat))
            self._snapshots[g] = (self.game.get_state(), self.episode, self.episode_frame)
            self._used[g] = tuple(values)
        if max(values) >= AWAY_BIT:
            away = tuple(v >= AWAY_BIT for v in values)
            values = [v & _ACTION_MASK for v in values]
        else:
            away = self._present
        res = self.game.step(values)
        over = bool(res.episode_over)
        episode = self.episode
        rec = FrameRecord(
            g, episode, self.episode_frame, tuple(values), away, res.actions, res.observations, res.rewards,
            res.terminated, res.truncated, res.infos, over, predicted, self._clock,
        )
        self.log.add(rec)
        self.frame = g + 1
        self.simulated += 1
        if over:
            self.episode = episode = episode + 1
            self.episode_frame = 0
            if episode < self._episodes:
                self._reset(episode, g + 1)
        else:
            self.episode_frame += 1
        return rec

    # -- inputs arriving --------------------------------------------------------------------------------------
    def check_inputs(self, seat: int, first: int, end: int) -> None:
        """Newly known inputs for ``seat`` in frames ``first .. end-1``: schedule a rollback if mispredicted."""
        used = self._used
        if not used:  # no frame was simulated with a prediction: nothing to check
            return
        known = self.queues.values(seat, first, end)
        for g in range(first, min(end, self.frame)):
            vals = used.get(g)
            if vals is not None and vals[seat] != known[g - first]:
                self._mispredicted.add(seat)
                if self.pending_rollback is None or g < self.pending_rollback:
                    self.pending_rollback = g
                break

    def apply_rollback(self, now_ms: float) -> tuple[int, int, tuple[int, ...]] | None:
        """Roll back to the earliest mispredicted frame and resimulate up to the current frame.

        Returns ``(frame, depth, mispredicted seats)`` or ``None`` when nothing was pending.
        """
        r = self.pending_rollback
        if r is None:
            return None
        self.pending_rollback = None
        seats = tuple(sorted(self._mispredicted))
        self._mispredicted.clear()
        target = self.frame
        state, self.episode, self.episode_frame = self._snapshots[r]
        self.game.set_state(state)
        self.log.discard_from(r)
        snaps = self._snapshots
        had = []  # frames that were snapshotted (simulated with a prediction) before this rollback
        for g in range(r, target):
            if snaps.pop(g, None) is not None:
                had.append(g)
            self._used.pop(g, None)
        self.frame = r
        self._clock = now_ms
        while self.frame < target and self.episode < self._episodes:
            self._simulate(self.frame)
        # Frames whose inputs are all known now are resimulated without a snapshot (no rollback can target them
        # again): count the get_state calls this saved.
        skipped = sum(1 for g in had if g < self.frame and g not in snaps)
        self.stats["resim_snapshots_skipped"] = self.stats.get("resim_snapshots_skipped", 0) + skipped
        depth = target - r
        self.stats["rollbacks"] += 1
        self.stats["resimulated_frames"] += self.frame - r
        if depth > self.stats["max_rollback_depth"]:
            self.stats["max_rollback_depth"] = depth
        return r, depth, seats

    # -- confirmation -----------------------------------------------------------------------------------------
    def promote(self, now_ms: float) -> list[FrameRecord]:
        """Promote every simulated frame whose inputs are all known; prune what no rollback can need."""
        if self.pending_rollback is not None:
            raise RuntimeError("promotion with a rollback pending")
        count = self.queues.confirmed_count()
        if count > self.frame:
            count = self.frame
        first = self.log.confirmed_count
        if count <= first:
            return []
        out = self.log.promote(count, now_ms)
        snaps, used = self._snapshots, self._used
        if snaps:
            # snapshots only exist past the confirmed frame, so these are the ones that just became unneeded
            for g in range(first, count):
                if snaps.pop(g, None) is not None:
                    used.pop(g, None)
        return out

    @property
    def snapshot_count(self) -> int:
        return len(self._snapshots)

    def oldest_snapshot(self) -> int | None:
        return min(self._snapshots) if self._snapshots else None
