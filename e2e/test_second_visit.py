"""A returning participant's browser takes the runtime and its bytecode from its caches: `bench browser`'s
second-visit run."""

from __future__ import annotations

import json

import pytest

from players import run_cli

pytestmark = pytest.mark.browser


def test_a_second_visit_loads_the_runtime_from_the_http_cache_and_plays(assets_dir, tmp_path):
    out = tmp_path / "second-visit.json"
    done = run_cli("bench", "browser", "--assets", str(assets_dir), "--fps", "", "--no-floor", "--away", "",
                   "--loss", "0", "--memory-seconds", "0", "--no-preload", "--workdir", str(tmp_path / "work"),
                   "--json", str(out), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    assert data["play"] == [] and "floor" not in data, "only the second-visit run was asked for"
    run = data["second_visit"]
    for visit in ("first_visit", "second_visit"):
        pages = run[visit]
        assert len(pages) == 2
        for page in pages:
            # Both pages loaded the runtime and the env, built the game and played: a first frame came.
            t = page["timings_ms"]
            assert t["pyodide_ms"] > 0 and t["env_ms"] > 0 and t["game_ms"] > 0
            assert 0 < page["open_to_loaded_ms"] <= page["open_to_first_frame_ms"]
            assert page["assets"]["files"] >= 5, "the worker fetched Pyodide, its stdlib, the lock and the wheels"
    for page in run["first_visit"]:
        assets = page["assets"]
        assert assets["transferred_bytes"] > 1_000_000 and assets["from_cache"] < assets["files"], \
            "an empty profile fetches the runtime from the server"
    for page in run["first_visit"]:
        assert page["timings_ms"]["bytecode"]["restored"] == 0, "an empty profile has no stored bytecode"
    for page in run["second_visit"]:
        # The first visit stored the bytecode of the packages it imported; the second wrote it back before importing.
        assert page["timings_ms"]["bytecode"]["restored"] > 50
        assets = page["assets"]
        assert assets["from_cache"] == assets["files"] and assets["transferred_bytes"] == 0, \
            f"every runtime file must come from the HTTP cache on a second visit: {assets}"
    # V8 kept the compiled Pyodide wasm (streamed from a cacheable response) in each profile's code cache.
    assert all(size > 0 for size in run["wasm_code_cache_bytes"])
