"""Load an export bundle for analysis.

    from pyodide_runtime.host.data import load
    frames = load("pilot_room-1_P01_seat0.zip").frames        # a pandas DataFrame when pandas is installed

Tables come back as pandas DataFrames (``backend="pandas"``, the default when pandas is importable), polars
DataFrames (``backend="polars"``) or lists of dicts (``backend="python"``). Cells are parsed by the schema's
column types, exactly: floats round-trip bit for bit, empty nullable cells become missing values. JSON columns
(``observation``, ``info``, ...) stay canonical JSON text unless ``decode_json=True``; :func:`decode` turns one
cell into Python values. Large values stored in ``blobs.csv`` are resolved either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from pyodide_runtime.export import schema
from pyodide_runtime.export.bundle import open_bundle
from pyodide_runtime.export.cells import parse_cell
from pyodide_runtime.export.tables import blob_map, read_table

__all__ = ["Bundle", "load", "decode", "BACKENDS"]

BACKENDS = ("auto", "pandas", "polars", "python")


def decode(cell: Any, blobs: Mapping[str, str] | None = None) -> Any:
    """The Python value of a JSON cell (``None`` for a missing one); ``blobs`` resolves ``sha256:`` references."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return None
    return parse_cell("json", cell, blobs)


class Bundle:
    """One participant's export. Tables load on first access."""

    def __init__(self, files: dict[str, bytes], backend: str = "auto", decode_json: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        self.files = files
        self.backend = _resolve(backend)
        self.decode_json = decode_json

    # -- plain data ---------------------------------------------------------------------------------------------
    @cached_property
    def metadata(self) -> dict[str, Any]:
        """metadata.json (``["canonical"]`` and ``["participant_local"]``)."""
        return json.loads(self.files[schema.METADATA.path])

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.files[schema.MANIFEST.path])

    @cached_property
    def codebook(self) -> dict[str, Any]:
        return json.loads(self.files[schema.CODEBOOK_JSON.path])

    @cached_property
    def blobs(self) -> dict[str, str]:
        return blob_map(self.files)

    @property
    def complete(self) -> bool:
        return self.metadata["canonical"]["status"] == "complete"

    # -- tables -------------------------------------------------------------------------------------------------
    @cached_property
    def frames(self) -> Any:
        """Confirmed steps, one row per frame and agent (frames.csv)."""
        return self.table(schema.FRAMES.path)

    @cached_property
    def resets(self) -> Any:
        """Episode resets, one row per episode and agent (resets.csv)."""
        return self.table(schema.RESETS.path)

    @cached_property
    def episodes(self) -> Any:
        """One row per episode (episodes.csv)."""
        return self.table(schema.EPISODES.path)

    @cached_property
    def tail(self) -> Any:
        """The unconfirmed tail of a partial session (predictions, not data), or ``None``."""
        return self.table(schema.TAIL.path) if schema.TAIL.path in self.files else None

    @cached_property
    def diagnostics(self) -> dict[str, Any]:
        """Non-canonical tables by short name (``frames``, ``rollbacks``, ``away``, ...) plus ``network``."""
        out: dict[str, Any] = {}
        for spec in schema.FILES:
            if not spec.path.startswith("diagnostics/") or spec.path not in self.files:
                continue
            name = spec.path.split("/", 1)[1].rsplit(".", 1)[0]
            out[name] = self.table(spec.path) if spec.kind == "csv" else json.loads(self.files[spec.path])
        return out

    @cached_property
    def participant(self) -> dict[str, Any] | None:
        """The participant's tables (``scenes``, ``answers``, ``assignment``, ``waiting``) and ``record`` (the
        record the page kept), or ``None`` when the bundle has no ``participant/`` part."""
        from pyodide_runtime.export import participant as p

        if p.RECORD.path not in self.files:
            return None
        out: dict[str, Any] = {spec.path[len(p.PREFIX):-4]: self.table(spec.path)
                               for spec in (p.SCENES, p.ANSWERS, p.ASSIGNMENT, p.WAITING) if spec.path in self.files}
        out["record"] = json.loads(self.files[p.RECORD.path])["record"]
        return out

    def table(self, path: str) -> Any:
        """Any CSV of the bundle by its path (``participant/`` tables included), typed by the schema."""
        from pyodide_runtime.export import participant

        spec = schema.spec_for(path) or participant.spec_for(path)
        if spec is None or spec.kind != "csv":
            raise KeyError(f"{path} is not a table of this format")
        parsed = read_table(spec, self.files[path])
        blobs = self.blobs if spec is not schema.BLOBS else {}
        columns: dict[str, list[Any]] = {}
        for i, col in enumerate(spec.columns):
            cells = [r[i] for r in parsed.rows]
            if col.type == "json" and not self.decode_json:
                columns[col.name] = [
                    None if c == "" else (blobs[c[7:]] if c.startswith(schema.BLOB_PREFIX) and blobs else c)
                    for c in cells
                ]
            else:
                columns[col.name] = [parse_cell(col.type, c, blobs) for c in cells]
        return _frame(self.backend, spec, columns, len(parsed.rows))

    def decode(self, cell: Any) -> Any:
        """:func:`decode` with this bundle's blobs."""
        return decode(cell, self.blobs)


def load(source: str | os.PathLike[str] | bytes, *, backend: str = "auto", decode_json: bool = False) -> Bundle:
    """Open a bundle (zip path, zip bytes or extracted directory) for analysis; see the module docstring."""
    return Bundle(open_bundle(source), backend, decode_json)


def _resolve(backend: str) -> str:
    if backend != "auto":
        return backend
    try:
        import pandas  # noqa: F401
    except ImportError:
        return "python"
    return "pandas"


def _frame(backend: str, spec: schema.FileSpec, columns: dict[str, list[Any]], n: int) -> Any:
    if backend == "python":
        names = list(columns)
        return [dict(zip(names, values)) for values in zip(*columns.values())] if n else []
    if backend == "pandas":
        import pandas as pd

        return pd.DataFrame({c.name: _pandas_column(pd, c.type, columns[c.name]) for c in spec.columns})
    import polars as pl

    return pl.DataFrame([_polars_column(pl, c.name, c.type, columns[c.name]) for c in spec.columns])


def _kind(values: list[Any]) -> type | None:
    """The one Python type of the non-missing values (bool, int, float, str), else ``None``."""
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {int, float}:
        return float
    return None


def _pandas_column(pd: Any, kind: str, values: list[Any]) -> Any:
    py = _kind(values)
    missing = any(v is None for v in values)
    if py is bool:
        return pd.array(values, dtype="boolean") if missing else pd.array(values, dtype=bool)
    if py is int:
        return pd.array(values, dtype="Int64") if missing else pd.array(values, dtype="int64")
    if py is float:
        return pd.array([float("nan") if v is None else float(v) for v in values], dtype="float64")
    return pd.array(values, dtype=object)


def _polars_column(pl: Any, name: str, kind: str, values: list[Any]) -> Any:
    py = _kind(values)
    dtype = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.Utf8}.get(py)  # type: ignore[arg-type]
    if dtype is pl.Float64:
        values = [None if v is None else float(v) for v in values]
    if dtype is None:
        if all(v is None or isinstance(v, str) for v in values):
            dtype = pl.Utf8
        else:
            return pl.Series(name, values, dtype=pl.Object)
    return pl.Series(name, values, dtype=dtype)
