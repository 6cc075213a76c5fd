"""`bench scale` in a tiny configuration: every sweep has its rows, and the figures are sane."""

from __future__ import annotations

from pathlib import Path

import json

from pyodide_runtime.host.benchmarks.scale import OBS_HASHES, OBS_SIZES, PLAYERS, WINDOWS, PayloadEnv
from pyodide_runtime.host.cli import main


def test_bench_scale_writes_every_sweep_with_sane_figures(tmp_path, capsys):
    out = tmp_path / "scale.json"
    assert main(["bench", "scale", "--frames", "100", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["suite"] == "scale" and data["machine"]["cpus"] >= 1 and "load_1min" in data["machine"]
    assert [r["max_prediction"] for r in data["window"]] == list(WINDOWS)
    assert [(r["obs_bytes"], r["frame_hash"]) for r in data["obs"]] == [
        (size, mode) for size in OBS_SIZES.values() for mode in OBS_HASHES]
    assert "bytes" in OBS_HASHES
    assert [r["players"] for r in data["players"]] == list(PLAYERS)
    for row in data["window"] + data["obs"] + data["players"]:
        # Both are timed: their relation is the benchmark's to report, not this test's to assert on a busy machine.
        assert 0 < row["bare_step_us"] < 1e6 and 0 < row["engine_frame_us"] < 1e6
        assert abs(row["engine_ratio"] - row["engine_frame_us"] / row["bare_step_us"]) <= 0.01 * row["engine_ratio"]
        assert 0 < row["kept_step_us"] < 1e6
        assert (abs(row["engine_kept_ratio"] - row["engine_frame_us"] / row["kept_step_us"])
                <= 0.01 * row["engine_kept_ratio"])
        assert row["bytes_per_s_per_peer"] > 0
    # 150 ms latency is beyond the 2-frame input delay: the window sweep must actually roll back
    assert all(r["rollbacks"] > 0 for r in data["window"])
    # a perfect network never mispredicts
    assert all(r["rollbacks"] == 0 for r in data["obs"])
    # more players send to more peers
    sent = [r["bytes_per_s_per_peer"] for r in data["players"]]
    assert sent == sorted(sent) and sent[0] < sent[-1]
    assert "prediction window" in capsys.readouterr().out


def test_payload_env_observation_has_the_requested_size_and_restores():
    env = PayloadEnv(obs_bytes=1000)
    obs, _ = env.reset(seed=3)
    assert all(o.nbytes == 1000 for o in obs.values())
    state = env.get_state()
    first = env.step({"p0": 2, "p1": 0})
    env.set_state(state)
    again = env.step({"p0": 2, "p1": 0})
    assert all((a == b).all() for a, b in zip(first[0].values(), again[0].values()))
    assert first[1] == again[1]



def _hash_mode_rows(data: dict) -> list[str]:
    """The rows docs/performance.md shows for the observation sweep by hash mode."""
    rows = []
    for o in data["obs"]:
        size = f"{o['obs_bytes'] // 1024} KiB" if o["obs_bytes"] >= 1024 else f"{o['obs_bytes']} B"
        rows.append(f"| {size} | `{o['frame_hash']}` | {o['bare_step_us']:.1f} µs | {o['kept_step_us']:.1f} µs | "
                    f"{o['engine_frame_us']:.1f} µs | {o['engine_ratio']:.1f}× | {o['engine_kept_ratio']:.2f}× |")
    return rows


def test_the_hash_mode_table_in_the_docs_is_the_result_file():
    import json

    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "benchmarks" / "results" / "scale-hash-modes.json").read_text())
    assert {o["frame_hash"] for o in data["obs"]} == {"sampled", "bytes"}
    text = " ".join((root / "docs" / "performance.md").read_text().split())  # line breaks inside a sentence
    for row in _hash_mode_rows(data):
        assert row in text, row
    assert f"load {data['machine']['load_1min']:.1f} before, {data['machine_after']['load_1min']:.1f} after" in text
