"""Two cooks in cogrid's Overcooked (cramped room), a PettingZoo parallel env from the package index.

cogrid's own ``get_state``/``set_state`` snapshot the simulation; the runtime restores the PettingZoo API state
(``agents``) itself.
"""

from __future__ import annotations

from typing import Any

from cogrid.envs import registry


def make_env(config: dict[str, Any] | None = None) -> Any:
    config = dict(config or {})
    env = registry.make(str(config.get("layout", "Overcooked-CrampedRoom-V0")))
    env.max_steps = int(config.get("max_steps", 300))  # read when reset() builds the step function
    return env
