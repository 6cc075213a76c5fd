"""The study as check-policy sees it: its env, its seats and the ONNX policies that play some of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyodide_runtime.host.checkenv.target import EnvTarget
from pyodide_runtime.policies import PolicySpec

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


def load_policy_study(path: Path | str) -> PolicyStudy:
    """Read ``path`` with the study loader (``[policies]`` included); raise :class:`StudyError`."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        raise StudyError(f"{path}: policies are declared in a TOML study file ([policies.AGENT] tables)")
    if not path.is_file():
        raise StudyError(f"{path}: no such study file")
    from pyodide_runtime.host.study_config import StudyConfigError, load_study_config

    try:
        config = load_study_config(path)  # checks [policies] with the rest of the study
    except StudyConfigError as exc:
        raise StudyError(str(exc)) from None
    policies = dict(config.policies)
    if not policies:
        raise StudyError(f"{path}: no [policies.AGENT] table; add one naming the agent's ONNX model, e.g.\n"
                         "  [policies.player_1]\n  model = \"policy.onnx\"")
    if config.env_spec is None:
        raise StudyError(f"{path}: env.spec is missing")
    spec = config.env_spec
    target = EnvTarget(spec, config.page.get("env_config"), dict(config.page.get("bots") or {}), config.env_source,
                       config.packages, config.exclude)
    session = config.page.get("session") or {}
    return PolicyStudy(path=path, target=target, players=config.players, seed=int(session.get("seed", 0) or 0),
                       policies=policies)
