"""Human-AI kitchen with an ONNX partner: the numbers the partner's model sees.

The kitchen's observation holds text (what a cook carries, pot contents, recipes), so the study's policy turns it
into numbers with :func:`features` (``hook = "pyodide_runtime.examples.human_ai_onnx:features"``); the study's
``mean`` and ``std`` then scale them. ``scripts/train_kitchen_policy.py`` trains the shipped model
(``human_ai_onnx.onnx``) on the very same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["features", "FEATURE_NAMES", "HELD_ITEMS"]

#: What a cook can carry, one-hot in this order (any soup counts as "soup").
HELD_ITEMS = ("", "onion", "tomato", "plate", "soup")
_POTS = 2

#: One name per number :func:`features` returns.
FEATURE_NAMES: tuple[str, ...] = (
    "x", "y", "partner_x", "partner_y",
    "facing_up", "facing_right", "facing_down", "facing_left",
    *(f"holding_{item or 'nothing'}" for item in HELD_ITEMS),
    *(f"partner_holding_{item or 'nothing'}" for item in HELD_ITEMS),
    *(f"pot{k}_{what}" for k in range(_POTS) for what in ("onions", "tomatoes", "full", "ready", "cooking_left")),
    "order_onions", "order_tomatoes",
)


def _held(item: str) -> list[float]:
    name = "soup" if item.startswith("soup:") else item
    return [float(name == h) for h in HELD_ITEMS]


def features(observation: dict[str, Any]) -> np.ndarray:
    """A cook's observation as 30 numbers (float32), named by :data:`FEATURE_NAMES`: positions, facing, what both
    cooks carry, each pot's onions, tomatoes, full/ready flags and cooking frames left, and the first order's
    onions and tomatoes."""
    x, y = observation["position"]
    px, py = observation["partner"]
    values = [float(x), float(y), float(px), float(py)]
    values += [float(observation["facing"] == a) for a in (1, 2, 3, 4)]
    values += _held(observation["holding"]) + _held(observation["partner_holding"])
    for k in range(_POTS):
        contents, left = observation["pots"][k] if k < len(observation["pots"]) else ("", 0)
        full = len(contents) == 3
        values += [float(contents.count("O")), float(contents.count("T")), float(full), float(full and left == 0),
                   float(left if full else 0)]
    recipe = observation["orders"][0][0] if observation["orders"] else ""
    values += [float(recipe.count("O")), float(recipe.count("T"))]
    return np.asarray(values, dtype=np.float32)
