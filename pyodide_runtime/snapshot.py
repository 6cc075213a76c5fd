"""Snapshots of env state: the ways to save and restore an env, and the global generators' state.

Ways to snapshot an env, fastest first:

``explicit``
    The env implements ``get_state()`` / ``set_state(state)``: a few µs for a small grid game. When the env is
    inside gymnasium wrappers and only the inner env has the protocol, the wrappers' plain scalar attributes (a
    ``TimeLimit``'s step counter, ...) are saved beside it (``explicit+wrappers``).
``attributes``
    Generic: copies the instance attributes of the env and its wrappers, writing them back in place on restore.
``pickle``
    Generic: pickles the whole env; restoring unpickles a fresh copy that replaces the live env.
``deepcopy``
    Generic: ``copy.deepcopy`` on capture and again on restore.

Measured on gymnasium ``CartPole-v1`` (``gymnasium.make``, so inside its three wrappers), capture / restore:
attributes 73 / 64 µs, pickle 215 / 476 µs, deepcopy 791 / 747 µs in Pyodide 0.27.7 under Node; about
30-45 / 25-30, 70-115 / 110-210 and 200-400 / 200-400 µs in CPython 3.11. Pickle beats deepcopy, so it is the
complete fallback; attributes beats both, but fits fewer envs, so ``auto`` keeps it only when
:func:`~pyodide_runtime.envs.snapshot_check.verify_snapshots` accepts it (see
:func:`pyodide_runtime.envs.loading.make_game`).

Every RNG ``step`` depends on must be in a snapshot: the env's own ``np_random`` is inside the env state; bot
RNGs and, when a game uses them, the global ``random`` / ``numpy.random`` states are saved by the game
(:class:`GlobalRngState`). :func:`~pyodide_runtime.envs.snapshot_check.verify_snapshots` proves all this on the
real env before a session starts, and refuses the game with a :class:`SnapshotError` that says what diverged and
how to fix it.

The rollback timeline imports this module, so it stays light: ``numpy`` (and gymnasium, for the types the
``attributes`` method treats as fixed) are imported on first use, not at import time.
"""

from __future__ import annotations

import copy
import pickle
import random
from typing import Any

from pyodide_runtime.canonical import digest

__all__ = [
    "SnapshotError",
    "EnvSnapshotter",
    "ExplicitSnapshotter",
    "WrappedExplicitSnapshotter",
    "AttributeSnapshotter",
    "PickleSnapshotter",
    "DeepcopySnapshotter",
    "choose_snapshotter",
    "GlobalRngState",
    "wrapper_chain",
    "has_explicit",
    "fixed_types",
]


class SnapshotError(RuntimeError):
    """A game cannot be snapshotted and restored faithfully, so it cannot be rolled back.

    ``reason`` is what went wrong; ``fix``, when the check that raised knows it, what to change (the message is
    both).
    """

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(reason if not fix else f"{reason} {fix[0].upper()}{fix[1:]}.")
        self.reason = reason
        self.fix = fix


class EnvSnapshotter:
    """How one env is saved and restored. ``restore`` returns the env to use from then on (maybe a new object)."""

    method = "none"

    def capture(self, env: Any) -> Any:
        raise NotImplementedError

    def restore(self, env: Any, state: Any) -> Any:
        raise NotImplementedError


class ExplicitSnapshotter(EnvSnapshotter):
    """Uses the env's own ``get_state()`` / ``set_state()``."""

    method = "explicit"

    def capture(self, env: Any) -> Any:
        return env.get_state()

    def restore(self, env: Any, state: Any) -> Any:
        env.set_state(state)
        return env


def wrapper_chain(env: Any) -> list[Any]:
    """``env``, the env it wraps, and so on down to the innermost env."""
    chain = [env]
    while hasattr(chain[-1], "env") and chain[-1] is not getattr(chain[-1], "unwrapped", chain[-1]):
        chain.append(chain[-1].env)
    return chain


_SCALARS = (int, float, bool, str, type(None))


class WrappedExplicitSnapshotter(EnvSnapshotter):
    """The innermost env's explicit state, plus the plain scalar attributes of the wrappers around it."""

    method = "explicit+wrappers"

    def capture(self, env: Any) -> Any:
        chain = wrapper_chain(env)
        wrappers = tuple(
            tuple((k, v) for k, v in vars(w).items() if type(v) in _SCALARS and not k.startswith("__"))
            for w in chain[:-1]
        )
        return (chain[-1].get_state(), wrappers)

    def restore(self, env: Any, state: Any) -> Any:
        inner_state, wrappers = state
        chain = wrapper_chain(env)
        for wrapper, fields in zip(chain[:-1], wrappers):
            for key, value in fields:
                setattr(wrapper, key, value)
        chain[-1].set_state(inner_state)
        return env


