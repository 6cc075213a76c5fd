"""The self-hosted Pyodide, our wheel and gymnasium load in real Chromium and step an env."""

from __future__ import annotations

import pytest

from e2e_support import REPO, StaticServer

pytestmark = pytest.mark.browser


def test_page_loads_runtime_and_steps_cartpole_1000_times(browser, assets_dir):
    mounts = {"/assets/": assets_dir, "/js_bridge/": REPO / "js_bridge", "/": REPO / "static"}
    console: list[str] = []
    with StaticServer(mounts) as server:
        page = browser.new_page()
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        failed: list[str] = []
        page.on("requestfailed", lambda req: failed.append(req.url))
        page.goto(f"{server.url}/check.html")
        result = page.evaluate("window.browserCheck", None)
        page.close()

    print("browser smoke result:", {k: result[k] for k in ("steps", "episodes", "total_reward", "timings", "facts")})
    assert not failed, f"requests failed: {failed}"
    assert result["steps"] == 1000
    assert result["episodes"] >= 1, "alternating actions topple CartPole well within 1000 steps"
    assert result["total_reward"] == 1000.0  # CartPole pays 1 per step, terminal steps included
    assert len(result["last_obs"]) == 4
    assert result["gymnasium"] == "1.4.0" or result["gymnasium"].startswith("1.")
    assert result["stages"] == ["pyodide", "packages", "prepare", "ready"]
    assert result["facts"]["platform"] == "emscripten"
    assert result["facts"]["pyodide"] == "0.27.7"
    assert result["facts"]["hash_seed_fixed"] is True
    assert result["facts"]["multiprocessing_stub"] is True


def test_set_order_is_identical_across_two_tabs(browser, assets_dir):
    """PYTHONHASHSEED=0 gives every participant's tab the same set iteration order."""
    mounts = {"/assets/": assets_dir, "/js_bridge/": REPO / "js_bridge", "/": REPO / "static"}
    with StaticServer(mounts) as server:
        orders = []
        for _ in range(2):
            ctx = browser.new_context()
            page = ctx.new_page()
            page.goto(f"{server.url}/check.html")
            orders.append(page.evaluate("window.browserCheck")["set_order"])
            ctx.close()
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == ["apple", "banana", "cherry", "date", "elderberry"]
