"""Compare the canonical data of two exports, cell by cell.

Inputs are bundles (zip or extracted directory) or single canonical CSV files. Which files and columns take part
is decided by :mod:`pyodide_runtime.export.schema`: every canonical table, and the canonical member of
``metadata.json``. Rows are matched on the table's key columns (for frames: ``global_frame`` and ``agent``), so a
missing row is reported as such instead of shifting every row after it.

Strict by default: any difference, including a different number of confirmed frames, makes the exports differ.
With ``prefix=True`` (for sessions that ended partial) only frames and resets both exports confirmed are compared.
The ``participant/`` entries an export may carry (answers, scenes; see :mod:`pyodide_runtime.export.participant`)
differ between participants by nature and are never compared.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.export import schema
from pyodide_runtime.export.bundle import BundleError, open_bundle
from pyodide_runtime.export.cells import CsvError
from pyodide_runtime.export.participant import PREFIX as PARTICIPANT_PREFIX
from pyodide_runtime.export.tables import SchemaError, Table, identify_csv, read_json, read_table

__all__ = ["CompareError", "Difference", "CompareResult", "compare"]


class CompareError(Exception):
    """An input that cannot be compared: unreadable, truncated, or not in the expected schema."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One differing cell (or a row present on one side only, with ``column`` ``"<row>"``)."""

    file: str
    key: dict[str, str]
    column: str
    a: str | None
    b: str | None

    def describe(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.key.items())
        return f"{self.file} [{where}] {self.column}: {_short(self.a)} != {_short(self.b)}"


def _short(value: str | None, limit: int = 80) -> str:
    if value is None:
        return "(absent)"
    return value if len(value) <= limit else value[: limit - 3] + "..."


@dataclass
class CompareResult:
    """Outcome of :func:`compare`. ``identical`` is the verdict; ``differences`` holds the first few."""

    a: str
    b: str
    identical: bool = True
    files_compared: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, diff: Difference, limit: int) -> None:
        self.identical = False
        self.total += 1
        name = f"{diff.file}:{diff.column}"
        self.counts[name] = self.counts.get(name, 0) + 1
        if len(self.differences) < limit:
            self.differences.append(diff)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a, "b": self.b, "identical": self.identical, "files_compared": self.files_compared,
            "total_differences": self.total, "differences_per_column": self.counts,
            "first_differences": [
                {"file": d.file, "key": d.key, "column": d.column, "a": d.a, "b": d.b} for d in self.differences
            ],
            "notes": self.notes,
        }

    def report(self) -> str:
        """A human-readable summary."""
        if self.identical:
            lines = [f"identical: {', '.join(self.files_compared)}"]
        else:
            lines = [f"DIFFERENT: {self.total} difference(s)"]
            lines += [f"  {d.describe()}" for d in self.differences]
            if self.total > len(self.differences):
                lines.append(f"  ... {self.total - len(self.differences)} more")
            lines.append("per column:")
            lines += [f"  {name}: {n}" for name, n in sorted(self.counts.items())]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _load(source: str | os.PathLike[str] | bytes) -> dict[str, bytes]:
    """Canonical inputs of one side as ``{bundle path: bytes}``; a bare CSV maps to its table's path."""
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".csv":
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CompareError(f"{path}: {exc.strerror or exc}") from None
            try:
                spec = identify_csv(data, path.name)
            except SchemaError as exc:
                raise CompareError(str(exc)) from None
            if not spec.canonical:
                raise CompareError(f"{path}: {spec.path} is not a canonical table; nothing to compare")
            return {spec.path: data}
        if not path.exists():
            raise CompareError(f"{path}: no such file or directory")
    try:
        files = open_bundle(source)
    except BundleError as exc:
        raise CompareError(str(exc)) from None
    if schema.METADATA.path not in files and schema.FRAMES.path not in files:
        if any(p.startswith(PARTICIPANT_PREFIX) for p in files):
            raise CompareError(f"{source!s:.80}: a participant-only export (no game data); nothing canonical to "
                               "compare")
        raise CompareError(f"{source!s:.80}: not an export bundle (no metadata.json or frames.csv)")
    return files


