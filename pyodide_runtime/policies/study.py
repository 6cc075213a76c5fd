"""Read a study file's ``[policies]`` table into one :class:`PolicySpec` per agent."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pyodide_runtime.policies.spec import PolicyError, PolicySpec

__all__ = ["policies_from_study_file"]


def policies_from_study_file(path: Path | str) -> dict[str, PolicySpec]:
    """The ``[policies.AGENT]`` tables of a study TOML file, checked; ``{}`` when it has none.

    Model paths are relative to the study file. Raises :class:`PolicyError` naming the file and field.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    table = raw.get("policies")
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: policies must be a table of [policies.AGENT] tables")
    base = path.resolve().parent
    out = {}
    for agent, entry in table.items():
        try:
            out[agent] = PolicySpec.from_table(agent, entry, base)
        except PolicyError as exc:
            raise PolicyError(f"{path}: {exc}") from None
    return out
