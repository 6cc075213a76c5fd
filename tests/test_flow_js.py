"""The study flow's pure JavaScript under Node: the per-participant order of shuffled scenes."""

from __future__ import annotations


import pytest

from server_support import run_node_module

SCRIPT = """
import { assignOrder } from "./js_bridge/flow.mjs";
import { prng } from "./js_bridge/conditioner.mjs";

const scenes = [
  { id: "consent", kind: "consent" },
  { id: "a", kind: "instructions", shuffle: "conditions" },
  { id: "waiting", kind: "waiting" },
  { id: "b", kind: "instructions", shuffle: "conditions" },
  { id: "c", kind: "survey", shuffle: "conditions" },
  { id: "x", kind: "survey", shuffle: "surveys" },
  { id: "y", kind: "survey", shuffle: "surveys" },
  { id: "end", kind: "end" },
];
const orders = [];
for (let seed = 0; seed < 200; seed++) {
  const { scenes: out, assignment } = assignOrder(scenes, prng(seed));
  orders.push({ ids: out.map((s) => s.id), assignment });
}
const again = assignOrder(scenes, prng(5)).scenes.map((s) => s.id);
console.log(JSON.stringify({ orders, again, none: assignOrder([{ id: "g", kind: "game" }], prng(1)) }));
"""


@pytest.fixture(scope="module")
def result() -> dict:
    return run_node_module(SCRIPT)


def test_shuffled_scenes_swap_only_among_their_own_positions(result):
    for o in result["orders"]:
        ids = o["ids"]
        assert (ids[0], ids[2], ids[7]) == ("consent", "waiting", "end")
        assert sorted([ids[1], ids[3], ids[4]]) == ["a", "b", "c"]
        assert sorted(ids[5:7]) == ["x", "y"]
        assert o["assignment"] == [{"label": "conditions", "order": [ids[1], ids[3], ids[4]]},
                                   {"label": "surveys", "order": ids[5:7]}]


def test_every_order_occurs_and_a_seed_repeats_its_order(result):
    seen = {tuple(o["ids"][i] for i in (1, 3, 4)) for o in result["orders"]}
    assert len(seen) == 6, seen  # all 3! orders of the shuffled group over 200 participants
    assert result["again"] == result["orders"][5]["ids"]
    assert result["none"] == {"scenes": [{"id": "g", "kind": "game"}], "assignment": []}
