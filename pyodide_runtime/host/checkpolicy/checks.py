"""Play a study's env with its policies and check every decision in onnxruntime (CPython) and onnxruntime-web.

Human seats play random actions from a seeded generator; each checked policy decides on every due frame,
synchronously, with the action it chooses from the CPython result. The same feeds also go to the Node runner
(the page's onnxruntime-web, wasm backend) when it is available, and the two results are compared.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyodide_runtime.host.checkpolicy.node import RUNNER_NAME, NodeError, NodeModel, node_unavailable
from pyodide_runtime.host.checkpolicy.report import FAIL, PASS, SKIP, WARN, AgentSummary, CheckResult, PolicyReport
from pyodide_runtime.host.checkpolicy.study import PolicyStudy, StudyError
from pyodide_runtime.policies import (
    ModelInfo,
    OnnxRuntimeModel,
    PolicyError,
    PolicyRunner,
    ResolvedPolicy,
    describe_model,
    recompute_decisions,
    resolve_policy,
)
from pyodide_runtime.policies.tensors import by_name, from_tensor

__all__ = ["CheckPolicyOptions", "run_policy_checks", "TIE"]

Progress = Callable[[str], None]
#: Scores closer than this count as a tie: the two runtimes may pick either action.
TIE = 1e-5
#: Largest score difference between the two runtimes that still counts as agreement.
SCORE_TOLERANCE = 1e-3


@dataclass
class CheckPolicyOptions:
    """How check-policy plays: which agents, how many frames, which seed, where the ORT files are."""

    agents: tuple[str, ...] = ()
    frames: int = 300
    seed: int | None = None
    assets: Path | None = None
    node: bool = True
    runner: Path | None = None


@dataclass
class _Policy:
    """One checked policy while the env plays."""

    summary: AgentSummary
    spec: Any
    resolved: ResolvedPolicy
    info: ModelInfo
    runner: PolicyRunner
    cpython: OnnxRuntimeModel
    node: NodeModel | None = None
    node_skip: tuple[str, str] | None = None
    node_error: str | None = None
    error: str | None = None
    cpython_ms: list[float] = field(default_factory=list)
    node_ms: list[float] = field(default_factory=list)
    observations: dict[tuple[int, int], Any] = field(default_factory=dict)
    score_diff: float = 0.0
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    ties: int = 0
    dtypes: dict[str, dict[str, tuple[str, list[int]]]] = field(default_factory=dict)


def _ms(values: list[float]) -> str:
    if not values:
        return "no inferences"
    a = np.asarray(values)
    return f"median {np.median(a):.3f} ms, p95 {np.percentile(a, 95):.3f} ms per inference"


def _dims(dims: Any) -> str:
    return "?" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _default_runner() -> Path | None:
    try:
        from pyodide_runtime.host.web import WebFilesError, js_bridge_dir

        return js_bridge_dir() / RUNNER_NAME
    except (ImportError, WebFilesError):
        return None


def _ort_dir(assets: Path | None) -> Path:
    from pyodide_runtime.host.assets import default_assets_dir

    return (Path(assets) if assets is not None else default_assets_dir()) / "ort"


def _mapping_text(resolved: ResolvedPolicy) -> str:
    if resolved.hook:
        how = f"hook {resolved.hook}"
    elif resolved.keys:
        how = "keys " + ", ".join(resolved.keys)
    else:
        how = "every observation key"
    scaled = ", then (x - mean) / std" if resolved.mean is not None or resolved.std is not None else ""
    return f"observation -> {resolved.input_size} numbers ({how}{scaled})"


def _load_game(study: PolicyStudy, progress: Progress) -> Any:
    progress(f"loading env {study.target.spec}")
    try:
        game = study.target.load_game(verify=False)
    except Exception as exc:  # the researcher's env code: report, do not raise
        raise StudyError(f"{study.path}: cannot load env {study.target.spec!r}: {type(exc).__name__}: {exc}") \
            from None
    for agent in study.policies:
        if agent not in game.agents:
            raise StudyError(f"{study.path}: policies.{agent}: the env has no agent {agent!r}; agents: "
                             f"{', '.join(game.agents)}")
    if len(game.seats) != study.players:
        raise StudyError(
            f"{study.path}: session.players is {study.players} but the env has {len(game.seats)} seat(s) "
            f"({', '.join(game.seats)}); players counts every seat, the policies' seats included")
    policy_seats = sorted(game.seats.index(a) for a in study.policies)
    if policy_seats != list(range(len(game.seats) - len(policy_seats), len(game.seats))):
        raise StudyError(f"{study.path}: policy agents must have the last seats; the seats are "
                         f"{', '.join(game.seats)} and the policies play {', '.join(study.policies)}")
    return game


def _start_policy(report: PolicyReport, study: PolicyStudy, agent: str, game: Any, observation: Any,
                  seed: int, options: CheckPolicyOptions, progress: Progress) -> _Policy | None:
    spec = study.policies[agent]
    seat = game.seats.index(agent)
    summary = AgentSummary(agent, seat, spec.model.name)
    report.agents.append(summary)
    name = f"{agent} model"
    try:
        info = describe_model(spec.model)
    except PolicyError as exc:
        report.add(CheckResult(name, FAIL, str(exc), fix="export the model again (onnx.checker must accept it)"))
        return None
    summary.model = f"{spec.model.name}, {info.size / 1024:.1f} KB, sha256 {info.sha256[:12]}, opset {info.opset}"
    summary.lines += [f"input   {t.describe()}" for t in info.inputs]
    summary.lines += [f"output  {t.describe()}" for t in info.outputs]
    summary.details["model"] = {"path": str(spec.model), "sha256": info.sha256, "bytes": info.size,
                                "opset": info.opset, "inputs": [t.to_json() for t in info.inputs],
                                "outputs": [t.to_json() for t in info.outputs]}
    try:
        resolved = resolve_policy(spec, seat, game.input_count(seat), observation, info=info)
    except PolicyError as exc:
        report.add(CheckResult(name, FAIL, str(exc), fix="make the study's [policies] table and the model agree"))
        return None
    except Exception as exc:  # a hook that raises
        report.add(CheckResult(name, FAIL, f"mapping the first observation failed: {type(exc).__name__}: {exc}",
                               fix="fix the hook"))
        return None
    summary.lines.append(_mapping_text(resolved) + f", fed as {resolved.input_name} {resolved.input_dtype} "
                         f"{list(resolved.input_dims)}")
    summary.details["resolved"] = resolved.to_json()
    report.add(CheckResult(name, PASS, f"fits: {resolved.input_size} numbers into {resolved.input_name!r}, "
                           f"{resolved.action_count} scores from {resolved.output_name!r}, input dtype "
                           f"{resolved.input_dtype} as declared", details={"input_size": resolved.input_size}))
    try:
        cpython = OnnxRuntimeModel(spec.model)
    except PolicyError as exc:
        report.add(CheckResult(f"{agent} onnxruntime", FAIL, str(exc), fix="export a model onnxruntime can load"))
        return None
    policy = _Policy(summary, spec, resolved, info, PolicyRunner(resolved, seed), cpython)
    if not options.node:
        policy.node_skip = ("not requested (--no-node)", "run without --no-node to check onnxruntime-web")
    else:
        runner = options.runner or _default_runner()
        ort_dir = _ort_dir(options.assets)
        policy.node_skip = node_unavailable(ort_dir, runner)
        if policy.node_skip is None and runner is not None:
            progress(f"starting onnxruntime-web in Node for {agent}")
            try:
                policy.node = NodeModel(runner, ort_dir, spec.model)
            except (NodeError, OSError) as exc:
                policy.node_error = f"could not start: {exc}"
    return policy


def _record_dtypes(policy: _Policy, runtime: str, outputs: list[dict[str, Any]]) -> None:
    if runtime not in policy.dtypes:
        policy.dtypes[runtime] = {str(t["name"]): (str(t["dtype"]), [int(d) for d in t["dims"]]) for t in outputs}


def _decide(policy: _Policy, episode: int, frame: int, frame_in_episode: int, observation: Any) -> None:
    """One synchronous decision: CPython result chooses the action; Node (if any) is compared."""
    runner = policy.runner
    feeds = runner.request(episode, frame, frame_in_episode, observation)
    if feeds is None:
        return
    policy.observations[(episode, frame)] = observation
    start = time.perf_counter()
    outputs = policy.cpython.run(feeds)
    policy.cpython_ms.append((time.perf_counter() - start) * 1000)
    _record_dtypes(policy, "onnxruntime", outputs)
    if policy.node is not None:
        try:
            start = time.perf_counter()
            node_outputs, ms = policy.node.run(feeds)
            policy.node_ms.append(ms if ms is not None else (time.perf_counter() - start) * 1000)
            _record_dtypes(policy, "onnxruntime-web", node_outputs)
            _compare(policy, outputs, node_outputs, episode, frame)
        except (NodeError, PolicyError) as exc:
            policy.node_error = f"failed at frame {frame}: {exc}"
            policy.node.close()
            policy.node = None
    runner.deliver(outputs, policy.cpython_ms[-1])


def _compare(policy: _Policy, outputs: list[dict[str, Any]], node_outputs: list[dict[str, Any]], episode: int,
             frame: int) -> None:
    runner = policy.runner
    ours, theirs = by_name(outputs), by_name(node_outputs)
    for name, tensor in ours.items():
        if name not in theirs:
            raise PolicyError(f"onnxruntime-web returned no output {name!r} (it returned {sorted(theirs)})")
        a, b = from_tensor(tensor).astype(np.float64), from_tensor(theirs[name]).astype(np.float64)
        if a.size != b.size:
            raise PolicyError(f"output {name!r} has {b.size} values in onnxruntime-web, {a.size} in onnxruntime")
        if a.size:
            policy.score_diff = max(policy.score_diff, float(np.max(np.abs(a - b))))
    action, node_action = runner.preview(outputs), runner.preview(node_outputs)
    if action != node_action:
        scores = np.sort(runner.scores(outputs))[::-1]
        if scores.size > 1 and scores[0] - scores[1] <= TIE:
            policy.ties += 1
        else:
            policy.disagreements.append({"episode": episode, "frame": frame, "onnxruntime": action,
                                         "onnxruntime-web": node_action})


def _play(game: Any, policies: dict[str, _Policy], options: CheckPolicyOptions, seed: int, progress: Progress) -> None:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    counts = [game.input_count(s) for s in range(len(game.seats))]
    episode, frame_in_episode = 0, 0
    observations = game.reset(seed).observations
    step = max(1, options.frames // 10)
    for frame in range(options.frames):
        inputs = [int(rng.integers(count)) for count in counts]
        for agent, policy in policies.items():
            seat = policy.resolved.seat
            if policy.error is None and agent in observations and policy.runner.due(frame_in_episode):
                try:
                    _decide(policy, episode, frame, frame_in_episode, observations[agent])
                except PolicyError as exc:
                    policy.error = f"frame {frame}: {exc}"
                except Exception as exc:  # the hook is researcher code
                    policy.error = f"frame {frame}: {type(exc).__name__}: {exc}"
            inputs[seat] = policy.runner.action
        result = game.step(inputs)
        observations = result.observations
        frame_in_episode += 1
        if result.episode_over:
            episode += 1
            frame_in_episode = 0
            observations = game.reset(seed + episode).observations
            for policy in policies.values():
                policy.runner.reset(episode)
        if (frame + 1) % step == 0 or frame + 1 == options.frames:
            progress(f"frame {frame + 1}/{options.frames}")


def _finish(report: PolicyReport, policy: _Policy, action_names: list[str] | None, seed: int) -> None:
    agent, runner, resolved = policy.summary.agent, policy.runner, policy.resolved
    decisions = runner.decisions
    declared = {t.name: t for t in policy.info.outputs}
    # onnxruntime
    name = f"{agent} onnxruntime"
    problems = _dtype_problems(policy, "onnxruntime", declared)
    if policy.error is not None:
        report.add(CheckResult(name, FAIL, f"stopped at {policy.error}", fix="see the message; fix the model or "
                               "the observation mapping"))
    elif problems:
        report.add(CheckResult(name, FAIL, "; ".join(problems), fix="export the model with the declared types"))
    else:
        report.add(CheckResult(name, PASS, f"{len(decisions)} decisions; {_ms(policy.cpython_ms)}",
                               details={"ms": policy.cpython_ms[:2000]}))
    # onnxruntime-web
    name = f"{agent} onnxruntime-web"
    if policy.node_skip is not None:
        report.add(CheckResult(name, SKIP, f"not checked: {policy.node_skip[0]}", fix=policy.node_skip[1]))
        report.add(CheckResult(f"{agent} agreement", SKIP, "not compared: onnxruntime-web did not run",
                               fix=policy.node_skip[1]))
    elif policy.node_error is not None:
        report.add(CheckResult(name, FAIL, f"onnxruntime-web {policy.node_error}",
                               fix="check that the model uses operators the wasm backend supports"))
        report.add(CheckResult(f"{agent} agreement", SKIP, "not compared: onnxruntime-web failed",
                               fix="fix the onnxruntime-web failure first"))
    else:
        problems = _dtype_problems(policy, "onnxruntime-web", declared)
        status = FAIL if problems else PASS
        text = "; ".join(problems) if problems else f"{len(policy.node_ms)} decisions; {_ms(policy.node_ms)}"
        report.add(CheckResult(name, status, text, details={"ms": policy.node_ms[:2000]},
                               fix="export the model with the declared types" if problems else ""))
        compared = len(policy.node_ms)
        diff = policy.score_diff
        details = {"compared": compared, "max_abs_score_difference": diff, "disagreements": policy.disagreements,
                   "ties": policy.ties}
        if policy.disagreements or diff > SCORE_TOLERANCE:
            first = policy.disagreements[0] if policy.disagreements else None
            where = (f"; first at frame {first['frame']}: onnxruntime {first['onnxruntime']}, onnxruntime-web "
                     f"{first['onnxruntime-web']}") if first else ""
            report.add(CheckResult(f"{agent} agreement", FAIL,
                                   f"actions differ in {len(policy.disagreements)} of {compared} decisions; max abs "
                                   f"score difference {diff:.3g}{where}", details=details,
                                   fix="avoid operators whose results differ between backends"))
        else:
            ties = f" ({policy.ties} ties broken differently)" if policy.ties else ""
            report.add(CheckResult(f"{agent} agreement", PASS,
                                   f"same action in all {compared} decisions{ties}; max abs score difference "
                                   f"{diff:.3g}", details=details))
    # recompute from the recorded observations
    name = f"{agent} recompute"
    if policy.error is None and decisions:
        try:
            mismatches = recompute_decisions(resolved, policy.cpython, policy.observations, decisions, seed)
        except Exception as exc:
            mismatches = [{"error": f"{type(exc).__name__}: {exc}"}]
        if mismatches:
            report.add(CheckResult(name, FAIL, f"{len(mismatches)} of {len(decisions)} decisions differ when "
                                   f"recomputed from the recorded observations (first: {mismatches[0]})",
                                   fix="the hook must be a pure function of the observation",
                                   details={"mismatches": mismatches[:20]}))
        else:
            report.add(CheckResult(name, PASS, f"all {len(decisions)} decisions recomputed identically from the "
                                   "recorded observations"))
    # the action distribution
    counts = Counter(d["action"] for d in decisions)
    labels = action_names or [str(a) for a in range(resolved.action_count)]
    total = max(1, len(decisions))
    distribution = ", ".join(f"{labels[a] if a < len(labels) else a} {counts.get(a, 0)} "
                             f"({100 * counts.get(a, 0) / total:.0f}%)" for a in range(resolved.action_count))
    policy.summary.lines.append(f"actions in {len(decisions)} decisions: {distribution}")
    policy.summary.details["actions"] = {str(a): counts.get(a, 0) for a in range(resolved.action_count)}
    policy.summary.details["stats"] = dict(runner.stats)
    if len(counts) == 1 and len(decisions) > 1:
        only = next(iter(counts))
        report.add(CheckResult(f"{agent} actions", WARN, f"the policy chose {labels[only]} in every one of "
                               f"{len(decisions)} decisions", fix="check the observation mapping (keys, mean, std) "
                               "against the one used in training"))
    elif decisions:
        report.add(CheckResult(f"{agent} actions", PASS, f"{len(counts)} different actions in {len(decisions)} "
                               "decisions"))


def _dtype_problems(policy: _Policy, runtime: str, declared: dict[str, Any]) -> list[str]:
    problems = []
    for name, (dtype, dims) in policy.dtypes.get(runtime, {}).items():
        info = declared.get(name)
        if info is None:
            continue
        if dtype != info.dtype:
            problems.append(f"output {name!r} is {dtype} in {runtime}, the model declares {info.dtype}")
        elif info.dims is not None and (len(dims) != len(info.dims) or any(
                d is not None and d != got for d, got in zip(info.dims, dims))):
            problems.append(f"output {name!r} has shape {dims} in {runtime}, the model declares {_dims(info.dims)}")
    return problems


def run_policy_checks(study: PolicyStudy, options: CheckPolicyOptions,
                      progress: Progress = lambda message: None) -> PolicyReport:
    """Check the study's policies (or ``options.agents``) over ``options.frames`` frames; the report says what
    ran, what passed, and what was skipped and why. Raises :class:`StudyError` for a study that cannot be used."""
    checked = list(options.agents) or list(study.policies)
    for agent in checked:
        if agent not in study.policies:
            raise StudyError(f"--agent {agent!r}: the study has no [policies.{agent}]; policies: "
                             f"{', '.join(study.policies)}")
    seed = study.seed if options.seed is None else options.seed
    report = PolicyReport(str(study.path), options.frames, seed)
    game = _load_game(study, progress)
    first = game.reset(seed).observations
    policies: dict[str, _Policy] = {}
    try:
        for agent in checked:
            policy = _start_policy(report, study, agent, game, first[agent], seed, options, progress)
            if policy is not None:
                policies[agent] = policy
        if policies:
            _play(game, policies, options, seed, progress)
        names = game.describe().get("action_names") if hasattr(game, "describe") else None
        for policy in policies.values():
            _finish(report, policy, names, seed)
    finally:
        for policy in policies.values():
            if policy.node is not None:
                policy.node.close()
    return report
