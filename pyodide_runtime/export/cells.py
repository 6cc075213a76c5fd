"""Exact text encodings of CSV cells, and their parsers.

``json_cell`` is :func:`pyodide_runtime.canonical.canonical_json`. ``scalar_cell`` is the canonical JSON of a scalar,
except that floats keep Python's repr (``nan``/``inf`` included) so CSV readers type the column as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from pyodide_runtime.canonical import canonical_json, to_canonical

__all__ = [
    "json_cell", "scalar_cell", "quote", "row", "parse_scalar", "parse_json", "parse_cell", "canonical_scalar",
    "read_csv", "CsvError",
]

_float_repr = float.__repr__
_int_repr = int.__repr__
_encode_str = json.JSONEncoder(ensure_ascii=False).encode
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
#: The canonical JSON of a value (exactly :func:`pyodide_runtime.canonical.canonical_json`).
json_cell = canonical_json
def scalar_cell(value: Any) -> str:
    """A scalar column cell, CSV-quoted: floats as ``repr``, ints in decimal, ``true``/``false``, else
    canonical JSON."""
    kind = type(value)
    if kind is float:
        return _float_repr(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return _int_repr(value)
    if kind is str:
        return quote(_encode_str(value))
    plain = to_canonical(value)
    if type(plain) is float:
        return _float_repr(plain)
    if plain in _NON_FINITE and not isinstance(value, str):  # a non-finite numpy float, say
        return _float_repr(float(plain))
    return quote(json_cell(plain))


def quote(cell: str) -> str:
    """Quote a CSV cell when it holds a comma, a quote or a line break."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def row(cells: list[str]) -> str:
    """One CSV line (with its ``\\n``) from already encoded cells."""
    return ",".join([quote(c) for c in cells]) + "\n"


# -- parsing --------------------------------------------------------------------------------------------------
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def parse_scalar(text: str) -> Any:
    """The value of a ``scalar`` cell (``None`` for an empty cell, which means *absent*)."""
    if text == "":
        return None
    special = _SPECIAL.get(text)
    if special is not None:
        return special
    return json.loads(text)


def canonical_scalar(text: str) -> str:
    """The canonical JSON text of a ``scalar`` cell's value (what the state-hash chain covers)."""
    special = _SPECIAL.get(text)
    if special is not None:
        return {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}[text]
    return text


def parse_json(text: str, blobs: Mapping[str, str] | None = None) -> Any:
    """The value of a ``json`` cell, resolving blob references; ``None`` for an empty cell."""
    if text == "":
        return None
    if text.startswith("sha256:"):
        if blobs is None or text[7:] not in blobs:
            raise KeyError(f"blob {text[7:]} is not in blobs.csv")
        text = blobs[text[7:]]
    return json.loads(text)


def _parse_bool(text: str) -> bool | None:
    if text == "":
        return None
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"not a bool: {text!r}")


def _parse_int(text: str) -> int | None:
    return None if text == "" else int(text)


def _parse_float(text: str) -> float | None:
    return None if text == "" else float(text)


def _parse_str(text: str) -> str:
    return text


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int, "float": _parse_float, "bool": _parse_bool, "str": _parse_str, "hash": _parse_str,
    "scalar": parse_scalar,
}


def parse_cell(kind: str, text: str, blobs: Mapping[str, str] | None = None, decode_json: bool = True) -> Any:
    """Parse one cell of the given column type (``json`` cells stay text unless ``decode_json``)."""
    if kind == "json":
        if not decode_json:
            return None if text == "" else text
        return parse_json(text, blobs)
    return _PARSERS[kind](text)


class CsvError(ValueError):
    """A CSV file that is not a complete, well-formed table."""


def read_csv(data: bytes | str, name: str = "table") -> tuple[list[str], list[list[str]]]:
    """Parse a whole CSV strictly: UTF-8, final newline, every row as wide as the header."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as exc:
        raise CsvError(f"{name}: not UTF-8 ({exc})") from None
    if not text:
        raise CsvError(f"{name}: empty file (no header)")
    if not text.endswith("\n"):
        raise CsvError(f"{name}: truncated (no newline at the end of the last row)")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise CsvError(f"{name}: malformed CSV ({exc})") from None
    header = rows[0]
    width = len(header)
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != width:
            raise CsvError(f"{name}: line {i} has {len(r)} cells, the header has {width}")
    return header, rows[1:]
