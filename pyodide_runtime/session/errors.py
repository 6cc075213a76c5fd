"""Describing an exception the env (or a bot, or the session around it) raised, as plain data."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from pyodide_runtime.envs.base import Game

__all__ = ["describe_error"]

#: The game's methods the engine calls, as an error report names them.
_GAME_CALLS = frozenset(("reset", "step", "render", "get_state", "set_state"))


def _module_matcher(owners: list[Any]) -> Any:
    """A test for "this module name is the env's (or a bot's) code": its module, or a sibling in its package."""
    names = {getattr(o, "__module__", None) for o in owners} - {None}
    packages = tuple(n.rpartition(".")[0] + "." for n in names if "." in n)
    return lambda name: name in names or (bool(packages) and name.startswith(packages))


def _engine_or_stdlib(name: str) -> bool:
    if name.startswith("pyodide_runtime."):
        return not name.startswith("pyodide_runtime.examples")
    return name.partition(".")[0] in sys.stdlib_module_names


def _where(path: str, line: int) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        rel = path
    return f"{path if rel.startswith('..') else rel}:{line}"


def describe_error(
    exc: BaseException, game: Game | None, *, frame: int, episode: int = 0, confirmed_frames: int = 0,
    where: str | None = None,
) -> dict[str, Any]:
    """What an exception raised by ``game`` (or around it) was, as plain JSON-able data.

    ``where`` is the game call that raised (``reset``, ``step``, ``bot policy``, ``render``, ``get_state``,
    ``set_state``; ``session`` when no game call is on the traceback), read from the traceback unless given.
    ``location`` is ``file:line`` of the innermost frame in the env's (or a bot's) own code, else the innermost
    frame outside the engine and the standard library, else the innermost frame. ``reason`` is the one-line
    summary used as the session's ``end_reason``.
    """
    entries = list(traceback.walk_tb(exc.__traceback__))
    start, call = len(entries), None
    for i, (f, _) in enumerate(entries):
        if game is not None and f.f_code.co_name in _GAME_CALLS and f.f_locals.get("self") is game:
            start, call = i, f.f_code.co_name
            break
    inner = entries[start:]
    if call == "step" and any(f.f_code.co_name == "_bot_action" and f.f_locals.get("self") is game
                              for f, _ in inner):
        call = "bot policy"
    where = where or call or "session"
    owners: list[Any] = []
    if game is not None:
        env = getattr(game, "env", None)
        owners.append(type(getattr(env, "unwrapped", env)) if env is not None else type(game))
        for bot in dict(getattr(game, "bots", None) or {}).values():
            owners.append(getattr(bot, "function", None) or type(bot))
    own = _module_matcher(owners)
    location = None
    for test in (own, lambda name: not _engine_or_stdlib(name), lambda name: True):
        hits = [(f, n) for f, n in inner if test(f.f_globals.get("__name__", ""))]
        if hits:
            f, n = hits[-1]
            location = _where(f.f_code.co_filename, n)
            break
    if location is None and entries:
        f, n = entries[-1]
        location = _where(f.f_code.co_filename, n)
    kind = type(exc).__name__
    reason = (f"the session raised {kind} at frame {frame}" if where == "session"
              else f"the env raised {kind} in {where} at frame {frame}")
    return {
        "kind": kind, "message": str(exc), "where": where, "frame": frame, "episode": episode,
        "resimulating": any(f.f_code.co_name == "apply_rollback" for f, _ in entries),
        "confirmed_frames": confirmed_frames, "location": location, "reason": reason,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
