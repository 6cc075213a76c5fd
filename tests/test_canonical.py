"""The canonical encoding: one text per value, whichever internal encoder writes it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyodide_runtime.canonical import canonical_bytes, canonical_json, digest, to_canonical


def reference(value):
    """The format's definition: plain data first, then sorted, compact JSON."""
    return json.dumps(to_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=4)), max_leaves=20)


@given(values)
def test_fast_path_writes_exactly_the_reference_text(value):
    assert canonical_json(value) == reference(value)


def test_documented_rules():
    assert canonical_json({"b": 1, "a": [1.5, -0.0]}) == '{"a":[1.5,-0.0],"b":1}'
    assert canonical_json([math.nan, math.inf, -math.inf]) == '["NaN","Infinity","-Infinity"]'
    assert canonical_json({1: "x"}) == '{"1":"x"}'
    assert canonical_json((1, 2)) == "[1,2]"
    assert canonical_json({"s": {"b", "a"}}) == '{"s":["a","b"]}'
    assert canonical_json(b"\x00\xff") == '{"__bytes__":"00ff"}'
    assert canonical_json("é") == '"é"'
    assert float(canonical_json(0.1)) == 0.1


def test_numpy_values_encode_as_their_python_values():
    obs = {"grid": np.arange(6, dtype=np.int64).reshape(2, 3), "v": np.float32(0.1), "ok": np.bool_(True),
           "f": np.array([1.0, np.nan])}
    assert canonical_json(obs) == reference(obs)
    assert canonical_json(obs) == '{"f":[1.0,"NaN"],"grid":[[0,1,2],[3,4,5]],"ok":true,"v":0.10000000149011612}'


def test_unknown_types_are_refused_with_their_name():
    class Opaque:
        pass

    with pytest.raises(TypeError, match="Opaque"):
        canonical_json({"x": Opaque()})


def test_bytes_and_digest_follow_the_text():
    value = {"a": [1, 2.5]}
    assert canonical_bytes(value) == canonical_json(value).encode()
    assert digest(value) == digest({"a": (1, 2.5)}) != digest({"a": [1, 2.6]})
    assert len(digest(value, size=8)) == 16
