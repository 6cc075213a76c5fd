"""Find reads of global generators, outside entropy and the clock during ``reset`` and ``step``, by watching calls.

``sys.setprofile`` sees every call into C: the global ``random`` generator's methods, ``time.time`` and friends,
``datetime.now``, ``os.urandom``. numpy's global generator is written in Cython, which the profiler does not see,
so the ``numpy.random`` module functions are wrapped for the duration instead; comparing the global generators'
states before and after each call catches the rest (a function imported by name, say) without a location.
"""

from __future__ import annotations

import random
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from pyodide_runtime.host.checkenv.report import FAIL, PASS, CheckResult
from pyodide_runtime.host.checkenv.target import EnvTarget
from pyodide_runtime.snapshot import GlobalRngState

__all__ = ["Finding", "watch_calls", "find_outside_reads", "check_global_rng", "check_wall_time"]

_CLOCKS = {
    "time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "process_time",
    "process_time_ns", "thread_time", "thread_time_ns", "clock_gettime", "clock_gettime_ns", "localtime", "gmtime",
    "ctime", "asctime", "strftime",
}
_NOW = {"now", "utcnow", "today"}
_PACKAGE = Path(__file__).resolve().parents[2]
_SKIPPED_DIRS = tuple(
    str(p) for p in (Path(sysconfig.get_paths()["stdlib"]).resolve(), Path(np.__file__).resolve().parent, _PACKAGE)
)
_USER_DIRS_IN_PACKAGE = (str(_PACKAGE / "examples"),)


@dataclass(frozen=True)
class Finding:
    """One suspicious call: ``kind`` is ``global-rng``, ``entropy`` or ``wall-time``; ``where`` is ``file:line``."""

    kind: str
    call: str
    where: str
    phase: str


def _user_site(frame: FrameType | None) -> str | None:
    """``file:line`` of the innermost caller outside the standard library, numpy and this runtime."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<") and (
            not name.startswith(_SKIPPED_DIRS) or name.startswith(_USER_DIRS_IN_PACKAGE)
        ):
            return f"{name}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _outermost_random_call(frame: FrameType | None, fallback: str) -> str:
    """``random.randrange`` rather than the ``getrandbits`` it calls: the name the env's code used."""
    name = fallback
    while frame is not None and frame.f_code.co_filename == random.__file__:
        name = frame.f_code.co_name
        frame = frame.f_back
    return f"random.{name}"


def _classify(func: Any) -> tuple[str, str] | None:
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    if owner is random._inst:  # type: ignore[attr-defined]
        return "global-rng", "random"
    module = getattr(func, "__module__", None)
    if module == "time" and name in _CLOCKS:
        return "wall-time", f"time.{name}"
    if isinstance(owner, type) and owner.__module__ == "datetime" and name in _NOW:
        return "wall-time", f"datetime.{owner.__name__}.{name}"
    if module in ("posix", "nt", "os") and name in ("urandom", "getrandom"):
        return "entropy", f"os.{name}"
    return None


@contextmanager
def watch_calls(phase: Callable[[], str | None]) -> Iterator[list[Finding]]:
    """Record suspicious calls made inside the block while ``phase()`` names what is running (``reset``/``step``);
    nothing is recorded while it returns ``None``."""
    found: list[Finding] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and phase() is not None:
            hit = _classify(arg)
            if hit is not None:
                where = _user_site(frame)
                if where is not None:
                    call = _outermost_random_call(frame, arg.__name__) if hit[1] == "random" else hit[1]
                    found.append(Finding(hit[0], call, where, phase()))

    originals = {}
    legacy = np.random.mtrand._rand
    for name in dir(np.random):
        func = getattr(np.random, name)
        if getattr(func, "__self__", None) is legacy and not name.startswith("_"):
            originals[name] = func

    def wrap(name: str, func: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            where = _user_site(sys._getframe(1)) if phase() is not None else None
            if where is not None:
                found.append(Finding("global-rng", f"numpy.random.{name}", where, phase()))
            return func(*args, **kwargs)

        return wrapper

    for name, func in originals.items():
        setattr(np.random, name, wrap(name, func))
    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield found
    finally:
        sys.setprofile(previous)
        for name, func in originals.items():
            setattr(np.random, name, func)


def find_outside_reads(target: EnvTarget, seed: int, frames: int = 60) -> list[Finding]:
    """Reset and step a fresh game under :func:`watch_calls`; de-duplicated findings, first occurrence first."""
    game = target.load_game(verify=False)  # unverified: the adapter then leaves the global generators alone
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]
    current: list[str | None] = [None]
    moved: list[Finding] = []

    def checked(call: Callable[[], Any], phase: str) -> Any:
        before = GlobalRngState.fingerprint()
        current[0] = phase
        try:
            value = call()
        finally:
            current[0] = None
        after = GlobalRngState.fingerprint()
        for index, name in enumerate(("random", "numpy.random")):
            if before[index] != after[index]:
                moved.append(Finding("global-rng", f"the global {name} generator", "(call site not seen)", phase))
        return value

    with watch_calls(lambda: current[0]) as found:
        checked(lambda: game.reset(seed), "reset")
        for _ in range(frames):
            result = checked(lambda: game.step([rng.randrange(c) for c in counts]), "step")
            if result.episode_over:
                checked(lambda: game.reset(seed), "reset")
    located = {(f.kind, f.phase) for f in found}
    unique = list(dict.fromkeys(found + [m for m in moved if (m.kind, m.phase) not in located]))
    return unique


def _summary(findings: list[Finding]) -> str:
    shown = [f"{f.phase} calls {f.call} at {f.where}" for f in findings[:3]]
    more = f" (and {len(findings) - 3} more)" if len(findings) > 3 else ""
    return "; ".join(shown) + more


def check_global_rng(findings: list[Finding]) -> CheckResult:
    """Fails when reset/step draws from the global ``random``/``numpy.random`` generators or from os.urandom."""
    bad = [f for f in findings if f.kind in ("global-rng", "entropy")]
    details = {"findings": [f.__dict__ for f in bad]}
    if not bad:
        return CheckResult("global-rng", PASS, "no draws from the global random/numpy.random generators or os.urandom")
    if any(f.kind == "entropy" for f in bad):
        fix = "draw only from self.np_random (seeded in reset(seed)); os.urandom differs on every run and every peer"
    else:
        fix = ("draw from the env's own generator (self.np_random, seeded by reset(seed)); the runtime can capture "
               "the global generators, but anything else using them (another library, a bot) then changes your data")
    return CheckResult("global-rng", FAIL, _summary(bad), fix=fix, details=details)


def check_wall_time(findings: list[Finding]) -> CheckResult:
    """Fails when reset/step reads a clock: the two participants' clocks never agree, nor do resimulations."""
    bad = [f for f in findings if f.kind == "wall-time"]
    if not bad:
        return CheckResult("wall-time", PASS, "no clock reads (time.*, datetime.now) in reset or step")
    return CheckResult("wall-time", FAIL, _summary(bad),
                       fix="count frames instead of reading the clock (the session runs at a fixed fps, so "
                       "seconds = frames / fps); pass timing as config", details={"findings": [f.__dict__ for f in bad]})
