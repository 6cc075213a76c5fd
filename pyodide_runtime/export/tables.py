"""Reading a bundle's files back against the schema (shared by ``validate``, ``compare`` and the loader)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyodide_runtime.export import schema
from pyodide_runtime.export.cells import CsvError, read_csv

__all__ = ["Table", "SchemaError", "read_table", "read_json", "blob_map", "identify_csv"]


class SchemaError(ValueError):
    """A file whose columns are not the ones the schema declares."""


@dataclass
class Table:
    """A parsed CSV: its declaration, header and rows of raw cell text."""

    spec: schema.FileSpec
    header: list[str]
    rows: list[list[str]]

    def index(self, name: str) -> int:
        return self.header.index(name)

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]


def read_table(spec: schema.FileSpec, data: bytes, name: str | None = None) -> Table:
    """Parse ``data`` as the table ``spec``; raises :class:`CsvError` or :class:`SchemaError`."""
    header, rows = read_csv(data, name or spec.path)
    if tuple(header) != spec.names:
        raise SchemaError(
            f"{name or spec.path}: columns {header} differ from the schema's {list(spec.names)}"
        )
    return Table(spec, header, rows)


def identify_csv(data: bytes, name: str) -> schema.FileSpec:
    """The table declaration whose header ``data`` starts with (for a bare CSV given on the command line)."""
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    matches = [f for f in schema.FILES if f.kind == "csv" and f.header == first]
    if not matches:
        raise SchemaError(f"{name}: its header matches no table of format version {schema.FORMAT_VERSION}")
    by_name = [f for f in matches if f.path.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]]
    return (by_name or matches)[0]


def read_json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CsvError(f"{name}: not valid JSON ({exc})") from None


def blob_map(files: Mapping[str, bytes]) -> dict[str, str]:
    """sha256 -> JSON text from blobs.csv (empty when the bundle has none)."""
    data = files.get(schema.BLOBS.path)
    if not data:
        return {}
    table = read_table(schema.BLOBS, data)
    return {r[0]: r[1] for r in table.rows}
