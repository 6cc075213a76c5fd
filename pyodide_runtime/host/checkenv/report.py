"""The check-env report: one result per check, rendered as text for people and as JSON for machines."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PASS", "FAIL", "WARN", "SKIP", "CheckResult", "Report"]

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"


@dataclass
class CheckResult:
    """The outcome of one check. ``fix`` says what to change when the check failed or warned."""

    name: str
    status: str
    message: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclass
class Report:
    """Every check run against one env factory."""

    spec: str
    config: dict[str, Any] | None
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed (warnings and skipped checks do not fail an env)."""
        return not any(r.failed for r in self.results)

    def get(self, name: str) -> CheckResult:
        """The result of the check called ``name``; ``KeyError`` when it did not run."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "config": self.config,
            "passed": self.passed,
            "counts": {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, WARN, SKIP)},
            "checks": [asdict(r) for r in self.results],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, default=str)

    def render(self) -> str:
        """One line per check; failures and warnings get an indented ``fix:`` line."""
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"check-env {self.spec}"]
        for r in self.results:
            lines.append(f"{r.status.upper():4}  {r.name:<{width}}  {r.message}")
            if r.fix and r.status in (FAIL, WARN):
                lines.append(f"{'':4}  {'':<{width}}  fix: {r.fix}")
        counts = self.to_json()["counts"]
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(
            f"{verdict}: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[WARN]} warnings, {counts[SKIP]} skipped"
        )
        return "\n".join(lines)
