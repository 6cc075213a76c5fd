"""A small version of ``bench load``: 10 rooms (20 clients) of signaling and relay traffic for a few seconds
against a real server process; every relay message arrives, in order, with no error.

Counts only: how fast the clients sent and how long relaying took depend on the machine's load, and are what
``bench load`` itself reports."""

from __future__ import annotations

from pyodide_runtime.host.benchmarks.load import percentiles, run_load


def test_small_load_delivers_every_relay_message():
    r = run_load(rooms=10, rate=30, duration=4, workers=1)
    assert r["signals_relayed"] == 10 * 6  # every room joined and signaled, so all 20 clients took part
    # Real traffic went through (a second's worth per client of the 4 planned: generous for a loaded machine) ...
    assert r["messages_sent"] >= 10 * 2 * 30
    # ... and the server accepted and relayed all of it: nothing dropped, nothing reordered.
    assert r["messages_dropped"] == 0 and r["messages_received"] == r["messages_sent"]
    assert r["out_of_order"] == 0
    assert r["errors"] == 0, r["error_samples"]
    lat = r["relay_latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]  # measured for every message
    assert r["server_cpu_percent_of_one_core"] > 0
    assert r["server_rss_bytes"]["peak"] > 10 * 2**20


def test_percentiles_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 51.0, "p95": 96.0, "p99": 100.0, "max": 100.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None}
