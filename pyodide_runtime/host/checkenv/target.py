"""What is being checked: an env factory spec, its config, its bots and packages, and fresh games built from them."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EnvTarget", "source_search_path"]


def source_search_path(source: Path) -> Path:
    """The ``sys.path`` entry that makes a local env directory importable as the page's wheel makes it.

    A directory with ``__init__.py`` is a package named after itself (its parent goes on the path); otherwise its
    modules and sub-packages are top-level (the directory itself goes on the path).
    """
    source = Path(source).resolve()
    return source.parent if (source / "__init__.py").is_file() else source


@dataclass(frozen=True)
class EnvTarget:
    """An env factory (``module:function`` or ``path/to/file.py:function``) with its config and bots.

    ``source`` is a local env directory (the study's ``env.source``) that the factory's module lives in;
    ``packages`` are the study's ``env.packages`` requirement strings, which the page loads with the runtime.
    """

    spec: str
    config: Mapping[str, Any] | None = None
    bots: Mapping[str, str] = field(default_factory=dict)
    source: Path | None = None
    packages: tuple[str, ...] = ()
    #: ``env.exclude``: declared dependencies of ``packages`` the page does not load (the env never imports them).
    exclude: tuple[str, ...] = ()

    @property
    def file(self) -> Path | None:
        """The factory's source file for a file spec, else ``None``."""
        target = self.spec.rpartition(":")[0]
        if target.endswith(".py") or "/" in target:
            return Path(target).resolve()
        return None

    def importable(self) -> None:
        """Put the env directory (if any) on ``sys.path``, so the factory's module imports as in the page."""
        if self.source is not None:
            entry = str(source_search_path(self.source))
            if entry not in sys.path:
                sys.path.insert(0, entry)

    def make_env(self) -> Any:
        """Call the factory: a fresh, unwrapped env."""
        from pyodide_runtime.envs.loading import load_factory

        self.importable()
        factory = load_factory(self.spec)
        return factory() if self.config is None else factory(dict(self.config))

    def load_game(self, *, verify: bool = False, **options: Any) -> Any:
        """A fresh game, as the runtime would build it (``verify`` runs the start-up snapshot check)."""
        from pyodide_runtime.envs.loading import load_game

        self.importable()
        return load_game(self.spec, self.config, bots=dict(self.bots) or None, verify=verify, **options)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "config": dict(self.config) if self.config is not None else None,
                "bots": dict(self.bots), "source": str(self.source) if self.source is not None else None,
                "packages": list(self.packages), "exclude": list(self.exclude)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvTarget:
        source = data.get("source")
        return cls(data["spec"], data.get("config"), dict(data.get("bots") or {}),
                   Path(source) if source else None, tuple(data.get("packages") or ()),
                   tuple(data.get("exclude") or ()))
