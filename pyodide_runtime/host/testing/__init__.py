"""Test tools for researchers and developers: a seeded simulated network and an N-peer harness.

Run two (or more) :class:`~pyodide_runtime.session.Session` objects in one process over a virtual network with
latency, jitter, loss, reordering, duplication, outages and partitions, with tab-away and freeze schedules::

    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.host.testing import LinkSpec, run_peers, tiny_grid_factory
    result = run_peers(tiny_grid_factory(length=60), SessionConfig(episodes=2),
                       link=LinkSpec(latency_ms=80, loss=0.05), seed=1)
    assert result.identical()

``make_game(seat)`` may build any :class:`~pyodide_runtime.envs.base.Game`, e.g. with
:func:`pyodide_runtime.envs.loading.load_game`. :func:`replay` recomputes records from their inputs alone.
"""

from pyodide_runtime.host.testing.harness import (
    AwaySpan,
    PeerResult,
    SimulationResult,
    constant_policy,
    random_policy,
    run_peers,
    scripted_policy,
)
from pyodide_runtime.host.testing.games import TinyGridGame, tiny_grid_factory
from pyodide_runtime.host.testing.netsim import LinkSpec, Network, VirtualClock
from pyodide_runtime.host.testing.replay import replay

__all__ = [
    "AwaySpan",
    "LinkSpec",
    "Network",
    "PeerResult",
    "SimulationResult",
    "TinyGridGame",
    "VirtualClock",
    "constant_policy",
    "random_policy",
    "replay",
    "run_peers",
    "scripted_policy",
    "tiny_grid_factory",
]
