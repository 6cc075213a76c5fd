"""Turn an env observation into the model's input: keys or a hook, then ``(x - mean) / std``, then wire tensors.

Runs in the page (numpy only). A hook is ``module:function`` taking the observation and returning the main input
(an array) or several inputs by name (a dict of arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pyodide_runtime.policies.spec import PolicyError
from pyodide_runtime.policies.tensors import Tensor, to_tensor

if TYPE_CHECKING:
    from pyodide_runtime.policies.resolved import ResolvedPolicy

__all__ = ["map_observation", "observation_features", "normalize", "load_hook"]

_HOOKS: dict[str, Callable[[Any], Any]] = {}


def load_hook(spec: str) -> Callable[[Any], Any]:
    """The function a hook spec names (imported once, then cached)."""
    hook = _HOOKS.get(spec)
    if hook is None:
        from pyodide_runtime.specs import load_factory

        try:
            hook = load_factory(spec)
        except (ImportError, ValueError, TypeError) as exc:
            raise PolicyError(f"hook {spec!r}: {exc}") from None
        _HOOKS[spec] = hook
    return hook


def _flatten(value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise PolicyError(f"{where} cannot be flattened into numbers ({exc}); pick numeric keys or use a hook") \
            from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise PolicyError(f"{where} is {type(value).__name__} {str(value)[:60]!r}, not numbers; list only numeric "
                          "keys in keys, or turn the observation into numbers with a hook")
    return arr.ravel()


def observation_features(observation: Any, keys: Sequence[str] | None = None,
                         hook: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """The raw (not normalised) main input for ``observation``, or the hook's dict of inputs.

    Without a hook: a dict observation gives its ``keys`` (default: every key, sorted), each flattened, joined in
    order; any other observation is flattened as is.
    """
    if hook is not None:
        value = load_hook(hook)(observation)
        if isinstance(value, Mapping):
            return {str(k): np.asarray(v) for k, v in value.items()}
        return _flatten(value, f"hook {hook!r} result")
    if isinstance(observation, Mapping):
        names = list(keys) if keys is not None else sorted(observation, key=str)
        parts = []
        for key in names:
            if key not in observation:
                raise PolicyError(f"observation has no key {key!r} (keys: {', '.join(map(str, observation))})")
            parts.append(_flatten(observation[key], f"observation[{key!r}]"))
        if not parts:
            raise PolicyError("the observation is an empty dict: nothing to feed the model")
        return np.concatenate([p.astype(np.float64) if p.dtype.kind == "f" else p for p in parts])
    if keys is not None:
        raise PolicyError(f"keys are given but the observation is a {type(observation).__name__}, not a dict")
    return _flatten(observation, "the observation")


def normalize(x: np.ndarray, mean: float | Sequence[float] | None, std: float | Sequence[float] | None,
              where: str = "policy") -> np.ndarray:
    """``(x - mean) / std`` in float64; a list must have one value per element of ``x``."""
    out = np.asarray(x, dtype=np.float64).ravel()
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, (list, tuple)) and len(value) != out.size:
            raise PolicyError(f"{where}.{name}: has {len(value)} values but the observation maps to {out.size} "
                              f"numbers; give one value per number, or a single number")
    if mean is not None:
        out = out - np.asarray(mean, dtype=np.float64)
    if std is not None:
        out = out / np.asarray(std, dtype=np.float64)
    return out


def main_input(resolved: ResolvedPolicy, features: np.ndarray) -> np.ndarray:
    """The main input array from raw features: normalised, cast, shaped as the model takes it."""
    where = f"policies.{resolved.agent}"
    if resolved.mean is not None or resolved.std is not None:
        features = normalize(features, resolved.mean, resolved.std, where)
    if features.size != resolved.input_size:
        raise PolicyError(f"{where}: the observation maps to {features.size} numbers but model input "
                          f"{resolved.input_name!r} takes {resolved.input_size} {list(resolved.input_dims)}")
    return np.asarray(features).astype(np.dtype(resolved.input_dtype)).reshape(resolved.input_dims)


def map_observation(resolved: ResolvedPolicy, observation: Any) -> list[Tensor]:
    """The model's feeds for ``observation`` (recurrent state not included), batch dimension added."""
    features = observation_features(observation, resolved.keys, resolved.hook)
    where = f"policies.{resolved.agent}.hook"
    if isinstance(features, dict):
        if resolved.input_name not in features:
            raise PolicyError(f"{where}: returned inputs {sorted(features)} but not the model's main input "
                              f"{resolved.input_name!r}")
        feeds = [to_tensor(resolved.input_name, main_input(resolved, features[resolved.input_name].ravel()),
                           resolved.input_dtype)]
        for extra in resolved.extra_inputs:
            if extra["name"] not in features:
                raise PolicyError(f"{where}: returned no value for model input {extra['name']!r}")
            value = features[extra["name"]]
            dims = tuple(extra["dims"])
            if value.size != int(np.prod(dims, dtype=np.int64)):
                raise PolicyError(f"{where}: input {extra['name']!r} has {value.size} values, the model takes "
                                  f"{list(dims)}")
            feeds.append(to_tensor(extra["name"], value.astype(np.dtype(extra["dtype"])).reshape(dims),
                                   extra["dtype"]))
        return feeds
    return [to_tensor(resolved.input_name, main_input(resolved, features), resolved.input_dtype)]
