"""The research data export: one zip bundle per participant per session.

Canonical tables (``frames.csv``, ``resets.csv``, ``episodes.csv``, ``blobs.csv``) and the canonical member of
``metadata.json`` are byte-identical for every participant of a session; diagnostics, the unconfirmed tail and
participant-local metadata are declared non-canonical (see :mod:`pyodide_runtime.export.schema` and the bundle's
``codebook.md``)::

    from pyodide_runtime.export import Diagnostics, ExportContext, Exporter
    exporter = Exporter(ExportContext.from_session(session, study="pilot", session_id=room, participant=pid))
    exporter.update(session.log, release=True)           # every tick: encode newly confirmed frames once and
                                                         # drop their records (without release: keep them)
    store(exporter.checkpoint(session.log))              # at each episode end and when the page is hidden
    data = exporter.bundle(session.log, Diagnostics.from_events(events, stats=session.diagnostics()))
    download(exporter.filename, data)
"""

from pyodide_runtime.export.bundle import BundleError, bundle_name, open_bundle, sanitize
from pyodide_runtime.export.checkpoint import Checkpoint, CheckpointError, recover
from pyodide_runtime.export.context import Diagnostics, ExportContext
from pyodide_runtime.export.exporter import Exporter, write_bundle

__all__ = [
    "BundleError", "Checkpoint", "CheckpointError", "Diagnostics", "ExportContext", "Exporter", "bundle_name",
    "open_bundle", "recover", "sanitize", "write_bundle",
]