class AttributeSnapshotter(EnvSnapshotter):
    """Generic and fast: copies the instance attributes of the env and of each wrapper around it, in place.

    Immutable values are kept as they are, arrays are copied, anything else is deep-copied (one memo per
    snapshot, so references shared between attributes stay shared). ``numpy`` generators, including the ones
    inside action and observation spaces, are saved by their state; spaces and env specs are otherwise treated as
    fixed. Restoring writes the attributes back into the same objects (and removes attributes created since), so
    references to the env stay valid. Not every env fits (objects without ``__dict__``, state hidden in C
    extensions), which is why ``auto`` only keeps this method after
    :func:`~pyodide_runtime.envs.snapshot_check.verify_snapshots` accepted it.
    """

    method = "attributes"

    def capture(self, env: Any) -> Any:
        np, fixed = _numpy(), fixed_types()
        chain = wrapper_chain(env)
        memo: dict[int, Any] = {id(o): o for o in chain}
        objects = []
        try:
            for obj in chain:
                values, rngs, keys = {}, [], tuple(vars(obj))
                for key, value in vars(obj).items():
                    if type(value) in _IMMUTABLE:
                        values[key] = value
                    elif isinstance(value, np.random.Generator):
                        rngs.append((key, value.bit_generator.state))
                    elif isinstance(value, fixed):
                        rng = getattr(value, "_np_random", None)
                        if rng is not None:
                            rngs.append((key, rng.bit_generator.state))
                    elif id(value) not in memo or value is not memo[id(value)]:
                        values[key] = _copy(value, memo)
                objects.append((values, tuple(rngs), keys))
        except Exception as exc:
            raise SnapshotError(
                f"the attributes of {type(env).__name__} cannot be copied ({type(exc).__name__}: {exc}); "
                "implement get_state()/set_state() on the env, or use snapshot='pickle'"
            ) from exc
        return _Opaque(tuple(objects))

    def restore(self, env: Any, state: Any) -> Any:
        np, fixed = _numpy(), fixed_types()
        chain = wrapper_chain(env)
        memo: dict[int, Any] = {id(o): o for o in chain}
        for obj, (values, rngs, keys) in zip(chain, state.data):
            attrs = vars(obj)
            for key in [k for k in attrs if k not in keys]:
                del attrs[key]
            for key, value in values.items():
                attrs[key] = value if type(value) in _IMMUTABLE else _copy(value, memo)
            for key, rng_state in rngs:
                target = attrs.get(key)
                if isinstance(target, fixed):
                    target = getattr(target, "_np_random", None)
                if isinstance(target, np.random.Generator) and target.bit_generator.state["bit_generator"] == rng_state[
                    "bit_generator"
                ]:
                    target.bit_generator.state = rng_state
                else:
                    fresh = np.random.Generator(getattr(np.random, rng_state["bit_generator"])())
                    fresh.bit_generator.state = rng_state
                    if isinstance(attrs.get(key), fixed):
                        attrs[key]._np_random = fresh
                    else:
                        attrs[key] = fresh
        return env


_np: Any = None  #: numpy, once :func:`_numpy` imported it
_FIXED: tuple[type, ...] | None = None  #: set by :func:`fixed_types`


def _numpy() -> Any:
    """numpy, imported on first use, so importing this module stays light."""
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def fixed_types() -> tuple[type, ...]:
    """The types whose values the ``attributes`` method keeps as they are: gymnasium spaces and env specs
    (gymnasium is imported on first use)."""
    global _FIXED
    if _FIXED is None:
        from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

        install_multiprocessing_stub()  # gymnasium imports _multiprocessing, absent in Pyodide
        from gymnasium.envs.registration import EnvSpec
        from gymnasium.spaces import Space

        _FIXED = (Space, EnvSpec)
    return _FIXED


