"""API checks: the env honours gymnasium's or PettingZoo's contract, and our adapter can play it."""

from __future__ import annotations

import contextlib
import io
import re
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["check_upstream_api", "check_adapter"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # gymnasium colours its warnings
_NO_ATTRIBUTE = re.compile(r"has no attribute '([^']+)'")

#: What the runtime reads of a PettingZoo-style parallel env; missing any of these is a real failure.
RUNTIME_USES = frozenset({"possible_agents", "agents", "action_space", "reset", "step"})
_LOOKUP_HOOKS = frozenset({"__getattr__", "__getattribute__"})


def _is_gymnasium_env(env: Any) -> bool:
    from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

    install_multiprocessing_stub()
    import gymnasium

    return isinstance(env, gymnasium.Env)


def check_upstream_api(target: EnvTarget) -> CheckResult:
    """gymnasium's ``check_env`` for gymnasium envs, PettingZoo's ``parallel_api_test`` for parallel envs."""
    from pyodide_runtime.envs.parallel import looks_parallel

    env = target.make_env()
    if _is_gymnasium_env(env):
        from gymnasium.utils.env_checker import check_env

        return _run_checker("api.gymnasium", "gymnasium.utils.env_checker.check_env",
                            lambda: check_env(env, skip_render_check=True))
    if looks_parallel(env):
        try:
            from pettingzoo.test import parallel_api_test
        except ImportError:
            return CheckResult("api.pettingzoo", SKIP, "pettingzoo is not installed, so parallel_api_test was not run",
                               fix="pip install pettingzoo to run PettingZoo's own API test")
        from pettingzoo.utils.env import ParallelEnv

        if isinstance(env, ParallelEnv):
            return _run_checker("api.pettingzoo", "pettingzoo.test.parallel_api_test",
                                lambda: parallel_api_test(env, num_cycles=100))
        return _check_duck_typed(target, env, lambda e: parallel_api_test(e, num_cycles=100))
    return CheckResult("api.upstream", SKIP,
                       f"{type(env).__name__} is neither a gymnasium.Env nor a PettingZoo-style parallel env")


_API_FIX = "make the env follow the API the message names (see the library's docs)"


def _call_checker(call: Callable[[], Any]) -> tuple[Exception | None, list[str]]:
    """Run an upstream checker: the exception it raised, if any, and its warnings (first lines, sorted)."""
    chatter = io.StringIO()  # the checkers print their verdict; the report says it instead
    error = None
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(chatter):
        warnings.simplefilter("always")
        try:
            call()
        except Exception as exc:  # the upstream checkers raise AssertionError and friends
            error = exc
    return error, sorted({_ANSI.sub("", str(w.message)).splitlines()[0] for w in caught})


def _failed(name: str, checker: str, exc: Exception, note: str = "") -> CheckResult:
    text = str(exc)
    if not text:  # a bare assert: say which one
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            text = f"at {Path(last.filename).name}:{last.lineno}: {last.line}" if last.line else ""
    return CheckResult(name, FAIL, f"{checker} failed: {type(exc).__name__}: {text}".strip() + note, fix=_API_FIX)


def _run_checker(name: str, checker: str, call: Callable[[], Any]) -> CheckResult:
    return _verdict(name, checker, *_call_checker(call))


def _verdict(name: str, checker: str, error: Exception | None, notes: list[str]) -> CheckResult:
    if error is not None:
        return _failed(name, checker, error)
    if notes:
        return CheckResult(name, WARN, f"{checker} passed with {len(notes)} warning(s): {notes[0]}",
                           fix="address the warnings listed in details", details={"warnings": notes})
    return CheckResult(name, PASS, f"{checker} passed")


def _check_duck_typed(target: EnvTarget, env: Any, check: Callable[[Any], Any]) -> CheckResult:
    """``parallel_api_test`` on an env that has the API without subclassing ``pettingzoo.ParallelEnv``.

    The checker reads attributes the runtime never uses (``unwrapped``, ``observation_space``, ...). When it stops
    on one of those, that attribute is stood in for on a fresh env and the checker runs again, so a real API
    violation further on still fails; the missing attribute itself is only a warning.
    """
    name, checker = "api.pettingzoo", "pettingzoo.test.parallel_api_test"
    supplied: list[str] = []
    while True:
        error, notes = _call_checker(lambda: check(env))
        missing = _unused_missing_attribute(error, env) if error is not None else None
        if missing is None or missing in supplied:
            break
        supplied.append(missing)
        env = target.make_env()
        if not all(_stand_in(env, attr) for attr in supplied):
            return _unused_warning(supplied, ran_fully=False)
    if not supplied:
        return _verdict(name, checker, error, notes)
    if error is not None:
        note = f" (after standing in for {_listed(supplied)}, which the runtime does not use)"
        return _failed(name, checker, error, note)
    result = _unused_warning(supplied, ran_fully=True)
    if notes:
        result.details["warnings"] = notes
        result.message += f"; it warned: {notes[0]}" + (f" (and {len(notes) - 1} more)" if len(notes) > 1 else "")
    return result


def _listed(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _unused_warning(supplied: list[str], ran_fully: bool) -> CheckResult:
    listed = _listed(supplied)
    it = "it" if len(supplied) == 1 else "them"
    rest = (f"with stand-ins for {it}, the rest of the checker passed" if ran_fully
            else "no stand-in was possible, so the rest of the checker did not run")
    return CheckResult(
        "api.pettingzoo", WARN,
        f"PettingZoo's parallel_api_test needs {listed}, which this duck-typed env (not a pettingzoo.ParallelEnv "
        f"subclass) lacks; the runtime does not use {it}; {rest}",
        fix=f"add {listed} if you want the full PettingZoo checker; the runtime does not need {it}",
        details={"missing": list(supplied), "checker_completed": ran_fully})


def _unused_missing_attribute(exc: BaseException, env: Any) -> str | None:
    """The attribute PettingZoo's checker itself failed to find on ``env``, if the runtime never reads it."""
    if not isinstance(exc, AttributeError):
        return None
    name = getattr(exc, "name", None)
    if not name:
        found = _NO_ATTRIBUTE.search(str(exc))
        name = found.group(1) if found else None
    owner = getattr(exc, "obj", None)
    if not name or name in RUNTIME_USES or (owner is not None and owner is not env):
        return None
    import pettingzoo

    package = str(Path(pettingzoo.__file__).resolve().parent)
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    inside = [i for i, frame in enumerate(frames) if str(Path(frame.f_code.co_filename).resolve()).startswith(package)]
    if not inside:
        return None
    # Raised where the checker read the attribute, or in the env's own attribute lookup hook, not deeper in the
    # env's code (an AttributeError from a bug in step() is a real failure).
    if any(frame.f_code.co_name not in _LOOKUP_HOOKS for frame in frames[inside[-1] + 1:]):
        return None
    return name


def _stand_in(env: Any, name: str) -> bool:
    """Give ``env`` a neutral value for an attribute the runtime does not use; False when that is not possible."""
    values: dict[str, Callable[[], Any]] = {
        "unwrapped": lambda: env,
        "observation_space": lambda: _same_per_agent({}),
        "observation_spaces": lambda: {a: _placeholder_space() for a in getattr(env, "possible_agents", ())},
        "action_spaces": lambda: {a: env.action_space(a) for a in getattr(env, "possible_agents", ())},
        "metadata": lambda: {},
        "render_mode": lambda: None,
        "max_cycles": lambda: 0,
    }
    make = values.get(name)
    if make is None:
        return False
    try:
        setattr(env, name, make())
    except (AttributeError, TypeError):
        return False
    return True


def _placeholder_space() -> Any:
    from gymnasium import spaces

    return spaces.Space()


def _same_per_agent(cache: dict[Any, Any]) -> Callable[[Any], Any]:
    """An ``observation_space(agent)`` stand-in: one placeholder space per agent, the same object every call."""

    def observation_space(agent: Any) -> Any:
        if agent not in cache:
            cache[agent] = _placeholder_space()
        return cache[agent]

    return observation_space


def check_adapter(target: EnvTarget) -> CheckResult:
    """Our adapter accepts the env: discrete actions for every agent, and at least one seat for a person."""
    try:
        game = target.load_game(verify=False)
    except (TypeError, ValueError) as exc:
        return CheckResult("api.adapter", FAIL, f"the runtime cannot play this env: {exc}",
                           fix="give every agent a Discrete action space (a Dict/Tuple of Discrete for multi-agent "
                           "gymnasium envs) and check the --bot agent names")
    info = game.describe()
    seats = list(game.seats)
    details = {"adapter": info.get("adapter"), "agents": info.get("agents"), "seats": seats,
               "action_counts": info.get("action_counts"), "bots": info.get("bots")}
    if not seats:
        return CheckResult("api.adapter", FAIL, "every agent is played by a bot, so no participant has a seat",
                           fix="leave at least one agent without --bot", details=details)
    counts = ", ".join(f"{a}: {n}" for a, n in zip(info.get("agents", []), info.get("action_counts", [])))
    return CheckResult("api.adapter", PASS,
                       f"{info.get('adapter')} adapter, seats {', '.join(seats)}; actions per agent {counts}",
                       details=details)