def compare(
    a: str | os.PathLike[str] | bytes,
    b: str | os.PathLike[str] | bytes,
    *,
    prefix: bool = False,
    metadata: bool = True,
    max_differences: int = 20,
    progress: Callable[[str], None] | None = None,
) -> CompareResult:
    """Compare the canonical content of ``a`` and ``b``; raises :class:`CompareError` when it cannot."""
    fa, fb = _load(a), _load(b)
    csv_a, csv_b = _is_csv(a), _is_csv(b)
    if csv_a or csv_b:
        paths = set(fa if csv_a else fb)
        other = fb if csv_a else fa
        if csv_a and csv_b and set(fa) != set(fb):
            raise CompareError(f"schema mismatch: a is {next(iter(fa))}, b is {next(iter(fb))}")
        missing = paths - set(other)
        if missing:
            raise CompareError(f"schema mismatch: {', '.join(sorted(missing))} is not in the other input")
        fa = {p: d for p, d in fa.items() if p in paths}
        fb = {p: d for p, d in fb.items() if p in paths}
    result = CompareResult(str(a)[:200] if not isinstance(a, bytes) else "<bytes>",
                           str(b)[:200] if not isinstance(b, bytes) else "<bytes>")
    if any(p.startswith(PARTICIPANT_PREFIX) for p in (*fa, *fb)):
        result.notes.append("participant/ entries (scenes, answers, waiting) are per participant and not compared; "
                            "only the canonical tables are")
    common_frames: int | None = None
    for spec in schema.canonical_files():
        in_a, in_b = spec.path in fa, spec.path in fb
        if not in_a and not in_b:
            continue
        if in_a != in_b:
            if spec.required:
                raise CompareError(f"{spec.path} is missing from {'b' if in_a else 'a'}")
            continue
        if progress is not None:
            progress(f"comparing {spec.path}")
        if spec.kind == "csv":
            ta, tb = _table(spec, fa[spec.path], "a"), _table(spec, fb[spec.path], "b")
            if prefix and spec in (schema.FRAMES, schema.RESETS):
                ta, tb, note = _restrict(spec, ta, tb, common_frames)
                if spec is schema.FRAMES:
                    common_frames = _frames_of(ta)
                if note:
                    result.notes.append(note)
            elif prefix:
                result.notes.append(f"{spec.path}: not compared in prefix mode")
                continue
            _compare_table(spec, ta, tb, result, max_differences)
        elif spec.canonical_member and metadata and not prefix:
            _compare_member(spec, fa[spec.path], fb[spec.path], result, max_differences)
        else:
            result.notes.append(f"{spec.path}: not compared (prefix mode or metadata off)")
            continue
        result.files_compared.append(spec.path)
    if not result.files_compared:
        raise CompareError("no canonical file in common to compare")
    return result


def _is_csv(source: Any) -> bool:
    return not isinstance(source, (bytes, bytearray)) and Path(source).suffix.lower() == ".csv"


def _table(spec: schema.FileSpec, data: bytes, side: str) -> Table:
    try:
        return read_table(spec, data, f"{side}: {spec.path}")
    except (CsvError, SchemaError) as exc:
        raise CompareError(str(exc)) from None


def _frames_of(table: Table) -> int:
    i = table.index("global_frame")
    return len({r[i] for r in table.rows})


