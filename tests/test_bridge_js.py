"""The bridge's pure JavaScript modules under Node: seeded network conditions and key maps."""

from __future__ import annotations

import json

import pytest

from pyodide_runtime.host.server.page_config import page_config
from server_support import run_node_module

SCRIPT = """
import { Conditioner, parseConditions, prng } from "./js_bridge/conditioner.mjs";
import { keyMap } from "./js_bridge/input.mjs";
import { Meter } from "./js_bridge/meter.mjs";

const SPEC = JSON.parse(process.argv[1]);  // /study.json page_config.network_conditions, as the server serves it

async function run(conditions, n, reliable = false) {
  const c = new Conditioner(conditions);
  const got = [];
  const t0 = performance.now();
  const deliver = (d) => got.push([d[0] | (d[1] << 8), performance.now() - t0]);
  for (let i = 0; i < n; i++) c.send(new Uint8Array([i % 256, i >> 8]), reliable, deliver);
  await new Promise((r) => setTimeout(r, 400));
  return { order: got.map((g) => g[0]), first_delay: got.length ? got[0][1] : null, stats: c.stats };
}
const lossy = parseConditions(new URLSearchParams("loss=0.3&duplicate=0.1&seed=9"), SPEC);
let invalid = null;
try { parseConditions({ loss: 2 }, SPEC); } catch (e) { invalid = e.message; }
const meter = new Meter();
for (const v of [0, 0, 0, 0, 0, 0, 0.013, 0.5, 1.234, 25.0, -0.01]) meter.add(v);
const metered = { summary: meter.summary(), p70: meter.percentile(0.7), p90: meter.percentile(0.9) };
meter.reset();
const out = {
  metered, emptied: meter.summary(),
  prng: [prng(3)(), prng(3)()],
  none: parseConditions(new URLSearchParams(""), SPEC),
  lossy: lossy,
  a: await run(lossy, 500),
  b: await run(lossy, 500),
  reliable: await run(lossy, 200, true),
  delayed: await run(parseConditions({ latency_ms: 120, seed: 1 }, SPEC), 5),
  passthrough: await run(null, 5),
  invalid,
  derived: Object.fromEntries(keyMap(null, ["stay", "up", "right", "down", "left"])),
  given: Object.fromEntries(keyMap({ KeyJ: 4, Bad: "x" }, ["stay", "up"])),
};
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def result() -> dict:
    spec = json.dumps(page_config()["network_conditions"])
    return run_node_module(SCRIPT, spec)


def test_conditions_are_seeded_and_reproducible(result):
    assert result["prng"][0] == result["prng"][1]
    assert (result["a"]["order"], result["a"]["stats"]) == (result["b"]["order"], result["b"]["stats"]), \
        "the same seed makes the same decisions"
    stats = result["a"]["stats"]
    assert 100 < stats["lost"] < 200 and 20 < stats["duplicated"] < 80
    assert len(result["a"]["order"]) == 500 - stats["lost"] + stats["duplicated"]


def test_reliable_packets_are_never_lost_or_duplicated(result):
    assert result["reliable"]["order"] == list(range(200))


def test_latency_delays_and_no_conditions_pass_through(result):
    assert result["delayed"]["first_delay"] >= 110
    assert result["delayed"]["order"] == list(range(5))
    assert result["passthrough"]["order"] == list(range(5)) and result["passthrough"]["first_delay"] < 50
    assert result["none"] is None
    assert result["lossy"]["loss"] == 0.3 and result["lossy"]["seed"] == 9
    assert "loss must be at most 1" in result["invalid"]


def test_key_maps_come_from_the_study_or_the_action_names(result):
    assert result["derived"] == {"ArrowUp": 1, "KeyW": 1, "ArrowRight": 2, "KeyD": 2, "ArrowDown": 3, "KeyS": 3,
                                 "ArrowLeft": 4, "KeyA": 4}
    assert result["given"] == {"KeyJ": 4}


def test_the_meter_keeps_a_bucketed_distribution_like_the_python_one(result):
    from pyodide_runtime.tick_parts import Histogram

    h = Histogram()
    for v in [0, 0, 0, 0, 0, 0, 0.013, 0.5, 1.234, 25.0, -0.01]:
        h.add(v)
    js = result["metered"]["summary"]
    assert js == {**h.summary(), "total_ms": js["total_ms"]} and abs(js["total_ms"] - h.total) < 1e-3
    assert js["p50"] == 0 and js["p95"] == js["max_ms"] == 25.0, "zeros (and jitter below zero) count as 0"
    assert (result["metered"]["p70"], result["metered"]["p90"]) == (h.percentile(0.7), h.percentile(0.9)) == (0.02, 1.24)
    assert result["emptied"]["count"] == 0 and result["emptied"]["p50"] is None
