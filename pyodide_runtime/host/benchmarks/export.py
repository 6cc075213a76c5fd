"""Export benchmark: time to write the bundle of a 10,000-frame Coin Chase session.

    python -m pyodide_runtime.host.benchmarks.export [--frames 10000] [--repeat 5]

Builds a confirmed frame log by stepping the bundled example env directly (no network), then times:

- ``cold``: :func:`pyodide_runtime.export.write_bundle` on the whole log (every record encoded at the end);
- ``final``: :meth:`Exporter.bundle` when :meth:`Exporter.update` encoded each frame as it was confirmed and
  checkpoints were taken at every episode end, the way the page uses it (what a participant waits for);
- ``update`` and ``checkpoint``: the median cost of one per-frame update and of one episode-end checkpoint;
- ``validate``: :func:`pyodide_runtime.host.validate.validate` on the bundle (host-side, for reference).

Reports the best of ``--repeat`` runs, in CPU time of this process (steadier than wall time on a busy machine;
wall time inside Pyodide, which has no process clock).
The same script runs in Pyodide (no threads, no subprocess).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import Diagnostics, ExportContext, Exporter, write_bundle
from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord

SPEC = "pyodide_runtime.examples.coin_chase:make_env"
# CPU time is steadier on a busy machine, but Pyodide has no process clock (it always reads 0): use wall time there.
_clock = time.perf_counter if sys.platform == "emscripten" else time.process_time


def build_log(frames: int, seed: int = 1, episode_frames: int = 1000) -> tuple[FrameLog, ExportContext, list[int]]:
    """A closed log of ``frames`` confirmed frames; returns it, its export context and the episode-end frames."""
    game = load_game(SPEC, {"max_steps": episode_frames, "target_score": 10**9})
    episodes = -(-frames // episode_frames)
    cfg = SessionConfig(episodes=episodes, seed=seed)
    log = FrameLog(cfg.frame_hash, cfg.hash_interval) if hasattr(cfg, "frame_hash") else FrameLog()
    rng = random.Random(seed)
    ends = []
    episode, frame = 0, 0
    res = game.reset(cfg.episode_seed(0))
    log.add_episode_start(EpisodeStart(0, cfg.episode_seed(0), 0, res.observations, res.infos))
    for g in range(frames):
        inputs = tuple(rng.randrange(5) for _ in game.seats)
        step = game.step(inputs)
        log.add(FrameRecord(g, episode, frame, inputs, (False,) * len(inputs), step.actions, step.observations,
                            step.rewards, step.terminated, step.truncated, step.infos, step.episode_over,
                            False, g * 33.3))
        frame += 1
        if step.episode_over:
            ends.append(g)
            episode, frame = episode + 1, 0
            if episode < episodes:
                res = game.reset(cfg.episode_seed(episode))
                log.add_episode_start(EpisodeStart(episode, cfg.episode_seed(episode), g + 1, res.observations,
                                                   res.infos))
    log.promote(frames, frames * 33.3)
    log.close()
    ctx = ExportContext(study="bench", session="s1", participant="p0", seat=0, config=cfg, env=game.describe())
    return log, ctx, ends


class _Prefix:
    """A view of a log's first ``n`` confirmed frames (what a checkpoint at that moment sees)."""

    def __init__(self, log: FrameLog, n: int) -> None:
        self.confirmed = log.confirmed[:n]
        self.episode_starts = [s for s in log.episode_starts if s.start_frame <= n]

    def unconfirmed_tail(self) -> list:
        return []


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = _clock()
        fn()
        times.append(_clock() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export benchmark of a 10,000-frame Coin Chase session")
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    log, ctx, ends = build_log(args.frames)
    diag = Diagnostics(user_agent="bench", tick_intervals_ms=[33.3] * args.frames)
    size = len(write_bundle(log, ctx, diag))
    cold = best(lambda: write_bundle(log, ctx, diag), args.repeat)

    cp_times: list[float] = []
    update_times: list[float] = []

    def warm_session() -> float:
        exporter = Exporter(ctx)
        end_set = set(ends[:-1])
        for n in range(1, args.frames + 1):
            view = _Prefix(log, n)
            t = _clock()
            exporter.update(view)
            update_times.append(_clock() - t)
            if n - 1 in end_set:
                t = _clock()
                exporter.checkpoint(view)
                cp_times.append(_clock() - t)
        t = _clock()
        exporter.bundle(log, diag)
        return _clock() - t

    warm = min(warm_session() for _ in range(args.repeat))
    from pyodide_runtime.host.validate import validate

    bundle = write_bundle(log, ctx, diag)
    t = _clock()
    ok = validate(bundle).ok
    valid_s = _clock() - t
    print(f"python {sys.version.split()[0]}  frames {args.frames}  agents {len(ctx.agents)}  "
          f"bundle {size / 1e6:.2f} MB")
    print(f"cold export   {cold:.3f} s  (write_bundle on the whole log)")
    print(f"final export  {warm:.3f} s  (Exporter.bundle when every frame was encoded as it was confirmed)")
    print(f"update        {sorted(update_times)[len(update_times) // 2] * 1e6:.0f} us median per confirmed frame")
    if cp_times:
        print(f"checkpoint    {sorted(cp_times)[len(cp_times) // 2] * 1000:.1f} ms median, at each of "
              f"{len(ends) - 1} episode ends")
    print(f"validate      {valid_s:.3f} s  (valid={ok})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