_IMMUTABLE = (int, float, bool, str, bytes, type(None), complex, frozenset)


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy`` with fast paths for the containers envs mostly hold; shares ``memo`` with it."""
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    if kind is _np.ndarray and value.dtype != object:
        out: Any = value.copy()
    elif kind is dict:
        out = memo[id(value)] = {}
        for key, item in value.items():
            out[key] = _copy(item, memo)
        return out
    elif kind is list:
        out = memo[id(value)] = []
        out.extend(_copy(item, memo) for item in value)
        return out
    elif kind is tuple:
        out = tuple(_copy(item, memo) for item in value)
    else:
        return copy.deepcopy(value, memo)
    memo[id(value)] = out
    return out


class PickleSnapshotter(EnvSnapshotter):
    """Pickles the whole env; restoring unpickles a fresh copy, so one snapshot can be restored many times."""

    method = "pickle"

    def capture(self, env: Any) -> Any:
        try:
            return _Opaque(pickle.dumps(env, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:
            raise SnapshotError(
                f"{type(env).__name__} cannot be pickled ({type(exc).__name__}: {exc}), so it cannot be snapshotted; "
                "implement get_state()/set_state() on the env, or try snapshot='deepcopy'"
            ) from exc

    def restore(self, env: Any, state: Any) -> Any:
        return pickle.loads(state.data)


class DeepcopySnapshotter(EnvSnapshotter):
    """Deep-copies the whole env on capture and again on restore."""

    method = "deepcopy"

    def capture(self, env: Any) -> Any:
        try:
            return _Opaque(copy.deepcopy(env))
        except Exception as exc:
            raise SnapshotError(
                f"{type(env).__name__} cannot be deep-copied ({type(exc).__name__}: {exc}), so it cannot be "
                "snapshotted; implement get_state()/set_state() on the env"
            ) from exc

    def restore(self, env: Any, state: Any) -> Any:
        return copy.deepcopy(state.data)


class _Opaque:
    """Wraps a generic snapshot. It has no canonical encoding on purpose: pickled bytes are not canonical."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


def has_explicit(obj: Any) -> bool:
    """Whether ``obj``'s class has its own ``get_state()`` / ``set_state()``."""
    # Looked up on the class: some wrappers forward unknown attributes to the env inside, and taking the inner
    # env's state for the wrapper's would silently drop the wrapper's own state.
    kind = type(obj)
    return callable(getattr(kind, "get_state", None)) and callable(getattr(kind, "set_state", None))


def choose_snapshotter(env: Any, method: str = "auto") -> EnvSnapshotter:
    """Pick how to snapshot ``env``: ``auto`` (explicit when available, else pickle), or a method by name.

    (:func:`pyodide_runtime.envs.loading.make_game` refines ``auto``: it tries ``attributes`` first and keeps it
    only if :func:`~pyodide_runtime.envs.snapshot_check.verify_snapshots` accepts it.)
    """
    chain = wrapper_chain(env)
    explicit_outer = has_explicit(env)
    explicit_inner = len(chain) > 1 and has_explicit(chain[-1])
    if method == "auto":
        method = "explicit" if explicit_outer or explicit_inner else "pickle"
    if method == "explicit":
        if explicit_outer:
            return ExplicitSnapshotter()
        if explicit_inner:
            return WrappedExplicitSnapshotter()
        raise SnapshotError(
            f"{type(env).__name__} has no get_state()/set_state(); implement them or use snapshot='pickle'"
        )
    if method == "attributes":
        return AttributeSnapshotter()
    if method == "pickle":
        return PickleSnapshotter()
    if method == "deepcopy":
        return DeepcopySnapshotter()
    raise ValueError(f"unknown snapshot method {method!r}; use auto, explicit, attributes, pickle or deepcopy")


class GlobalRngState:
    """Save, restore and reseed the process-wide ``random`` and ``numpy.random`` generators."""

    __slots__ = ("python", "numpy")

    def __init__(self, python: bool = False, numpy: bool = False) -> None:
        self.python = python
        self.numpy = numpy

    def __bool__(self) -> bool:
        return self.python or self.numpy

    def capture(self) -> tuple[Any, Any]:
        return (
            random.getstate() if self.python else None,
            _numpy().random.get_state() if self.numpy else None,
        )

    def restore(self, state: tuple[Any, Any]) -> None:
        py_state, np_state = state
        if py_state is not None:
            random.setstate(py_state)
        if np_state is not None:
            _numpy().random.set_state(np_state)

    def seed(self, seed: int) -> None:
        """Reseed the declared generators from an episode seed, so every peer starts them alike."""
        if self.python:
            random.seed(seed)
        if self.numpy:
            _numpy().random.seed(seed % 2**32)

    @staticmethod
    def fingerprint() -> tuple[Any, str]:
        """Both global states, comparable with ``==``; used to detect an env that draws from them."""
        kind, keys, pos, has_gauss, cached = _numpy().random.get_state()
        return random.getstate(), f"{kind}:{pos}:{has_gauss}:{cached}:{digest(keys)}"
