"""The check-policy report: what each model takes and returns, then one line per check."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pyodide_runtime.host.checkenv.report import FAIL, PASS, SKIP, WARN, CheckResult

__all__ = ["PolicyReport", "AgentSummary", "CheckResult", "PASS", "FAIL", "WARN", "SKIP"]

_LABELS = {PASS: "PASS", FAIL: "FAIL", WARN: "WARN", SKIP: "SKIPPED"}


@dataclass
class AgentSummary:
    """What the report shows about one policy besides its checks."""

    agent: str
    seat: int | None = None
    model: str = ""
    lines: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PolicyReport:
    """Every check of every policy of one study."""

    study: str
    frames: int
    seed: int
    agents: list[AgentSummary] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check that ran failed (skipped checks and warnings do not fail)."""
        return not any(r.status == FAIL for r in self.results)

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    def get(self, name: str) -> CheckResult:
        """The result of the check called ``name``; ``KeyError`` when it did not run."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, WARN, SKIP)}

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "frames": self.frames, "seed": self.seed, "passed": self.passed,
                "counts": self.counts(), "agents": [asdict(a) for a in self.agents],
                "checks": [asdict(r) for r in self.results]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True, default=str)

    def render(self) -> str:
        """The model summaries, then one line per check with a ``fix:`` line for failures, warnings and skips."""
        lines = [f"check-policy {self.study} ({self.frames} frames, seed {self.seed})"]
        for agent in self.agents:
            seat = f" (seat {agent.seat})" if agent.seat is not None else ""
            lines.append(f"{agent.agent}{seat}: {agent.model}")
            lines.extend(f"  {line}" for line in agent.lines)
        width = max((len(r.name) for r in self.results), default=0)
        for r in self.results:
            lines.append(f"{_LABELS[r.status]:7}  {r.name:<{width}}  {r.message}")
            if r.fix and r.status in (FAIL, WARN, SKIP):
                lines.append(f"{'':7}  {'':<{width}}  {'to do' if r.status == SKIP else 'fix'}: {r.fix}")
        c = self.counts()
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {c[PASS]} passed, {c[FAIL]} failed, {c[WARN]} warnings, {c[SKIP]} skipped")
        return "\n".join(lines)
