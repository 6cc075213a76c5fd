"""A policy checked against its model: everything a page needs to feed the model and choose actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["ResolvedPolicy"]


def _numbers(value: Any) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else float(value)


@dataclass(frozen=True)
class ResolvedPolicy:
    """One agent's policy with the model's concrete tensor names, types and shapes (batch dimension included).

    ``recurrent`` lists ``{"input", "output", "dtype", "dims"}`` per state tensor (zeros at every episode start);
    ``extra_inputs`` lists ``{"name", "dtype", "dims"}`` for further inputs a hook returns by name.
    """

    agent: str
    seat: int
    model_file: str
    model_sha256: str
    model_bytes: int
    input_name: str
    input_dtype: str
    input_dims: tuple[int, ...]
    output_name: str
    action_count: int
    recurrent: tuple[Mapping[str, Any], ...] = ()
    extra_inputs: tuple[Mapping[str, Any], ...] = ()
    keys: tuple[str, ...] | None = None
    hook: str | None = None
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None
    action: str = "argmax"
    temperature: float = 1.0
    frame_skip: int = 1
    default_action: int = 0
    #: Name and dims of the model's output, for reports.
    output_dims: tuple[int | None, ...] | None = field(default=None)

    @property
    def input_size(self) -> int:
        """Elements of the main input."""
        size = 1
        for d in self.input_dims:
            size *= d
        return size

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists); :meth:`from_json` restores an equal object."""
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, tuple):
                data[key] = [dict(v) if isinstance(v, Mapping) else v for v in value]
        data["recurrent"] = [{**r, "dims": list(r["dims"])} for r in data["recurrent"]]
        data["extra_inputs"] = [{**r, "dims": list(r["dims"])} for r in data["extra_inputs"]]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResolvedPolicy:
        """Rebuild from :meth:`to_json`'s dict; other keys (``/study.json`` adds the model's ``url``) are ignored."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in data.items() if k in known}
        d["input_dims"] = tuple(int(x) for x in d["input_dims"])
        d["recurrent"] = tuple({**r, "dims": tuple(int(x) for x in r["dims"])} for r in d.get("recurrent") or ())
        d["extra_inputs"] = tuple({**r, "dims": tuple(int(x) for x in r["dims"])}
                                  for r in d.get("extra_inputs") or ())
        d["keys"] = tuple(d["keys"]) if d.get("keys") is not None else None
        d["mean"], d["std"] = _numbers(d.get("mean")), _numbers(d.get("std"))
        if d.get("output_dims") is not None:
            d["output_dims"] = tuple(d["output_dims"])
        return cls(**d)
