"""Find a researcher's env factory, build the env, and wrap it in the right adapter.

A factory spec is ``"package.module:function"`` or ``"path/to/file.py:function"``. The factory is called with no
argument, or with the config dict when one is given. It returns a PettingZoo-style parallel env, a gymnasium env
with a ``Dict``/``Tuple`` of ``Discrete`` actions, a single-agent gymnasium env with ``Discrete`` actions, or an
already built :class:`~pyodide_runtime.envs.base.Game`.

Example::

    game = load_game("pyodide_runtime.examples.coin_chase:make_env", {"players": 2},
                     bots={"player_1": CoinChasePolicy()})
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pyodide_runtime.envs.base import Game
from pyodide_runtime.envs.gym_multi import MultiDiscreteGymGame, looks_multi_gym
from pyodide_runtime.envs.parallel import ParallelEnvGame, looks_parallel
from pyodide_runtime.envs.single import SingleAgentGame, looks_single_gym
from pyodide_runtime.envs.snapshot_check import verify_snapshots
from pyodide_runtime.snapshot import SnapshotError
from pyodide_runtime.specs import EnvLoadError, load_factory

# load_factory and EnvLoadError live in pyodide_runtime.specs (bots resolve their specs there too); they stay
# part of this module's interface, which the page's worker uses to import the env before building the game.
__all__ = ["load_factory", "make_game", "load_game", "source_hash", "EnvLoadError"]


def source_hash(obj: Any) -> str | None:
    """sha256 of the source file of the module defining ``obj`` (a module, class, function or instance)."""
    module = obj if inspect.ismodule(obj) else inspect.getmodule(obj if callable(obj) else type(obj))
    path = getattr(module, "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _env_identity(env: Any) -> tuple[str, str]:
    inner = getattr(env, "unwrapped", env)
    metadata = getattr(env, "metadata", None) or {}
    spec = getattr(env, "spec", None)
    env_id = getattr(spec, "id", None) or metadata.get("name") or type(inner).__name__
    version = metadata.get("version", "0")
    return str(env_id), str(version)


def make_game(
    env: Any,
    *,
    seats: Sequence[Any] | None = None,
    bots: Mapping[Any, Any] | None = None,
    env_id: str | None = None,
    env_version: str | None = None,
    source: str | None = None,
    snapshot: str = "auto",
    global_rng: tuple[bool, bool] | None = None,
    default_inputs: Sequence[int] | None = None,
    verify: bool = True,
) -> Game:
    """Wrap ``env`` in the adapter for its shape and (by default) verify its snapshots.

    ``seats`` lists the agents humans play (default: every agent without a bot); ``bots`` maps agents to
    policies or bot names (see :func:`pyodide_runtime.bots.resolve_bot`). ``snapshot`` is ``auto``,
    ``explicit``, ``attributes``, ``pickle`` or ``deepcopy``; ``global_rng`` declares use of the global ``(random,
    numpy.random)`` generators (usually detected by verification). ``source`` overrides the source hash. With
    ``snapshot="auto"``, an env without ``get_state``/``set_state`` is snapshotted by copying its attributes when
    verification accepts that, else by pickling (without verification: pickling). Raises
    ``TypeError`` for an env shape that cannot be played and
    :class:`~pyodide_runtime.snapshot.SnapshotError` for an env whose snapshots do not restore faithfully.
    """
    if isinstance(env, Game):
        if seats is not None or bots is not None:
            raise ValueError("the factory returned a ready Game; configure its seats and bots in the factory")
        return env
    if callable(getattr(env, "agent_iter", None)) and callable(getattr(env, "last", None)):
        raise TypeError(
            "this is a PettingZoo AEC env; convert it with pettingzoo.utils.conversions.aec_to_parallel(env)"
        )
    if looks_parallel(env):
        adapter: type = ParallelEnvGame
    elif looks_multi_gym(env):
        adapter = MultiDiscreteGymGame
    elif looks_single_gym(env):
        adapter = SingleAgentGame
    else:
        raise TypeError(
            f"cannot play {type(env).__name__}: expected a PettingZoo-style parallel env, a gymnasium env whose "
            f"action space is a Dict/Tuple of Discrete, or a gymnasium env with a Discrete action space "
            f"(action_space is {getattr(env, 'action_space', None)!r})"
        )
    default_id, default_version = _env_identity(env)
    game = adapter(
        env,
        seats=seats,
        bots=bots,
        env_id=env_id or default_id,
        env_version=env_version or default_version,
        source_hash=source or source_hash(getattr(env, "unwrapped", env)),
        snapshot=snapshot,
        global_rng=global_rng,
        default_inputs=default_inputs,
    )
    if verify:
        _verify(game, try_attributes=snapshot == "auto" and game.snapshot_method == "pickle")
    return game


def _verify(game: Any, try_attributes: bool) -> None:
    if try_attributes:
        # Copying attributes in place is several times faster than pickling, but not every env fits it, so it
        # is kept only when verification accepts it.
        game.use_snapshot_method("attributes")
        try:
            verify_snapshots(game)
            return
        except SnapshotError:
            game.use_snapshot_method("pickle")
    verify_snapshots(game)


def load_game(
    spec: str,
    config: Mapping[str, Any] | None = None,
    *,
    bots: Mapping[Any, Any] | None = None,
    seats: Sequence[Any] | None = None,
    **options: Any,
) -> Game:
    """Load the factory ``spec``, build its env (with ``config`` if given) and wrap it with :func:`make_game`.

    The game's ``describe()`` records the spec, the config and the sha256 of the factory's source file.
    """
    factory = load_factory(spec)
    try:
        env = factory() if config is None else factory(dict(config))
    except TypeError as exc:
        if config is not None and not inspect.signature(factory).parameters:
            raise TypeError(f"{spec} takes no config argument, but a config was given") from exc
        raise
    options.setdefault("source", source_hash(factory))
    game = make_game(env, seats=seats, bots=bots, **options)
    provenance = getattr(game, "provenance", None)
    if isinstance(provenance, dict):
        provenance.update({"factory": spec, "config": dict(config) if config is not None else None})
    return game
