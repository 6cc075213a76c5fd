"""Rejoin after a reload: a page dies mid-episode, its new page resumes from its checkpoint and the partner's echo,
and both exports come out identical and complete, as if nothing happened."""

from __future__ import annotations

import pytest

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.export import ExportContext, Exporter
from pyodide_runtime.export.checkpoint import resume_point
from pyodide_runtime.host.testing.games import TinyGridGame
from pyodide_runtime.protocol import AWAY_BIT
from pyodide_runtime.session import Resumed, ResumeError, Session


# -- replay, with sessions and the in-memory checkpoint (no network) --------------------------------------------
class UrandomGrid(TinyGridGame):
    """Plays a different game in every process: its reset ignores the seed."""

    def reset(self, seed):
        import os

        return super().reset(int.from_bytes(os.urandom(4), "big"))


class ScoreAtTen(TinyGridGame):
    """Same id, other rules: a point for free at step 10 of every episode."""

    def step(self, inputs):
        if self.t == 10:
            self.score[0] += 1
        return super().step(inputs)


def _checkpoint(game, config: SessionConfig, frames: int, policy=lambda f: (f // 7) % 5) -> tuple[bytes, Session]:
    """A session alone (one player) run for ``frames`` confirmed frames, and its checkpoint."""
    session = Session(game, config, 0)
    exporter = Exporter(ExportContext.from_session(session, study="s", session_id="x", participant="p"))
    now = 0.0
    while session.confirmed_frames < frames:
        session.tick(now, policy(session.frame), away=(40 <= session.frame < 55))
        now += config.frame_ms
    return exporter.checkpoint(session.log), session


def test_replay_rebuilds_the_log_queues_and_game_of_the_checkpoint():
    config = SessionConfig(players=1, episodes=3)
    data, original = _checkpoint(TinyGridGame(players=1, length=40), config, 70)
    point = resume_point(data)
    assert point.confirmed == original.confirmed_frames
    assert any(v[0] & AWAY_BIT for v in point.inputs), "away frames are replayed as away"
    resumed = Session.resume(TinyGridGame(players=1, length=40), config, 0, point, nonce=7)
    c = point.confirmed
    assert [r.canonical() for r in resumed.log.confirmed] == [r.canonical() for r in original.log.confirmed[:c]]
    assert [s.canonical() for s in resumed.log.episode_starts] == [
        s.canonical() for s in original.log.episode_starts[:len(resumed.log.episode_starts)]]
    assert resumed.queues.values(0, 0, c) == original.queues.values(0, 0, c)
    assert resumed.frame == c and not resumed.started
    # A lone seat has nobody to ask: it runs on the first tick and finishes every episode.
    now = 10_000.0
    events = []
    while not resumed.ended:
        events += resumed.tick(now, 1).events
        now += config.frame_ms
    assert any(isinstance(e, Resumed) and e.from_frame == c and e.replayed_frames == c for e in events)
    assert resumed.outcome == "complete" and resumed.confirmed_frames == 120


def test_a_nondeterministic_env_is_refused_at_replay():
    config = SessionConfig(players=1, episodes=2)
    data, _ = _checkpoint(TinyGridGame(players=1, length=40), config, 45)
    point = resume_point(data)
    with pytest.raises(ResumeError, match="diverged|started episodes"):
        Session.resume(UrandomGrid(players=1, length=40), config, 0, point)
    with pytest.raises(ResumeError, match="diverged at frame 29"):  # the first sampled frame after the change
        Session.resume(ScoreAtTen(players=1, length=40), config, 0, point)
