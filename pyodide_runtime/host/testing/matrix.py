"""A small, fixed matrix of simulated-network scenarios, runnable unchanged in CPython and in Pyodide.

Each scenario runs two peers of the bundled example env and reports what happened (rollbacks, losses,
fast-forwards, outcome) and a digest of each peer's confirmed records. Running the matrix on both interpreters
and comparing digests shows that the core computes the same canonical data in the browser as on the host.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pyodide_runtime.config import SessionConfig
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.host.testing.harness import AwaySpan, run_peers
from pyodide_runtime.host.testing.netsim import LinkSpec

EXAMPLE_ENV = "pyodide_runtime.examples.coin_chase:make_env"

#: name -> (link, away spans, session config overrides)
SCENARIOS: dict[str, tuple[LinkSpec, tuple[AwaySpan, ...], dict[str, Any]]] = {
    "baseline": (LinkSpec(), (), {}),
    "latency": (LinkSpec(latency_ms=75, jitter_ms=15), (), {}),
    "loss-reorder-duplicate": (LinkSpec(latency_ms=40, jitter_ms=20, loss=0.2, reorder=0.1, duplicate=0.1), (), {}),
    "frozen-tab": (LinkSpec(latency_ms=30), (AwaySpan(0, 1000, 3000, "frozen"),), {}),
    "deep-rollback": (LinkSpec(latency_ms=200), (), {"input_delay": 0, "max_prediction": 8}),
}


def run_scenario(name: str, seed: int = 5, frames: int = 90, episodes: int = 2) -> dict[str, Any]:
    """Run one named scenario; return its counters and per-peer digests of the canonical records."""
    link, away, overrides = SCENARIOS[name]
    config = SessionConfig(**{"input_delay": 2, "max_prediction": 8, "episodes": episodes, "seed": seed, **overrides})
    env_config = {"players": 2, "max_steps": frames}
    result = run_peers(lambda seat: load_game(EXAMPLE_ENV, env_config), config, link=link, away=list(away), seed=seed)
    return {
        "identical": result.identical(),
        "outcomes": [p.outcome for p in result.peers],
        "frames": [len(p.records) for p in result.peers],
        "digests": [hashlib.sha256(b"\n".join(p.rows)).hexdigest() for p in result.peers],
        "rollbacks": result.total("rollbacks"),
        "resimulated_frames": result.total("resimulated_frames"),
        "fast_forward_frames": result.total("fast_forward_frames"),
        "lost": result.network.get("lost", 0),
        "rejected": result.rejected(),
    }


def run_matrix(seed: int = 5) -> dict[str, dict[str, Any]]:
    """Every scenario of :data:`SCENARIOS`."""
    return {name: run_scenario(name, seed) for name in SCENARIOS}
