"""Run every check against one env factory, in order, with progress on a callback; see :func:`run_checks`."""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyodide_runtime.host.checkenv import api, budget, cost, determinism, instrument, pyodide, rollback
from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult, Report
from pyodide_runtime.host.checkenv.target import EnvTarget

__all__ = ["CheckOptions", "run_checks"]


@dataclass(frozen=True)
class CheckOptions:
    """How thoroughly to check: sync test distances and length, rollout length, seed, and whether to use Pyodide."""

    distances: Sequence[int] = (1, 4, 8)
    sync_frames: int = 300
    rollout_frames: int = 200
    seed: int = 0
    pyodide: bool = False
    assets: Path | None = None
    #: The frame rate the frame-budget check judges against (the study's ``[session] fps``).
    fps: int = 30
    #: The session's prediction window (``[session] max_prediction``): the deepest possible rollback.
    window: int = 8


def packages_result(study_packages: object) -> CheckResult:
    """One line on what a study's packages resolved to (shared by ``check-env`` and ``serve``'s start-up check)."""
    entries = list(study_packages.packages)  # type: ignore[attr-defined]
    by = {s: [p for p in entries if p.source == s] for s in ("pyodide", "index", "local")}
    listing = ", ".join(f"{p.name} {p.version}" for p in entries)
    return CheckResult("packages", PASS,
                       f"{len(entries)} package(s) for the page ({len(by['pyodide'])} from Pyodide, "
                       f"{len(by['index'])} pure wheels from the package index, {len(by['local'])} local): {listing}",
                       details={"packages": [dataclasses.asdict(p) for p in entries],
                                "lock": str(study_packages.lock_path)})  # type: ignore[attr-defined]


def _guarded(name: str, run: Callable[[], CheckResult | list[CheckResult]]) -> list[CheckResult]:
    start = time.perf_counter()
    try:
        out = run()
    except Exception as exc:  # the env raised: that is a failed check, not a crash of the checker
        out = CheckResult(name, FAIL, f"the env raised {type(exc).__name__}: {exc}",
                          fix="see the traceback in the JSON report's details",
                          details={"traceback": traceback.format_exc()[-4000:]})
    results = out if isinstance(out, list) else [out]
    for result in results:
        result.seconds = round(time.perf_counter() - start, 3)
    return results


def run_checks(target: EnvTarget, options: CheckOptions = CheckOptions(),
               progress: Callable[[str], None] = lambda message: None) -> Report:
    """Check ``target`` for rollback and Pyodide fitness; the report says pass/fail per check with fixes."""
    report = Report(target.spec, dict(target.config) if target.config is not None else None)
    seed = options.seed

    def step(name: str, message: str, run: Callable[[], CheckResult | list[CheckResult]]) -> None:
        progress(f"{name}: {message}")
        report.results.extend(_guarded(name, run))

    prepared: list = []

    def packages() -> CheckResult:
        if not target.packages and target.source is None:
            return CheckResult("packages", SKIP, "the study loads no packages or env directory beyond the runtime's own")
        from pyodide_runtime.host.assets import AssetError
        from pyodide_runtime.host.packages import prepare_study_packages

        try:
            study_packages = prepare_study_packages(target.packages, assets=options.assets, source_dir=target.source,
                                                    progress=lambda m: progress(f"packages: {m}"),
                                                    exclude=target.exclude)
        except AssetError as exc:
            return CheckResult("packages", FAIL, f"the study's packages cannot be prepared for the page: {exc}",
                               fix="change [env] packages as the message says; serve refuses to start the same way")
        prepared.append(study_packages)
        return packages_result(study_packages)

    step("packages", "resolving the study's packages as serve does", packages)
    step("api", "upstream API checker", lambda: api.check_upstream_api(target))
    step("api.adapter", "adapter", lambda: api.check_adapter(target))
    if report.get("api.adapter").failed:
        for name in ("snapshot", "synctest", "hidden-state", "global-rng", "wall-time", "determinism",
                     "set-iteration", "pyodide-modules", "cost", "pyodide-run", "frame-budget"):
            report.results.append(CheckResult(name, SKIP, "not run: the runtime cannot play this env"))
        return report
    step("snapshot", "start-up snapshot verification", lambda: rollback.check_snapshot(target))
    step("synctest", f"sync test at distances {','.join(map(str, options.distances))}",
         lambda: rollback.check_sync(target, options.distances, options.sync_frames, seed))
    step("hidden-state", "restoring snapshots into fresh envs", lambda: rollback.check_hidden_state(target, seed))

    def outside_reads() -> list[CheckResult]:
        findings = instrument.find_outside_reads(target, seed)
        return [instrument.check_global_rng(findings), instrument.check_wall_time(findings)]

    step("global-rng/wall-time", "watching reset and step for global generators and clocks", outside_reads)

    def processes() -> list[CheckResult]:
        try:
            rollouts: determinism.Rollouts | determinism.RolloutError = determinism.run_rollouts(
                target, seed, options.rollout_frames)
        except determinism.RolloutError as exc:
            rollouts = exc
        modules = rollouts.modules if isinstance(rollouts, determinism.Rollouts) else None
        if unresolved:
            modules_result = CheckResult("pyodide-modules", SKIP, "not run: the study's packages could not be "
                                         "prepared (see the packages check), so what the page loads is unknown")
        else:
            modules_result = pyodide.check_modules(modules, page)
        return [determinism.check_determinism(rollouts), determinism.check_hash_seed(rollouts), modules_result]

    study_packages = prepared[0] if prepared else None
    page = pyodide.page_modules(target, options.assets, study_packages)
    unresolved = (bool(target.packages) or target.source is not None) and study_packages is None

    step("determinism", "seeded rollouts in 4 fresh processes (PYTHONHASHSEED 0, 0, 1, 2)", processes)
    step("cost", "timing snapshots", lambda: cost.check_cost(target, rollback.verified_game(target)[0], seed))
    if options.pyodide:
        step("pyodide-run", "importing and stepping the env in Pyodide under Node (about 10 s)",
             lambda: pyodide.check_in_pyodide(target, seed, assets=options.assets, study_packages=study_packages))
    else:
        report.results.append(CheckResult("pyodide-run", SKIP, "not run; add --pyodide to step the env in real Pyodide"))

    def details(name: str) -> dict | None:
        try:
            result = report.get(name)
        except KeyError:
            return None
        return result.details if result.status in (PASS, WARN) else None

    step("frame-budget", f"rollback depth that fits a tick at {options.fps} fps",
         lambda: budget.check_frame_budget(details("cost"), details("pyodide-run"), options.fps,
                                                   options.window))
    return report
