"""Which env a bundle is replayed with, here (CPython) and in the replay page (Pyodide).

The bundle records the env factory it was played with (``env.factory``), the env config and the bot names. A
module spec (``package.module:function``) is used as it is. A file spec's source is not in the bundle: it is
taken from ``--env path/to/file.py:function`` (or the study config's ``env.spec``), else from the recorded path
when that file exists on this machine. Bots other than the built-in ones come from the study config's ``[bots]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyodide_runtime.host.replay.core import ReplayError

__all__ = ["ReplayTarget", "resolve_target"]


@dataclass(frozen=True)
class ReplayTarget:
    """The env to replay with: ``spec`` for this machine, ``page_spec`` and ``env_file`` for the page."""

    spec: str
    page_spec: str
    env_file: Path | None = None
    env_source: Path | None = None
    packages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    bots: dict[str, Any] = field(default_factory=dict)

    def importable(self) -> None:
        """Make an ``[env] source`` directory importable here, as the page's wheel makes it there."""
        if self.env_source is not None:
            from pyodide_runtime.host.checkenv.target import source_search_path

            entry = str(source_search_path(self.env_source))
            if entry not in sys.path:
                sys.path.insert(0, entry)


def _is_file_spec(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def resolve_target(recorded: dict[str, Any], env_spec: str | None = None, config_path: Path | None = None
                   ) -> ReplayTarget:
    """The env for a bundle whose ``canonical.env`` is ``recorded``; ``env_spec`` and ``config_path`` as the
    command line gives them (``--env`` wins over the config's ``env.spec``)."""
    from pyodide_runtime.host.server.study import StudyError, load_study

    factory = recorded.get("factory")
    bots: dict[str, Any] = {}
    packages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    source: Path | None = None
    if env_spec is None and config_path is None:
        if not factory:
            raise ReplayError("the bundle does not record its env factory; pass --env SPEC")
        target, _, _ = str(factory).rpartition(":")
        if not _is_file_spec(target):
            return ReplayTarget(spec=factory, page_spec=factory)
        if not Path(target).is_file():
            raise ReplayError(f"the bundle was played with the env file {target}, which is not on this machine; "
                              "pass --env path/to/that_file.py:function")
        env_spec = str(factory)
    try:
        study = load_study(env_spec, config_path)
    except StudyError as exc:
        raise ReplayError(str(exc)) from None
    bots = dict(study.config.get("bots") or {})
    packages, exclude, source = study.packages, study.exclude, study.env_source
    if study.env_file is not None:
        local = f"{study.env_file}:{study.function}"
        page = f"{study.env_file.name}:{study.function}"
    else:
        local = page = study.env_spec
    return ReplayTarget(spec=local, page_spec=page, env_file=study.env_file, env_source=source, packages=packages,
                        exclude=exclude, bots=bots)
