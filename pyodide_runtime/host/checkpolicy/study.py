"""The study as check-policy sees it: its env, its seats and the ONNX policies that play some of them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyodide_runtime.host.checkenv.target import EnvTarget
from pyodide_runtime.policies import PolicyError, PolicySpec, policies_from_study_file

__all__ = ["PolicyStudy", "StudyError", "load_policy_study"]


class StudyError(ValueError):
    """A study file check-policy cannot use; the message names the file and field."""


@dataclass(frozen=True)
class PolicyStudy:
    """A study file's env target, its ``session.players``, ``session.seed`` and policies by agent."""

    path: Path
    target: EnvTarget
    players: int
    seed: int
    policies: dict[str, PolicySpec]


def _study_config(path: Path) -> Any:
    """The checked study config, read by the study loader (a ``[policies]`` table it does not know is set
    aside here and checked by :func:`policies_from_study_file`)."""
    from pyodide_runtime.host.study_config import StudyConfigError, load_study_config, parse_study_config

    try:
        return load_study_config(path)
    except StudyConfigError as exc:
        if "policies" not in str(exc):
            raise StudyError(str(exc)) from None
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw.pop("policies", None)
    try:
        return parse_study_config(raw, source=path, layout="toml")
    except StudyConfigError as exc:
        raise StudyError(str(exc)) from None


def load_policy_study(path: Path | str) -> PolicyStudy:
    """Read ``path`` with the study loader and its ``[policies]`` table; raise :class:`StudyError`."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise StudyError(f"{path}: policies are declared in a TOML study file ([policies.AGENT] tables)")
    if not path.is_file():
        raise StudyError(f"{path}: no such study file")
    config = _study_config(path)
    try:
        policies = policies_from_study_file(path)
    except PolicyError as exc:
        raise StudyError(str(exc)) from None
    if not policies:
        raise StudyError(f"{path}: no [policies.AGENT] table; add one naming the agent's ONNX model, e.g.\n"
                         "  [policies.player_1]\n  model = \"policy.onnx\"")
    if config.env_spec is None:
        raise StudyError(f"{path}: env.spec is missing")
    spec = config.env_spec
    target = EnvTarget(spec, config.page.get("env_config"), dict(config.page.get("bots") or {}), config.env_source,
                       config.packages, config.exclude)
    both = sorted(set(policies) & set(target.bots))
    if both:
        raise StudyError(f"{path}: agents {both} have both a bot ([bots]) and a policy ([policies]); keep one")
    session = config.page.get("session") or {}
    return PolicyStudy(path=path, target=target, players=config.players, seed=int(session.get("seed", 0) or 0),
                       policies=policies)
