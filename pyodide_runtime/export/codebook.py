"""The data dictionary of a bundle, generated from :mod:`pyodide_runtime.export.schema` (one source of truth)."""

from __future__ import annotations

from typing import Any

from pyodide_runtime.export import schema

__all__ = ["codebook_json", "codebook_markdown"]


def codebook_json() -> dict[str, Any]:
    """Every file and column: type, meaning, canonical or not."""
    return {
        "format": schema.FORMAT,
        "format_version": schema.FORMAT_VERSION,
        "types": dict(schema.TYPES),
        "files": [
            {
                "path": f.path,
                "kind": f.kind,
                "canonical": f.canonical,
                "canonical_member": f.canonical_member,
                "required": f.required,
                "description": f.description,
                "row_order": list(f.order),
                "columns": [
                    {"name": c.name, "type": c.type, "nullable": c.nullable, "description": c.description}
                    for c in f.columns
                ],
            }
            for f in schema.FILES
        ],
    }


def codebook_markdown() -> str:
    """The same dictionary as Markdown."""
    out = [
        f"# Codebook ({schema.FORMAT} version {schema.FORMAT_VERSION})",
        "",
        "Canonical files are byte-identical for every participant of a session; the others are this "
        "participant's own observations. CSV files are UTF-8 with `\\n` line endings, comma-separated, quoted "
        "only where needed. An empty cell means *absent* where a column is marked nullable.",
        "",
        "## Cell types",
        "",
        "| Type | Encoding |",
        "|---|---|",
        *(f"| `{name}` | {text} |" for name, text in schema.TYPES.items()),
        "",
        "## Files",
        "",
    ]
    for f in schema.FILES:
        canon = "canonical" if f.canonical else "not canonical"
        if f.canonical_member:
            canon = f"canonical member `{f.canonical_member}` only"
        presence = "always present" if f.required else "optional"
        out += [f"### `{f.path}`", "", f"{f.description}", "", f"*{f.kind}, {canon}, {presence}.*", ""]
        if f.order:
            out += [f"A row is identified by {', '.join(f'`{o}`' for o in f.order)}; rows follow that order.", ""]
        if f.columns:
            out += ["| Column | Type | Empty allowed | Meaning |", "|---|---|---|---|"]
            out += [
                f"| `{c.name}` | `{c.type}` | {'yes' if c.nullable else 'no'} | {c.description} |"
                for c in f.columns
            ]
            out.append("")
    return "\n".join(out)
