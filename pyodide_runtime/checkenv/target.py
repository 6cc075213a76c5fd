"""What is being checked: an env factory spec, its config and its bots, and fresh games built from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EnvTarget"]


@dataclass(frozen=True)
class EnvTarget:
    """An env factory (``module:function`` or ``path/to/file.py:function``) with its config and bots."""

    spec: str
    config: Mapping[str, Any] | None = None
    bots: Mapping[str, str] = field(default_factory=dict)

    @property
    def file(self) -> Path | None:
        """The factory's source file for a file spec, else ``None``."""
        target = self.spec.rpartition(":")[0]
        if target.endswith(".py") or "/" in target:
            return Path(target).resolve()
        return None

    def make_env(self) -> Any:
        """Call the factory: a fresh, unwrapped env."""
        from pyodide_runtime.envs.loading import load_factory

        factory = load_factory(self.spec)
        return factory() if self.config is None else factory(dict(self.config))

    def load_game(self, *, verify: bool = False, **options: Any) -> Any:
        """A fresh game, as the runtime would build it (``verify`` runs the start-up snapshot check)."""
        from pyodide_runtime.envs.loading import load_game

        return load_game(self.spec, self.config, bots=dict(self.bots) or None, verify=verify, **options)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "config": dict(self.config) if self.config is not None else None,
                "bots": dict(self.bots)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvTarget:
        return cls(data["spec"], data.get("config"), dict(data.get("bots") or {}))
