"""Researchers' real envs in two real browsers: packages from the index, a compiled Pyodide package, and a local
env directory with a data file, each served from its own study folder (``tests/studies/``).

Each scenario plays one session through the real server with injected latency on both pages, and hides then
freezes player A's tab mid-episode. It first asserts that the faults happened (packets delayed, rollbacks, A away
and fast-forwarded on return), then that both downloads are identical (``compare``, tolerance zero) and valid,
and that the export's canonical metadata names the packages the page loaded with their sha256.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from players import Player, StudyServer, run_cli, wait_for

pytestmark = pytest.mark.browser

STUDIES = Path(__file__).resolve().parents[1] / "tests" / "studies"
FREEZE_S = 3.0
NET = "latency_ms=40&jitter_ms=10"  # each side delays what it sends: 80 ms RTT +- 20 ms
#: name -> (frames per episode, fps, packages the page must have loaded beyond the runtime's own)
CASES = {
    "overcooked_cogrid": (90, 20, {"cogrid", "pettingzoo"}),
    "scipy_field": (150, 30, {"scipy"}),
    "maze_dir": (150, 30, {"study-env-maze"}),
}


def study_copy(name: str, into: Path, max_steps: int, fps: int) -> Path:
    """The study folder copied with short episodes, test mode on (for the autopilot and the conditioner)."""
    folder = into / name
    shutil.copytree(STUDIES / name, folder)
    config = folder / "study.toml"
    text = config.read_text()
    text, n_steps = re.subn(r"max_steps = \d+", f"max_steps = {max_steps}", text)
    text, n_fps = re.subn(r"(?m)^fps = \d+", f"fps = {fps}\ninput_delay = 1\ntime_sync_threshold = 1", text)
    assert n_steps == 1 and n_fps == 1, "the study config no longer has max_steps / fps"
    config.write_text("test_mode = true\n" + text)
    return config


def canonical_metadata(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("metadata.json"))["canonical"]


@pytest.mark.parametrize("name", list(CASES))
def test_real_env_study_plays_identically_under_latency_and_a_frozen_tab(assets_dir, tmp_path, name):
    from playwright.sync_api import sync_playwright

    max_steps, fps, wanted = CASES[name]
    config = study_copy(name, tmp_path, max_steps, fps)
    frames = 2 * max_steps
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, \
            sync_playwright() as pw:
        a, b = players = [Player(pw, n, tmp_path / n) for n in ("a", "b")]
        evidence = tmp_path / "evidence"

        def fail(message: str) -> None:
            for p in players:
                p.save_evidence(evidence)
            shutil.copy(server.log_path, evidence / "server.log")
            pytest.fail(f"[{name}] {message}; consoles, status, screenshots and the server log in {evidence}")

        def wait(predicate, timeout: float, what: str):
            try:
                return wait_for(predicate, timeout, what)
            except TimeoutError as exc:
                fail(str(exc))

        try:
            a.open(f"{server.url}/?participant=A&autopilot=random&seed=1&{NET}&seed=11")
            b.open(f"{server.url}/?participant=B&autopilot=random&seed=2&{NET}&seed=12")
            wait(lambda: (a.status().get("frame") or 0) >= 20, 180, "player A to play 20 frames")
            other = a.context.new_page()  # a second tab: A's game tab is really hidden
            cdp = a.context.new_cdp_session(a.page)
            try:
                wait(lambda: a.status().get("away"), 15, "A's page to be away")
                time.sleep(1.0)
                cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
                time.sleep(FREEZE_S)
                cdp.send("Page.setWebLifecycleState", {"state": "active"})
            finally:
                a.page.bring_to_front()
                other.close()
                cdp.detach()

            def done():
                found = [p.bundles() for p in players]
                return [f[0] for f in found] if all(found) else None

            bundles = wait(done, 240, "both bundles")
            statuses = wait(lambda: (lambda s: s if all(str(x.get("download", "")).startswith("saved")
                                                         for x in s) else None)([p.status() for p in players]),
                            30, "both downloads saved")
            for s in statuses:
                if s.get("outcome") != "complete" or s.get("confirmed_frames") != frames or s.get("errors"):
                    fail(f"session not complete with {frames} confirmed frames: {s}")
            sa, sb = statuses
            if not (sa["conditioner"]["delayed"] > 0 and sb["conditioner"]["delayed"] > 0):
                fail(f"packets were not delayed: {sa['conditioner']} {sb['conditioner']}")
            if sa["rollbacks"] + sb["rollbacks"] == 0:
                fail("no rollback happened under 80 ms RTT")
            if not (sa["away_periods"] >= 1 and sa["fast_forward_frames"] > 0):
                fail(f"A was not away and fast-forwarded after the freeze: {sa}")
        finally:
            for p in players:
                p.close()

    compared = run_cli("compare", str(bundles[0]), str(bundles[1]))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    validated = run_cli("validate", str(bundles[0]), str(bundles[1]))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for bundle in bundles:
        loaded = {p["name"]: p for p in canonical_metadata(bundle)["packages"]}
        assert wanted <= set(loaded), f"{bundle.name} does not name {wanted - set(loaded)}: {sorted(loaded)}"
        assert {"pyodide-runtime", "numpy", "gymnasium"} <= set(loaded)
        for package in wanted:
            assert re.fullmatch(r"[0-9a-f]{64}", loaded[package]["sha256"]), loaded[package]
    print(f"{name}: rollbacks A {sa['rollbacks']}, B {sb['rollbacks']}; A fast-forwarded "
          f"{sa['fast_forward_frames']} frames; packages {sorted(wanted)}")
