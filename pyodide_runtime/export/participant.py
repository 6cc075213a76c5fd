"""The participant's part of an export: what happened outside the game (scenes, answers, waiting), attached to the
game bundle under ``participant/``.

:func:`attach` takes the game bundle (or ``None`` when there is no game part, e.g. consent was declined) and the
record the page kept, and returns a new zip that holds every entry of the game bundle byte for byte (its
manifest and canonical digest unchanged) plus the ``participant/`` tables below. These tables are never canonical:
two participants of one session answer differently, and ``compare`` looks only at the canonical tables.

The record (a plain dict, as the page sends it)::

    {"scenes": [{"index", "id", "kind", "entered_ms", "left_ms", "outcome"}, ...],
     "answers": [{"scene_id", "question_id", "kind", "answer", "answered_ms"}, ...],
     "assignment": [{"label", "order": [scene ids]}, ...],
     "waiting": [{"attempt", "event", "at_ms", "rtt_ms", "detail"}, ...],
     "consent": "agreed" | "declined" | None, "completion_code": str | None,
     "page_started_utc": ISO time, "questions": [{"scene_id", "question_id", "kind", "required"}, ...] (optional),
     "practice": [practice game bundle bytes, ...] (optional)}

Times are milliseconds since the page loaded. Practice bundles are copied under ``participant/practice/<n>/``
(``n`` from 1) with their entry names; ``participant/record.json`` keeps the record (practice bundles replaced by
their sha256 and size) and ``participant/manifest.json`` the sha256 of every ``participant/`` entry.

Pure standard library: this runs inside Pyodide.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from pyodide_runtime.canonical import canonical_json, json_file
from pyodide_runtime.export.bundle import ZIP_DATE, open_bundle
from pyodide_runtime.export.cells import row
from pyodide_runtime.export.schema import Column, FileSpec

__all__ = [
    "PREFIX", "SCHEMA_VERSION", "SCENES", "ANSWERS", "ASSIGNMENT", "WAITING", "RECORD", "MANIFEST", "FILES",
    "PRACTICE_PREFIX", "ParticipantError", "attach", "participant_files", "spec_for",
]

#: Every entry this module adds starts with this.
PREFIX = "participant/"
PRACTICE_PREFIX = PREFIX + "practice/"
#: The version of the ``participant/`` layout, written into ``record.json``.
SCHEMA_VERSION = 1

SCENES = FileSpec(
    PREFIX + "scenes.csv", "csv", False, "The scenes the participant saw, in the order shown.",
    (
        Column("scene_index", "int", "Position in the participant's order (0-based)."),
        Column("scene_id", "str", "The scene's id in the study config."),
        Column("kind", "str", "consent, instructions, practice, waiting, game, survey or end."),
        Column("entered_ms", "float", "When the scene was shown (ms since the page loaded)."),
        Column("left_ms", "float", "When the participant left it; empty when the page closed on it.", True),
        Column("duration_ms", "float", "left_ms - entered_ms; empty when left_ms is.", True),
        Column("outcome", "str", "How the scene ended (e.g. completed, agreed, declined, matched, timeout).", True),
    ),
    order=("scene_index",),
)
ANSWERS = FileSpec(
    PREFIX + "answers.csv", "csv", False, "Survey answers, one row per question answered.",
    (
        Column("scene_id", "str", "The survey scene."),
        Column("question_id", "str", "The question's id (unique across the study)."),
        Column("kind", "str", "likert, choice, number or text."),
        Column("answer", "json", "The answer as canonical JSON: a number (likert, number), a string (text, "
                                 "choice), a list of strings (choice with multiple), or null (skipped)."),
        Column("answered_ms", "float", "When the answer was last changed (ms since the page loaded).", True),
    ),
    order=("scene_id", "question_id"),
)
ASSIGNMENT = FileSpec(
    PREFIX + "assignment.csv", "csv", False, "The order shuffled scenes were shown in, per shuffle label.",
    (
        Column("label", "str", "The shuffle label of the study config."),
        Column("order", "json", "The scene ids of that label, in the order shown (a JSON list)."),
    ),
    order=("label",),
)
WAITING = FileSpec(
    PREFIX + "waiting.csv", "csv", False, "What happened while the participant waited for a partner.",
    (
        Column("attempt", "int", "Matching attempt (1 for the first; a requeue starts the next)."),
        Column("event", "str", "joined, matched, screened, requeued, timeout, ..."),
        Column("at_ms", "float", "When (ms since the page loaded)."),
        Column("rtt_ms", "float", "The round-trip time measured, when the event has one.", True),
        Column("detail", "str", "Free text: the server's message, the screening result, ...", True),
    ),
    order=("attempt", "at_ms"),
)
RECORD = FileSpec(PREFIX + "record.json", "json", False,
                  "The whole record the page kept, plus `schema_version`; practice bundles as sha256 and size.")
MANIFEST = FileSpec(PREFIX + "manifest.json", "json", False, "sha256 and size of every other participant/ entry.")
#: The participant tables and files (practice bundles' entries come on top, under ``participant/practice/``).
FILES: tuple[FileSpec, ...] = (SCENES, ANSWERS, ASSIGNMENT, WAITING, RECORD, MANIFEST)
_BY_PATH = {f.path: f for f in FILES}


class ParticipantError(ValueError):
    """A record that cannot be written (wrong types); the message names the field."""


def spec_for(path: str) -> FileSpec | None:
    """The declaration of a ``participant/`` path (``None`` for practice entries and unknown paths)."""
    return _BY_PATH.get(path)


def participant_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The ``participant/`` entries of a bundle's files."""
    return {p: d for p, d in files.items() if p.startswith(PREFIX)}