def _restrict(spec: schema.FileSpec, ta: Table, tb: Table, frames: int | None) -> tuple[Table, Table, str]:
    if spec is schema.FRAMES:
        i = ta.index("global_frame")
        na, nb = len({r[i] for r in ta.rows}), len({r[i] for r in tb.rows})
        n = min(na, nb)
        keep = [r for r in ta.rows if int(r[i]) < n], [r for r in tb.rows if int(r[i]) < n]
        note = f"prefix: compared the {n} frames both confirmed (a has {na}, b has {nb})" if na != nb else ""
    else:
        i, s = ta.index("episode"), ta.index("start_frame")
        limit = frames if frames is not None else 1 << 62
        keep = [r for r in ta.rows if int(r[s]) <= limit], [r for r in tb.rows if int(r[s]) <= limit]
        ea, eb = {r[i] for r in keep[0]}, {r[i] for r in keep[1]}
        common = ea & eb
        keep = [r for r in keep[0] if r[i] in common], [r for r in keep[1] if r[i] in common]
        note = ""
    return Table(spec, ta.header, keep[0]), Table(spec, tb.header, keep[1]), note


def _compare_table(spec: schema.FileSpec, ta: Table, tb: Table, result: CompareResult, limit: int) -> None:
    if ta.rows == tb.rows:
        return
    key_cols = [ta.index(k) for k in spec.order] if spec.order else []
    label_cols = [n for n in ("episode", "frame", "agent") if n in ta.header]
    labels = [ta.index(n) for n in label_cols]

    def key(r: list[str]) -> tuple[str, ...]:
        return tuple(r[i] for i in key_cols)

    def label(r: list[str]) -> dict[str, str]:
        out = {spec.order[j]: r[i] for j, i in enumerate(key_cols)} if key_cols else {}
        out.update({n: r[i] for n, i in zip(label_cols, labels)})
        return out

    if not key_cols:  # positional
        pairs = list(zip(ta.rows, tb.rows))
        only_a, only_b = ta.rows[len(tb.rows):], tb.rows[len(ta.rows):]
    else:
        index_b = {key(r): r for r in tb.rows}
        keys_a = {key(r) for r in ta.rows}
        pairs = [(r, index_b[key(r)]) for r in ta.rows if key(r) in index_b]
        only_a = [r for r in ta.rows if key(r) not in index_b]
        only_b = [r for r in tb.rows if key(r) not in keys_a]
    for ra, rb in pairs:
        if ra == rb:
            continue
        for j, name in enumerate(ta.header):
            if ra[j] != rb[j]:
                result.add(Difference(spec.path, label(ra), name, ra[j], rb[j]), limit)
    for r in only_a:
        result.add(Difference(spec.path, label(r), "<row>", "present", None), limit)
    for r in only_b:
        result.add(Difference(spec.path, label(r), "<row>", None, "present"), limit)
    if key_cols and not only_a and not only_b and [key(r) for r in ta.rows] != [key(r) for r in tb.rows]:
        result.add(Difference(spec.path, {}, "<row order>", "differs", "differs"), limit)


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else str(k), out)
    else:
        out[path] = canonical_json(value)


def _compare_member(spec: schema.FileSpec, da: bytes, db: bytes, result: CompareResult, limit: int) -> None:
    try:
        ma, mb = read_json(da, f"a: {spec.path}"), read_json(db, f"b: {spec.path}")
        ca, cb = ma[spec.canonical_member], mb[spec.canonical_member]
    except (CsvError, KeyError, TypeError) as exc:
        raise CompareError(f"{spec.path}: no readable {spec.canonical_member!r} member ({exc})") from None
    if canonical_json(ca) == canonical_json(cb):
        return
    fa: dict[str, str] = {}
    fb: dict[str, str] = {}
    _flatten(ca, "", fa)
    _flatten(cb, "", fb)
    for k in sorted(set(fa) | set(fb)):
        if fa.get(k) != fb.get(k):
            result.add(Difference(spec.path, {"member": spec.canonical_member}, k, fa.get(k), fb.get(k)), limit)


def stderr_progress() -> Callable[[str], None] | None:
    """A progress printer on stderr when stderr is a terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def as_json(result: CompareResult) -> str:
    return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
