"""The sync test: prove a game is deterministic under rollback before real players meet it.

Like GGRS's ``SyncTestSession``: the game advances frame by frame with generated inputs, and after every frame it
loads the snapshot from ``distance`` frames back, resimulates those frames with the same inputs, and compares
canonical digests of every resimulated step result (and of the state, when the state is canonically encodable)
against the first simulation. Any difference means ``step`` depends on something a snapshot does not hold (an
unsnapshotted attribute or RNG, the clock, global state), and the report names the first frame and field, and the
attributes the restore left as later frames had made them (found by replaying the episode to the snapshot).

Example::

    report = run_sync_test(load_game("pyodide_runtime.examples.coin_chase:make_env"), frames=600, distance=4)
    assert report.passed, report

From a shell: ``pyodide-runtime synctest package.module:make_env --distance 1,4,8 --bot player_1=random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pyodide_runtime.envs.base import Game
from pyodide_runtime.envs.snapshot_check import (
    RESULT_FIELDS,
    InputPolicy,
    describe_unrestored,
    field_digests,
    find_unrestored,
    first_difference,
    restore_advice,
    result_fields,
    state_digest,
)

__all__ = ["run_sync_test", "SyncTestReport", "SyncMismatch", "InputPolicy", "main"]


@dataclass(frozen=True)
class SyncMismatch:
    """The first disagreement between a simulation and its resimulation."""

    frame: int  #: the frame (counted from the start of the test) whose resimulation differed
    field: str  #: a step result field, ``"state"``, or ``"exception"``
    detail: str  #: where inside the field, e.g. ``observations.player_0.coins[1]: [3, 4] != [5, 1]``
    rollback_to: int  #: the frame whose snapshot was loaded
    episode: int  #: episode number (0-based) within the test
    cause: str = ""  #: what the restore missed, e.g. ``LineEnv.set_state() does not restore `t` (...)``
    fix: str = ""  #: what to change, aimed at the env's own get_state()/set_state() when it has them


@dataclass(frozen=True)
class SyncTestReport:
    """Outcome of :func:`run_sync_test`."""

    frames: int
    distance: int
    seed: int
    checks: int  #: resimulated frames compared
    episodes: int
    state_checked: bool
    mismatch: SyncMismatch | None

    @property
    def passed(self) -> bool:
        return self.mismatch is None

    def __str__(self) -> str:
        head = f"sync test, distance {self.distance}, {self.frames} frames, {self.checks} resimulated frames compared"
        if self.mismatch is None:
            note = "" if self.state_checked else " (state not canonically encodable, not compared)"
            return f"{head}: passed{note}"
        m = self.mismatch
        cause = f"; {m.cause}" if m.cause else ""
        return (
            f"{head}: FAILED at frame {m.frame} (episode {m.episode}, after loading frame {m.rollback_to}): "
            f"{m.field} differs: {m.detail}{cause}"
        )


def run_sync_test(
    game: Game,
    *,
    frames: int = 300,
    distance: int = 2,
    seed: int = 0,
    input_policy: InputPolicy | None = None,
    check_state: bool | None = None,
) -> SyncTestReport:
    """Run the game ``frames`` frames, rolling back ``distance`` frames and resimulating after every frame.

    ``input_policy`` generates each seat's input (default: uniform random, seeded by ``seed``). ``check_state``
    compares state digests too: ``None`` does so when snapshots are canonically encodable. Episodes that end are
    reset with the next seed; rollbacks never cross an episode start. Stops at the first mismatch, and then replays
    the episode to name the attributes the restore missed (which leaves the game in an arbitrary state).
    """
    if distance < 1:
        raise ValueError("distance must be at least 1")
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]

    def next_inputs(frame: int) -> list[int]:
        if input_policy is None:
            return [rng.randrange(c) for c in counts]
        return [int(input_policy(frame, s, rng)) for s in range(len(counts))]

    episode = 0
    game.reset(seed)
    start = 0  # global frame number of the current episode's first step
    snapshots: dict[int, Any] = {0: game.get_state()}  # local frame -> state before that frame's step
    records: dict[int, tuple] = {}  # local frame -> (inputs, digests, fields, state digest, state)
    history: list[list[int]] = []  # the current episode's inputs, to replay it when a restore fails
    compare_state = check_state
    checks = 0

    def mismatch(at: int, field: str, detail: str, back_to: int) -> SyncTestReport:
        def replay_to_snapshot() -> None:
            game.reset(seed + episode)
            for earlier in history[:back_to]:
                game.step(earlier)

        missed = find_unrestored(game, replay_to_snapshot, history[back_to : local + 1])
        found = SyncMismatch(
            start + at, field, detail, start + back_to, episode,
            cause=describe_unrestored(game, missed), fix=restore_advice(game, missed),
        )
        return SyncTestReport(frame + 1, distance, seed, checks, episode + 1, bool(compare_state), found)

    for frame in range(frames):
        local = frame - start
        step_inputs = next_inputs(frame)
        history.append(step_inputs)
        result = game.step(step_inputs)
        state = game.get_state()
        sd = state_digest(state) if compare_state is not False else None
        if compare_state is None:
            compare_state = sd is not None
        records[local] = (step_inputs, field_digests(result), result_fields(result), sd, state if sd else None)
        snapshots[local + 1] = state
        back_to = max(0, local + 1 - distance)
        game.set_state(snapshots[back_to])
        for m in range(back_to, local + 1):
            want_inputs, want_digests, want_fields, want_sd, want_state = records[m]
            try:
                again = game.step(want_inputs)
            except Exception as exc:  # a broken restore often shows up as an env error
                return mismatch(m, "exception", f"{type(exc).__name__}: {exc}", back_to)
            checks += 1
            got_digests = field_digests(again)
            for name in RESULT_FIELDS:
                if got_digests[name] != want_digests[name]:
                    detail = first_difference(want_fields[name], result_fields(again)[name], name)
                    return mismatch(m, name, detail, back_to)
            if compare_state:
                got_state = game.get_state()
                if state_digest(got_state) != want_sd:
                    return mismatch(m, "state", first_difference(want_state, got_state, "state"), back_to)
        for old in [k for k in snapshots if k < local + 1 - distance]:
            del snapshots[old]
            records.pop(old, None)
        if result.episode_over:
            episode += 1
            game.reset(seed + episode)
            start = frame + 1
            snapshots = {0: game.get_state()}
            records = {}
            history = []
    return SyncTestReport(frames, distance, seed, checks, episode + 1, bool(compare_state), None)


def main(argv: list[str] | None = None) -> int:
    """``python -m pyodide_runtime.host.synctest``: the same as ``pyodide-runtime synctest``."""
    import sys

    from pyodide_runtime.host.cli import main as cli_main

    return cli_main(["synctest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
