"""A study's ``[policies.AGENT]`` table, checked: which ONNX model plays an agent and how it is fed."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PolicyError", "PolicySpec", "ACTIONS", "DTYPES", "SPEC_KEYS"]

#: Tensor element types of the wire format (and of the main input).
DTYPES = ("float32", "float64", "int32", "int64", "uint8", "bool")
#: How an action is chosen from the model's scores.
ACTIONS = ("argmax", "sample")
SPEC_KEYS = ("model", "keys", "hook", "dtype", "mean", "std", "input", "output", "action", "temperature",
             "recurrent", "frame_skip", "default_action")


class PolicyError(ValueError):
    """A policy that cannot be used as configured; the message names the field or file and what to change."""


@dataclass(frozen=True)
class PolicySpec:
    """One agent's ONNX policy, as the study file declares it (see :meth:`from_table` for the fields)."""

    agent: str
    model: Path
    keys: tuple[str, ...] | None = None
    hook: str | None = None
    dtype: str = "float32"
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None
    input: str | None = None
    output: str | None = None
    action: str = "argmax"
    temperature: float = 1.0
    recurrent: Mapping[str, str] = field(default_factory=dict)
    frame_skip: int = 1
    default_action: int = 0

    @classmethod
    def from_table(cls, agent: str, table: Mapping[str, Any], base_dir: Path | str) -> PolicySpec:
        """Check ``[policies.<agent>]`` and resolve ``model`` (relative to ``base_dir``, the study file's folder).

        Raises :class:`PolicyError` naming the field, e.g. ``policies.cook_1.frame_skip: must be an integer >= 1``.
        """
        where = f"policies.{agent}"
        if not isinstance(table, Mapping):
            raise PolicyError(f"{where}: must be a table, e.g. [{where}] with model = \"policy.onnx\"")
        for key in table:
            if key not in SPEC_KEYS:
                close = difflib.get_close_matches(str(key), SPEC_KEYS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise PolicyError(f"{where}.{key}: unknown key; {hint}known keys: {', '.join(SPEC_KEYS)}")
        if "model" not in table:
            raise PolicyError(f"{where}.model: required, the ONNX file's path relative to the study file")
        model = _string(table, "model", where)
        path = (Path(base_dir) / Path(model).expanduser()).resolve()
        if not path.is_file():
            raise PolicyError(f"{where}.model: model file {path} not found (paths are relative to the study file)")
        keys = None
        if "keys" in table:
            raw = table["keys"]
            if not isinstance(raw, (list, tuple)) or not raw or not all(isinstance(k, str) and k for k in raw):
                raise PolicyError(f"{where}.keys: must be a non-empty list of observation keys (got {raw!r})")
            if len(set(raw)) != len(raw):
                raise PolicyError(f"{where}.keys: lists a key twice ({list(raw)})")
            keys = tuple(raw)
        hook = _string(table, "hook", where) if "hook" in table else None
        if hook is not None:
            target, sep, attr = hook.rpartition(":")
            if not sep or not target or not attr:
                raise PolicyError(f"{where}.hook: must look like 'package.module:function' (got {hook!r})")
            if keys is not None:
                raise PolicyError(f"{where}: give either keys or hook, not both (the hook builds the model's input)")
        dtype = _string(table, "dtype", where) if "dtype" in table else "float32"
        if dtype not in DTYPES:
            raise PolicyError(f"{where}.dtype: must be one of {', '.join(DTYPES)} (got {dtype!r})")
        mean = _numbers(table, "mean", where)
        std = _numbers(table, "std", where)
        if std is not None and any(s <= 0 for s in (std if isinstance(std, tuple) else (std,))):
            raise PolicyError(f"{where}.std: every value must be > 0 (got {table['std']!r})")
        if (mean is not None or std is not None) and not dtype.startswith("float"):
            raise PolicyError(f"{where}: mean and std need a float input, but dtype is {dtype!r}")
        input_name = _string(table, "input", where) if "input" in table else None
        output_name = _string(table, "output", where) if "output" in table else None
        action = _string(table, "action", where) if "action" in table else "argmax"
        if action not in ACTIONS:
            raise PolicyError(f"{where}.action: must be 'argmax' or 'sample' (got {action!r})")
        temperature = table.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise PolicyError(f"{where}.temperature: must be a number > 0 (got {temperature!r})")
        recurrent = table.get("recurrent", {})
        if not isinstance(recurrent, Mapping) or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in recurrent.items()):
            raise PolicyError(f"{where}.recurrent: must be a table of state input = state output names, "
                              f"e.g. {{ h_in = \"h_out\" }} (got {recurrent!r})")
        frame_skip = _integer(table, "frame_skip", where, 1, 1)
        default_action = _integer(table, "default_action", where, 0, 0)
        return cls(agent=agent, model=path, keys=keys, hook=hook, dtype=dtype, mean=mean, std=std,
                   input=input_name, output=output_name, action=action, temperature=float(temperature),
                   recurrent=dict(recurrent), frame_skip=frame_skip, default_action=default_action)


def _string(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{where}.{key}: must be a non-empty string (got {value!r})")
    return value


def _integer(table: Mapping[str, Any], key: str, where: str, default: int, low: int) -> int:
    value = table.get(key, default)
    if type(value) is not int or value < low:
        raise PolicyError(f"{where}.{key}: must be an integer >= {low} (got {value!r})")
    return value


def _numbers(table: Mapping[str, Any], key: str, where: str) -> float | tuple[float, ...] | None:
    if key not in table:
        return None
    value = table[key]

    def number(v: Any) -> bool:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and v == v and abs(v) != float("inf")

    if number(value):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(number(v) for v in value):
        return tuple(float(v) for v in value)
    raise PolicyError(f"{where}.{key}: must be a number or a non-empty list of numbers, one per input element "
                      f"(got {value!r})")