# -- cells ----------------------------------------------------------------------------------------------------
def _f(value: Any, where: str, nullable: bool = True) -> str:
    if value is None:
        if nullable:
            return ""
        raise ParticipantError(f"{where}: is required (a number of ms)")
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ParticipantError(f"{where}: must be a finite number (got {value!r})")
    return float.__repr__(float(value))


def _i(value: Any, where: str) -> str:
    if type(value) is not int:
        raise ParticipantError(f"{where}: must be an integer (got {value!r})")
    return str(value)


def _s(value: Any, where: str, nullable: bool = False) -> str:
    if value is None and nullable:
        return ""
    if not isinstance(value, str):
        raise ParticipantError(f"{where}: must be a string (got {value!r})")
    return value


def _list(record: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = record.get(key) or []
    if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
        raise ParticipantError(f"record.{key}: must be a list of objects")
    return items


def _json(value: Any, where: str) -> str:
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as exc:
        raise ParticipantError(f"{where}: not JSON data ({exc})") from None


# -- the tables -----------------------------------------------------------------------------------------------
def tables(record: Mapping[str, Any]) -> dict[str, bytes]:
    """The four participant tables of ``record``, as ``{path: bytes}``."""
    lines = [SCENES.header + "\n"]
    for n, s in enumerate(_list(record, "scenes")):
        w = f"record.scenes[{n}]"
        entered, left = s.get("entered_ms"), s.get("left_ms")
        duration = left - entered if isinstance(left, (int, float)) and isinstance(entered, (int, float)) else None
        lines.append(row([_i(s.get("index"), f"{w}.index"), _s(s.get("id"), f"{w}.id"),
                          _s(s.get("kind"), f"{w}.kind"), _f(entered, f"{w}.entered_ms", nullable=False),
                          _f(left, f"{w}.left_ms"), _f(duration, f"{w}.duration_ms"),
                          _s(s.get("outcome"), f"{w}.outcome", nullable=True)]))
    out = {SCENES.path: "".join(lines)}
    lines = [ANSWERS.header + "\n"]
    for n, a in enumerate(_list(record, "answers")):
        w = f"record.answers[{n}]"
        lines.append(row([_s(a.get("scene_id"), f"{w}.scene_id"), _s(a.get("question_id"), f"{w}.question_id"),
                          _s(a.get("kind"), f"{w}.kind"), _json(a.get("answer"), f"{w}.answer"),
                          _f(a.get("answered_ms"), f"{w}.answered_ms")]))
    out[ANSWERS.path] = "".join(lines)
    lines = [ASSIGNMENT.header + "\n"]
    for n, a in enumerate(_list(record, "assignment")):
        w = f"record.assignment[{n}]"
        order = a.get("order")
        if not isinstance(order, list) or not all(isinstance(x, str) for x in order):
            raise ParticipantError(f"{w}.order: must be a list of scene ids")
        lines.append(row([_s(a.get("label"), f"{w}.label"), _json(order, f"{w}.order")]))
    out[ASSIGNMENT.path] = "".join(lines)
    lines = [WAITING.header + "\n"]
    for n, e in enumerate(_list(record, "waiting")):
        w = f"record.waiting[{n}]"
        detail = e.get("detail")
        lines.append(row([_i(e.get("attempt"), f"{w}.attempt"), _s(e.get("event"), f"{w}.event"),
                          _f(e.get("at_ms"), f"{w}.at_ms", nullable=False), _f(e.get("rtt_ms"), f"{w}.rtt_ms"),
                          "" if detail is None else (detail if isinstance(detail, str) else _json(detail, w))]))
    out[WAITING.path] = "".join(lines)
    return {path: text.encode("utf-8") for path, text in out.items()}


def attach(bundle: bytes | None, record: Mapping[str, Any]) -> tuple[bytes, str]:
    """The game ``bundle`` (zip bytes, or ``None`` for a participant-only export) with the participant tables of
    ``record`` added; returns ``(zip bytes, sha256)``. Every entry of ``bundle`` is kept byte for byte, in its
    order; ``record["practice"]`` (a list of practice bundles) is copied under ``participant/practice/<n>/``.

    Raises :class:`ParticipantError` for a record of the wrong shape, and
    :class:`~pyodide_runtime.export.bundle.BundleError` for a bundle that is not a readable zip.
    """
    if not isinstance(record, Mapping):
        raise ParticipantError("record: must be an object")
    game = open_bundle(bytes(bundle)) if bundle is not None else {}
    if any(p.startswith(PREFIX) for p in game):
        raise ParticipantError("the bundle already has participant/ entries; attach to the game bundle itself")
    added = tables(record)
    practice = record.get("practice") or []
    if not isinstance(practice, (list, tuple)):
        raise ParticipantError("record.practice: must be a list of practice bundles")
    kept: list[dict[str, Any]] = []
    for n, data in enumerate(practice, start=1):
        data = bytes(data)
        for name, body in open_bundle(data).items():
            added[f"{PRACTICE_PREFIX}{n}/{name}"] = body
        kept.append({"entry": f"{PRACTICE_PREFIX}{n}/", "sha256": hashlib.sha256(data).hexdigest(),
                     "bytes": len(data)})
    saved = {k: v for k, v in record.items() if k != "practice"}
    if kept:
        saved["practice"] = kept
    try:
        added[RECORD.path] = json_file({"schema_version": SCHEMA_VERSION, "game": bool(game), "record": saved})
    except (TypeError, ValueError) as exc:
        raise ParticipantError(f"record: not JSON data ({exc})") from None
    added[MANIFEST.path] = json_file({
        "schema_version": SCHEMA_VERSION,
        "files": {p: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in added.items()},
    })
    data = _zip([*game.items(), *added.items()])
    return data, hashlib.sha256(data).hexdigest()


def _zip(items: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path, data in items:
            info = zipfile.ZipInfo(path, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data, compresslevel=1)
    return out.getvalue()
