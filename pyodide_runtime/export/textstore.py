"""Encoded table text kept compressed while a session runs.

A :class:`TextStore` holds the text an encoder appends, chunk by chunk, each chunk tagged with a mark (the frame
count before it). Recent text stays as is; once it passes :data:`SEAL_CHARS` it is sealed into one zlib-compressed
segment, so a long session keeps about a tenth of its CSV text in memory. Reading back (all of it, or the chunks
from a mark on, as checkpoints do) gives exactly the text that was appended.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterator

__all__ = ["TextStore", "SEAL_CHARS"]

#: Uncompressed text kept before it is sealed: big enough for a good ratio, small enough to compress in a few ms.
SEAL_CHARS = 128 * 1024


class _Segment:
    __slots__ = ("marks", "offsets", "data")

    def __init__(self, marks: array, offsets: array, data: bytes) -> None:
        self.marks = marks  # mark of each chunk
        self.offsets = offsets  # byte offset of each chunk in the uncompressed UTF-8 text
        self.data = data


class TextStore:
    """Append-only text in marked chunks, older chunks compressed."""

    def __init__(self, seal_chars: int = SEAL_CHARS, level: int = 6) -> None:
        self.seal_chars = seal_chars
        self.level = level
        self._segments: list[_Segment] = []
        self._marks: list[int] = []
        self._chunks: list[str] = []
        self._pending = 0

    def append(self, mark: int, text: str) -> None:
        """Add one chunk that starts at ``mark`` (marks never decrease)."""
        self._marks.append(mark)
        self._chunks.append(text)
        self._pending += len(text)
        if self._pending >= self.seal_chars:
            self.seal()

    def seal(self) -> None:
        """Compress the chunks not yet compressed into one segment."""
        if not self._chunks:
            return
        offsets = array("q")
        pieces = []
        at = 0
        for text in self._chunks:
            piece = text.encode("utf-8")
            offsets.append(at)
            at += len(piece)
            pieces.append(piece)
        self._segments.append(_Segment(array("q", self._marks), offsets, zlib.compress(b"".join(pieces), self.level)))
        self._marks, self._chunks, self._pending = [], [], 0

    def since(self, mark: int) -> str:
        """The text of every chunk whose mark is at least ``mark``."""
        parts: list[str] = []
        for seg in self._segments:
            if seg.marks[-1] < mark:
                continue
            first = next(i for i, m in enumerate(seg.marks) if m >= mark)
            parts.append(zlib.decompress(seg.data)[seg.offsets[first]:].decode("utf-8"))
        parts.extend(t for m, t in zip(self._marks, self._chunks) if m >= mark)
        return "".join(parts)

    def text(self) -> str:
        """All the text appended so far."""
        return self.since(-1)

    def to_bytes(self, prefix: str = "") -> bytes:
        """``prefix`` and all the text as UTF-8, built without a full-size intermediate string (the bundle's
        largest file is made this way, once, at the end of a session)."""
        parts = [prefix.encode("utf-8")]
        parts.extend(zlib.decompress(seg.data) for seg in self._segments)
        parts.extend(text.encode("utf-8") for text in self._chunks)
        return b"".join(parts)

    def chunks(self) -> Iterator[tuple[int, str]]:
        """Every chunk as ``(mark, text)``, oldest first."""
        for seg in self._segments:
            raw = zlib.decompress(seg.data)
            ends = list(seg.offsets[1:]) + [len(raw)]
            for m, start, end in zip(seg.marks, seg.offsets, ends):
                yield m, raw[start:end].decode("utf-8")
        yield from zip(self._marks, self._chunks)

    def __bool__(self) -> bool:
        return bool(self._segments or self._chunks)

    @property
    def kept_bytes(self) -> int:
        """Bytes held: compressed segments plus the text not yet sealed (one byte per character, roughly)."""
        return sum(len(s.data) + 16 * len(s.marks) for s in self._segments) + self._pending
