"""Reading discrete action spaces: human inputs and bot actions are indices into them."""

from __future__ import annotations

from typing import Any

from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

install_multiprocessing_stub()  # gymnasium imports _multiprocessing, absent in Pyodide
from gymnasium import spaces  # noqa: E402

__all__ = ["discrete_size", "is_discrete", "per_agent_discrete"]


def is_discrete(space: Any) -> bool:
    """Whether ``space`` is a gymnasium ``Discrete`` space."""
    return isinstance(space, spaces.Discrete)


def discrete_size(space: Any, who: str = "the env") -> tuple[int, int]:
    """``(n, start)`` of a ``Discrete`` space; any other space is refused, since inputs are discrete."""
    if not is_discrete(space):
        raise TypeError(
            f"{who} has action space {space!r}; only Discrete action spaces can be played "
            "(human inputs are discrete key choices). Wrap the env to map a Discrete choice to its actions."
        )
    return int(space.n), int(space.start)


def per_agent_discrete(space: Any) -> list[tuple[Any, Any]] | None:
    """For a ``Dict`` or ``Tuple`` of per-player ``Discrete`` spaces: ``[(key, subspace), ...]``; else ``None``."""
    if isinstance(space, spaces.Dict):
        items = list(space.spaces.items())
    elif isinstance(space, spaces.Tuple):
        items = list(enumerate(space.spaces))
    else:
        return None
    if not items or not all(is_discrete(s) for _, s in items):
        return None
    return items
