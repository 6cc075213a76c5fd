"""The latency probes under Node: two workers' probers wired through seeded network conditioners, the echo, the
median, a partner page that does not echo, and the main-thread call through a worker's messages."""

from __future__ import annotations

import json
import re

import pytest

from pyodide_runtime.host.server.page_config import page_config
from pyodide_runtime.protocol.codec import MAGIC
from server_support import REPO, run_node_module

SCRIPT = """
import { Conditioner, parseConditions } from "./js_bridge/conditioner.mjs";
import { PROBE, Prober, measurePeerRtt, median, newPageId } from "./js_bridge/screening.mjs";

const SPEC = JSON.parse(process.argv[1]);
const MAGIC = Number(process.argv[2]);

// Two pages' workers: each sends through its own conditioner; the partner's worker gets the bytes as "peer".
function pair(conditionsA, conditionsB, { echoes = true } = {}) {
  const inbox = { a: [], b: [] };
  const condA = new Conditioner(conditionsA), condB = new Conditioner(conditionsB);
  // A worker without probes (an old page) hands every packet on to Python: here, its inbox.
  const toB = (p) => (echoes && b.handle(0, p)) || inbox.b.push(p);
  const toA = (p) => a.handle(1, p) || inbox.a.push(p);
  const a = new Prober((seat, data) => condA.send(data, false, toB));
  const b = new Prober((seat, data) => condB.send(data, false, toA));
  return { a, b, inbox, condA, condB };
}

const delayed = (ms) => parseConditions({ latency_ms: ms, seed: 1 }, SPEC);
const t0 = performance.now();
const conditioned = pair(delayed(60), delayed(40));
const measured = await conditioned.a.measure(1, { samples: 5, intervalMs: 20, timeoutMs: 3000 });
const conditionedMs = performance.now() - t0;

const old = pair(delayed(10), null, { echoes: false });
const t1 = performance.now();
const silent = await old.a.measure(1, { samples: 3, intervalMs: 10, timeoutMs: 300 });
const silentMs = performance.now() - t1;

const lossy = pair(parseConditions({ loss: 0.5, seed: 4 }, SPEC), null);
const partial = await lossy.a.measure(1, { samples: 20, intervalMs: 5, timeoutMs: 500 });

const probeOnly = new Prober(() => { throw new Error("a non-probe must not be echoed"); });
const game = new Uint8Array([MAGIC, 1, 0, 0, 0, 0]);
const lookalike = new Uint8Array([PROBE, 0, 0, 0, 0, 0, 9]);

// The main-thread call: a worker is anything with postMessage and message events.
class FakeWorker extends EventTarget {
  constructor() { super(); this.partner = new Prober((s, d) => this.prober.handle(1, d));
                  this.prober = new Prober((s, d) => this.partner.handle(0, d)); this.seen = []; }
  postMessage(m) {
    this.seen.push(m);
    this.dispatchEvent(new MessageEvent("message", { data: { type: "status" } }));
    this.dispatchEvent(new MessageEvent("message", { data: { type: "probe-result", id: -1, rtt_ms: 1e9 } }));
    this.prober.measure(m.seat, m).then((r) =>
      this.dispatchEvent(new MessageEvent("message", { data: { type: "probe-result", id: m.id, ...r } })));
  }
}
const worker = new FakeWorker();
const viaWorker = await measurePeerRtt(worker, 1, { samples: 3, intervalMs: 1, conditions: { latency_ms: 5 } });

console.log(JSON.stringify({
  measured, conditionedMs, silent, silentMs, partial, lost: lossy.condA.stats.lost + lossy.condB.stats.lost,
  oldInbox: old.inbox.b.map((p) => Array.from(p)),
  game: probeOnly.handle(0, game), lookalike: probeOnly.handle(0, lookalike),
  medians: [median([3, 1, 2]), median([4, 1, 3, 2])],
  viaWorker, request: worker.seen[0], pageIds: [newPageId(), newPageId()],
}));
"""


@pytest.fixture(scope="module")
def result() -> dict:
    spec = json.dumps(page_config()["network_conditions"])
    return run_node_module(SCRIPT, spec, str(MAGIC))


def test_the_round_trip_includes_both_conditioners_latency(result):
    measured = result["measured"]
    assert len(measured["samples"]) == 5 and all(s >= 99 for s in measured["samples"]), measured
    assert 99 <= measured["rtt_ms"] < 400 and measured["rtt_ms"] == sorted(measured["samples"])[2]
    assert result["conditionedMs"] < 3000, "all samples answered: no wait for the timeout"


def test_a_partner_that_does_not_echo_ends_in_a_timeout_without_a_round_trip(result):
    assert result["silent"] == {"rtt_ms": None, "samples": []}
    assert result["silentMs"] >= 290
    # The old page's worker got the probes as ordinary peer bytes (its Python rejects and counts them).
    assert len(result["oldInbox"]) == 3 and all(p[0] == 0x50 and len(p) == 6 for p in result["oldInbox"])


def test_lost_probes_are_not_samples(result):
    partial = result["partial"]
    assert result["lost"] > 0 and 0 < len(partial["samples"]) < 20
    assert partial["rtt_ms"] is not None


def test_only_probes_are_taken_out_of_the_peer_bytes(result):
    assert result["game"] is False and result["lookalike"] is False
    assert 0x50 != MAGIC
    assert result["medians"] == [2, 2.5]


def test_the_main_thread_call_goes_through_the_worker(result):
    assert len(result["viaWorker"]["samples"]) == 3 and result["viaWorker"]["rtt_ms"] is not None
    assert result["viaWorker"]["rtt_ms"] < 1e9, "another request's result is not taken"
    assert {k: result["request"][k] for k in ("type", "seat", "samples", "intervalMs", "timeoutMs", "conditions")} \
        == {"type": "probe", "seat": 1, "samples": 3, "intervalMs": 1, "timeoutMs": 8000,
            "conditions": {"latency_ms": 5}}


def test_page_ids_are_what_the_server_accepts(result):
    from pyodide_runtime.host.server.signaling import _PAGE_ID

    first, second = result["pageIds"]
    assert first != second and all(_PAGE_ID.match(p) for p in (first, second))


def test_the_worker_takes_probes_out_before_python():
    worker = (REPO / "js_bridge" / "worker.mjs").read_text(encoding="utf-8")
    assert re.search(r"if \(!prober\.handle\(m\.seat, bytes\)\) inbox\.push\(\[m\.seat, bytes\]\);", worker)
    assert "new Prober((seat, data) => send(seat, data, false))" in worker
    assert 'probe: (m) => probe(m),' in worker
