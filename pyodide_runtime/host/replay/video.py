"""Render a replay to a video file in CPython: MP4 with imageio and imageio-ffmpeg's bundled ffmpeg, GIF with Pillow.

    from pyodide_runtime.host.replay import Replay
    from pyodide_runtime.host.replay.video import export_video

    info = export_video(Replay("session.zip"), "session.mp4")      # or "session.gif"
    info.frames, info.width, info.height

Every confirmed frame (or ``start..end``) is re-simulated, rendered by the env, rasterised
(:mod:`pyodide_runtime.host.replay.raster`) and stamped with its episode and frame in a band underneath.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pyodide_runtime.host.replay.core import Replay, ReplayError

__all__ = ["VideoInfo", "export_video", "frames", "caption", "Progress"]


@dataclass(frozen=True)
class VideoInfo:
    """What was written: the file, its format, frame count, pixel size and frame rate."""

    path: str
    format: str
    frames: int
    width: int
    height: int
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Progress:
    """A one-line progress bar on a stream (stderr by default); redraws at most ten times a second."""

    def __init__(self, total: int, label: str = "", stream: IO[str] | None = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream if stream is not None else sys.stderr
        self._shown = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self._shown < 0.1:
            return
        self._shown = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} frames")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def caption(replay: Replay, g: int) -> str:
    """The stamp of frame ``g``: episode and frame within it, global frame, and each seat's input."""
    episode, frame = replay.position[g]
    names = replay.info_action_names()
    seats = []
    for seat, value in enumerate(replay.inputs[g]):
        name = names[value] if names and 0 <= value < len(names) else str(value)
        seats.append(f"S{seat} {name}{' (away)' if replay.away[g][seat] else ''}")
    return f"episode {episode} frame {frame} (#{g})  " + "  ".join(seats)


def frames(replay: Replay, start: int = 0, end: int | None = None, scale: int | None = None) -> Iterator[Any]:
    """Stamped RGB images (Pillow) of frames ``start..end-1``, all of the first frame's size."""
    from pyodide_runtime.host.replay.raster import rasterise, stamp

    end = replay.frames if end is None else min(end, replay.frames)
    size: tuple[int, int] | None = None
    for g in range(start, end):
        replay.seek(g)
        image = rasterise(replay.game.render(), scale)
        if image is None:
            raise ReplayError(f"the env's render() returned nothing at frame {g}: nothing to put in a video")
        stamped = stamp(image, caption(replay, g), *(size or (None, None)))
        size = size or stamped.size
        yield stamped


def export_video(
    replay: Replay,
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    start: int = 0,
    end: int | None = None,
    scale: int | None = None,
    progress: bool | IO[str] = True,
    on_frame: Callable[[int], None] | None = None,
) -> VideoInfo:
    """Write frames ``start..end-1`` of ``replay`` to ``path``: ``.gif`` with Pillow, anything else (``.mp4``,
    ``.webm``, ...) with imageio's ffmpeg writer. ``fps`` defaults to the session's. Returns a :class:`VideoInfo`."""
    path = Path(path)
    end = replay.frames if end is None else min(end, replay.frames)
    if not 0 <= start < end:
        raise ReplayError(f"no frames to write in {start}..{end - 1} (the bundle has {replay.frames})")
    rate = float(fps or replay.fps)
    bar = None
    if progress:
        bar = Progress(end - start, path.name, None if progress is True else progress)  # type: ignore[arg-type]
    images = frames(replay, start, end, scale)
    count = 0
    size = (0, 0)

    def tick() -> None:
        nonlocal count
        count += 1
        if bar:
            bar.update(count)
        if on_frame:
            on_frame(start + count - 1)

    try:
        if path.suffix.lower() == ".gif":
            kind = "gif"
            kept = []
            for image in images:
                kept.append(image.convert("P", palette=_adaptive(), colors=256))
                size = image.size
                tick()
            path.parent.mkdir(parents=True, exist_ok=True)
            kept[0].save(path, save_all=True, append_images=kept[1:], duration=round(1000 / rate), loop=0,
                         optimize=False)
        else:
            kind = path.suffix.lower().lstrip(".") or "mp4"
            writer = _ffmpeg_writer(path, rate)
            try:
                import numpy as np

                for image in images:
                    writer.append_data(np.asarray(image))
                    size = image.size
                    tick()
            finally:
                writer.close()
    finally:
        if bar:
            bar.close()
    return VideoInfo(str(path), kind, count, size[0], size[1], rate)


def _adaptive() -> Any:
    from PIL import Image

    return Image.Palette.ADAPTIVE


def _ffmpeg_writer(path: Path, fps: float) -> Any:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - the bundled ffmpeg binary
    except ImportError as exc:
        raise ReplayError(f"video export needs imageio and imageio-ffmpeg: pip install 'pyodide-runtime[replay]' "
                          f"({exc})") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    # Sizes are already even (see raster.stamp); macro_block_size=1 keeps them exactly as rendered.
    return imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=9,
                              pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")
