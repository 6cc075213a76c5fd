"""API checks: the env honours gymnasium's or PettingZoo's contract, and our adapter can play it."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Any

from pyodide_runtime.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult
from pyodide_runtime.checkenv.target import EnvTarget

__all__ = ["check_upstream_api", "check_adapter"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # gymnasium colours its warnings


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
        return _run_checker("api.pettingzoo", "pettingzoo.test.parallel_api_test",
                            lambda: parallel_api_test(env, num_cycles=100))
    return CheckResult("api.upstream", SKIP,
                       f"{type(env).__name__} is neither a gymnasium.Env nor a PettingZoo-style parallel env")


def _run_checker(name: str, checker: str, call: Any) -> CheckResult:
    chatter = io.StringIO()  # the checkers print their verdict; the report says it instead
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(chatter):
        warnings.simplefilter("always")
        try:
            call()
        except Exception as exc:  # the upstream checkers raise AssertionError and friends
            return CheckResult(name, FAIL, f"{checker} failed: {type(exc).__name__}: {exc}".strip(),
                               fix="make the env follow the API the message names (see the library's docs)")
    notes = sorted({_ANSI.sub("", str(w.message)).splitlines()[0] for w in caught})
    if notes:
        return CheckResult(name, WARN, f"{checker} passed with {len(notes)} warning(s): {notes[0]}",
                           fix="address the warnings listed in details", details={"warnings": notes})
    return CheckResult(name, PASS, f"{checker} passed")


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
