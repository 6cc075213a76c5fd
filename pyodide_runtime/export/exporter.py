"""The writer's entry points: :func:`write_bundle` (one shot) and :class:`Exporter` (incremental, with checkpoints)."""

from __future__ import annotations

from typing import Any

from pyodide_runtime.export.bundle import bundle_name, pack
from pyodide_runtime.export.checkpoint import Checkpoint
from pyodide_runtime.export.context import Diagnostics, ExportContext
from pyodide_runtime.export.writer import TableEncoder, assemble_files, build_files

__all__ = ["Exporter", "write_bundle"]


def write_bundle(log: Any, context: ExportContext, diagnostics: Diagnostics | None = None) -> bytes:
    """The zip bundle of one participant: canonical tables, metadata, diagnostics, tail, codebook, manifest.

    ``log`` is a :class:`~pyodide_runtime.framelog.FrameLog` (closed or not: speculative records count as the
    unconfirmed tail).
    """
    return pack(build_files(log, context, diagnostics))


class Exporter:
    """One participant's export over a session: checkpoints as it goes, then the bundle.

    Each record is encoded once. Call :meth:`checkpoint` at every episode end and when the page is hidden, and
    persist the bytes (append them: several checkpoints concatenated form a valid input to
    :func:`~pyodide_runtime.export.checkpoint.recover`). Call :meth:`bundle` at the end.
    """

    def __init__(self, context: ExportContext) -> None:
        self.context = context
        self.encoder = TableEncoder(context)
        self._last: Checkpoint | None = None

    @property
    def filename(self) -> str:
        c = self.context
        return bundle_name(c.study, c.session, c.participant, c.seat)

    def update(self, log: Any, release: bool = False, through: int | None = None) -> int:
        """Encode the records confirmed since the last call (cheap; call it every tick or every few frames to
        spread the encoding over the session). Returns how many frames are encoded in all.

        With ``release``, the log then drops the records just encoded (:meth:`FrameLog.release`): everything the
        bundle and later checkpoints need from them is kept here, encoded, so a long session's memory stays
        flat. The bundle is byte-identical either way. ``through`` stops before that global frame.
        """
        self.encoder.update(log, through)
        if release:
            log.release(self.encoder.frames_done)
        return self.encoder.frames_done

    def checkpoint(self, log: Any, diagnostics: Diagnostics | None = None) -> bytes:
        """The records confirmed since the previous checkpoint, plus the current tail and diagnostics."""
        cp = Checkpoint.from_log(log, self.context, since=self._last, diagnostics=diagnostics, encoder=self.encoder)
        self._last = cp
        return cp.to_bytes()

    def bundle(self, log: Any, diagnostics: Diagnostics | None = None) -> bytes:
        """The bundle bytes (encodes only records not encoded by an earlier checkpoint)."""
        return pack(build_files(log, self.context, diagnostics, encoder=self.encoder))

    def interim(self, log: Any, through: int, diagnostics: Diagnostics | None = None) -> bytes:
        """A bundle of the confirmed frames before global frame ``through`` (an episode end), status ``interim``:
        what a session that goes on has confirmed so far. Later calls to :meth:`update` carry on from there."""
        enc = self.encoder
        enc.update(log, through)
        diag = diagnostics or Diagnostics()
        files = assemble_files(
            self.context, enc, diag, confirmed=enc.frames_done, tail_text="", tail_frames=0,
            diag_frames=enc.diag_since(0, log, diag.rendered), away=enc.away.spans(),
            local_extra={"interim": True}, interim=True,
        )
        return pack(files)
