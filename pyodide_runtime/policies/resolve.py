"""Check a policy against its model and a sample observation (CPython): names, sizes, element types."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyodide_runtime.policies.model import ModelInfo, TensorInfo, describe_model
from pyodide_runtime.policies.observation import normalize, observation_features
from pyodide_runtime.policies.resolved import ResolvedPolicy
from pyodide_runtime.policies.spec import DTYPES, PolicyError, PolicySpec

__all__ = ["resolve_policy", "feed_dims"]

_SCORE_TYPES = ("float32", "float64")


def feed_dims(dims: tuple[int | None, ...] | None, size: int) -> tuple[int, ...] | None:
    """Concrete dims for ``size`` elements fed to a tensor declared ``dims`` (``None`` entries symbolic).

    Unknown shape: ``(1, size)``. A symbolic leading (batch) dim is 1; one other symbolic dim takes what is left.
    ``None`` when ``size`` elements cannot fill the declared shape.
    """
    if dims is None:
        return (1, size)
    out = [d for d in dims]
    if out and out[0] is None:
        out[0] = 1
    unknown = [i for i, d in enumerate(out) if d is None]
    known = int(np.prod([d for d in out if d is not None], dtype=np.int64))
    if len(unknown) > 1:
        return None
    if unknown:
        if known == 0 or size % known:
            return None
        out[unknown[0]] = size // known
        return tuple(int(d) for d in out)
    return tuple(int(d) for d in out) if known == size else None


def _state_dims(info: TensorInfo, where: str) -> tuple[int, ...]:
    if info.dims is None or any(d is None for d in info.dims[1:]):
        raise PolicyError(f"{where}: recurrent input {info.name!r} has shape {info.describe()}; its state shape "
                          "must be fixed (only the leading batch dimension may be symbolic)")
    return tuple(1 if d is None else int(d) for d in info.dims)


def _names(tensors: tuple[TensorInfo, ...]) -> str:
    return ", ".join(t.describe() for t in tensors) or "none"


def resolve_policy(spec: PolicySpec, seat: int, action_count: int, sample_observation: Any,
                   info: ModelInfo | None = None) -> ResolvedPolicy:
    """Load ``spec.model`` and check that it fits: input/output names exist, the mapped ``sample_observation``
    has as many numbers as the model's input (a batch dimension of 1 allowed or added), the output has
    ``action_count`` scores, element types agree with ``spec.dtype``, recurrent names exist in pairs of equal
    type. Raises :class:`PolicyError` saying what was expected and what was found."""
    where = f"policies.{spec.agent}"
    info = info or describe_model(spec.model)
    model = spec.model.name
    state_inputs = set(spec.recurrent)
    state_outputs = set(spec.recurrent.values())
    # The main input and output.
    if spec.input is not None:
        main = info.input(spec.input)
        if main is None:
            raise PolicyError(f"{where}.input: model {model} has no input {spec.input!r}; its inputs: "
                              f"{_names(info.inputs)}")
    else:
        main = next((t for t in info.inputs if t.name not in state_inputs), None)
        if main is None:
            raise PolicyError(f"{where}: model {model} has no input besides the recurrent state; inputs: "
                              f"{_names(info.inputs)}")
    if spec.output is not None:
        out = info.output(spec.output)
        if out is None:
            raise PolicyError(f"{where}.output: model {model} has no output {spec.output!r}; its outputs: "
                              f"{_names(info.outputs)}")
    else:
        out = next((t for t in info.outputs if t.name not in state_outputs), None)
        if out is None:
            raise PolicyError(f"{where}: model {model} has no output besides the recurrent state; outputs: "
                              f"{_names(info.outputs)}")
    if main.dtype != spec.dtype:
        raise PolicyError(f"{where}.dtype: model input {main.name!r} takes {main.dtype} but the policy feeds "
                          f"{spec.dtype}; set dtype = \"{main.dtype}\" (or export the model with a {spec.dtype} "
                          "input)")
    if out.dtype not in _SCORE_TYPES:
        raise PolicyError(f"{where}.output: model output {out.name!r} is {out.dtype}; action scores must be "
                          f"float32 or float64")
    if out.dims is not None and None not in out.dims[1:]:
        scores = int(np.prod([1 if d is None else d for d in out.dims], dtype=np.int64))
        if scores != action_count:
            raise PolicyError(f"{where}.output: model output {out.describe()} has {scores} scores but agent "
                              f"{spec.agent!r} has {action_count} actions; expected shape [1, {action_count}]")
    if spec.default_action >= action_count:
        raise PolicyError(f"{where}.default_action: {spec.default_action} is not an action of {spec.agent!r} "
                          f"(0..{action_count - 1})")
    # Recurrent state.
    recurrent = []
    for state_in, state_out in spec.recurrent.items():
        tin, tout = info.input(state_in), info.output(state_out)
        if tin is None:
            raise PolicyError(f"{where}.recurrent: model {model} has no input {state_in!r}; inputs: "
                              f"{_names(info.inputs)}")
        if tout is None:
            raise PolicyError(f"{where}.recurrent: model {model} has no output {state_out!r}; outputs: "
                              f"{_names(info.outputs)}")
        if tin.dtype not in DTYPES or tin.dtype != tout.dtype:
            raise PolicyError(f"{where}.recurrent: state {state_in!r} is {tin.dtype} but {state_out!r} is "
                              f"{tout.dtype}; they must have the same type, one of {', '.join(DTYPES)}")
        dims = _state_dims(tin, f"{where}.recurrent")
        if tout.dims is not None and None not in tout.dims[1:]:
            out_size = int(np.prod([1 if d is None else d for d in tout.dims], dtype=np.int64))
            if out_size != int(np.prod(dims, dtype=np.int64)):
                raise PolicyError(f"{where}.recurrent: state output {tout.describe()} does not fit state input "
                                  f"{tin.describe()}")
        recurrent.append({"input": state_in, "output": state_out, "dtype": tin.dtype, "dims": dims})
    if main.name in state_inputs:
        raise PolicyError(f"{where}.input: {main.name!r} is also a recurrent state input")
    # The sample observation.
    try:
        features = observation_features(sample_observation, spec.keys, spec.hook)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    extra: list[dict[str, Any]] = []
    if isinstance(features, dict):
        if main.name not in features:
            raise PolicyError(f"{where}.hook: returned inputs {sorted(features)} but not the model's main input "
                              f"{main.name!r}")
        for name, value in features.items():
            if name == main.name:
                continue
            tin = info.input(name)
            if tin is None:
                raise PolicyError(f"{where}.hook: returned {name!r}, which is not a model input; inputs: "
                                  f"{_names(info.inputs)}")
            if tin.dtype not in DTYPES:
                raise PolicyError(f"{where}.hook: model input {name!r} is {tin.dtype}, not a supported type")
            dims = feed_dims(tin.dims, int(value.size))
            if dims is None:
                raise PolicyError(f"{where}.hook: input {name!r} gets {value.size} values but the model takes "
                                  f"{tin.describe()}")
            extra.append({"name": name, "dtype": tin.dtype, "dims": dims})
        features = features[main.name].ravel()
    size = int(features.size)
    for name, value in (("mean", spec.mean), ("std", spec.std)):
        if isinstance(value, tuple) and len(value) != size:
            raise PolicyError(f"{where}.{name}: has {len(value)} values but the observation maps to {size} numbers")
    if spec.mean is not None or spec.std is not None:
        normalize(features, spec.mean, spec.std, where)
    dims = feed_dims(main.dims, size)
    if dims is None:
        how = f"hook {spec.hook!r}" if spec.hook else f"keys {list(spec.keys)}" if spec.keys else "every key"
        raise PolicyError(f"{where}: the observation maps to {size} numbers ({how}) but model input {main.name!r} "
                          f"takes {main.describe()}; change keys/hook or the model's input size")
    fed = {main.name, *state_inputs, *(e["name"] for e in extra)}
    unfed = [t.name for t in info.inputs if t.name not in fed]
    if unfed:
        raise PolicyError(f"{where}: model inputs {unfed} get no value; name them in recurrent, or return them "
                          "from the hook as a dict")
    return ResolvedPolicy(
        agent=spec.agent, seat=int(seat), model_file=spec.model.name, model_sha256=info.sha256,
        model_bytes=info.size, input_name=main.name, input_dtype=main.dtype, input_dims=dims,
        output_name=out.name, action_count=int(action_count), recurrent=tuple(recurrent), extra_inputs=tuple(extra),
        keys=spec.keys, hook=spec.hook, mean=spec.mean, std=spec.std, action=spec.action,
        temperature=spec.temperature, frame_skip=spec.frame_skip, default_action=spec.default_action,
        output_dims=out.dims)
