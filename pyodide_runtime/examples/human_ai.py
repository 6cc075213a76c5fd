"""Human-AI kitchen: one participant cooks with a scripted Python partner in the other seat.

The env is the cooperative :mod:`~pyodide_runtime.examples.kitchen`; the study config gives its second cook a
bot (``[bots] cook_1 = "pyodide_runtime.examples.human_ai:Partner"``) and asks for one human seat, so each
participant gets a room of their own. The partner runs inside ``Game.step`` in the participant's browser, so it
is snapshotted and rolled back with the env like any other state.

:class:`Partner` is a plain heuristic cook: it works on the first order, fetches what the emptiest pot still
needs, takes ready soup out with a plate and serves it, walking shortest paths around the counters and the other
cook. Now and then (``epsilon``) it makes a random move, drawn from the generator it is given, so it is not
perfectly predictable and never deadlocks against the participant.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import numpy as np

from pyodide_runtime.examples.kitchen import INTERACT, LAYOUT, MOVES, KitchenEnv

__all__ = ["make_env", "Partner"]

_CRATES = {"O": "O", "T": "T"}  # ingredient letter -> crate tile


def make_env(config: dict[str, Any] | None = None) -> KitchenEnv:
    """The kitchen env (config keys: :data:`pyodide_runtime.examples.kitchen.DEFAULT_CONFIG`)."""
    return KitchenEnv(config)


def _tiles(mark: str) -> list[tuple[int, int]]:
    return [(x, y) for y, row in enumerate(LAYOUT) for x, c in enumerate(row) if c == mark]


def _floor(cell: tuple[int, int]) -> bool:
    x, y = cell
    return 0 <= y < len(LAYOUT) and 0 <= x < len(LAYOUT[y]) and LAYOUT[y][x] in " 12"


class Partner:
    """A scripted kitchen cook: ``act(observation, rng) -> action``, randomness only from ``rng``."""

    def __init__(self, epsilon: float = 0.05) -> None:
        self.epsilon = epsilon

    def act(self, observation: dict[str, Any], rng: np.random.Generator) -> int:
        if self.epsilon > 0 and rng.random() < self.epsilon:
            return int(rng.integers(5))
        targets = self._targets(observation)
        if not targets:
            return 0
        return self._towards(observation, targets)

    def _targets(self, obs: dict[str, Any]) -> list[tuple[int, int]]:
        """The cells (non-floor tiles) the cook should use next."""
        held = obs["holding"]
        pots = _tiles("P")
        ready = [pots[k] for k, (contents, left) in enumerate(obs["pots"]) if len(contents) == 3 and left == 0]
        cooking = [pots[k] for k, (contents, left) in enumerate(obs["pots"]) if len(contents) == 3]
        open_pots = [k for k, (contents, _left) in enumerate(obs["pots"]) if len(contents) < 3]
        if held.startswith("soup:"):
            return _tiles("S")
        if held == "plate":
            return ready or cooking
        if held in ("onion", "tomato"):
            return [pots[k] for k in open_pots]
        # Empty hands: plate a soup that is (nearly) done, unless the partner already carries a plate.
        if cooking and obs["partner_holding"] != "plate":
            return _tiles("D")
        if not open_pots:
            return []
        k = max(open_pots, key=lambda k: (len(obs["pots"][k][0]), -k))  # fill the fullest pot first
        recipe = obs["orders"][0][0] if obs["orders"] else "OOO"
        missing = Counter(recipe) - Counter(obs["pots"][k][0])
        letter = min(missing) if missing else "O"
        return _tiles(_CRATES[letter])

    def _towards(self, obs: dict[str, Any], targets: list[tuple[int, int]]) -> int:
        """Interact when facing a target from next to it, else the first step of a shortest path to such a spot."""
        x, y = obs["position"]
        partner = tuple(obs["partner"])
        for action in range(1, 5):
            dx, dy = MOVES[action]
            if (x + dx, y + dy) in targets:
                # Turning towards a counter tile never moves the cook, so a turn is a move action.
                return INTERACT if obs["facing"] == action else action
        # Breadth-first search from the cook over free floor; the first move of the first path that ends
        # next to a target.
        start = (x, y)
        seen = {start: 0}
        queue: deque[tuple[int, int]] = deque([start])
        while queue:
            cell = queue.popleft()
            for action in range(1, 5):
                dx, dy = MOVES[action]
                nxt = (cell[0] + dx, cell[1] + dy)
                if nxt in seen or not _floor(nxt) or nxt == partner:
                    continue
                seen[nxt] = seen[cell] or action
                if any((nxt[0] + mx, nxt[1] + my) in targets for mx, my in MOVES[1:]):
                    return seen[nxt]
                queue.append(nxt)
        return 0
