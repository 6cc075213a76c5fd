"""Two participants, each in a Chromium process of their own, play the example study through the real server.

Both run on autopilot. Each test waits for both export bundles to arrive as downloaded files, then runs the real
``compare`` and ``validate`` commands on them. Covered: WebRTC with injected latency (rollbacks happen), the
forced relay, the fallback to the relay when WebRTC does not open in time, a tab that is hidden and frozen
mid-game (away inputs, fast-forward, socket reconnect), and a reload mid-game (checkpoint recovery).

On failure, consoles, status dumps, screenshots and bundles are saved under the directory the message names.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from players import Player, StudyServer, run_cli, wait_for

pytestmark = pytest.mark.browser

EPISODES, MAX_STEPS = 2, 150
STUDY = {
    "title": "Coin Chase",
    "instructions": "Collect the coins with the arrow keys.",
    "test_mode": True,
    "env_config": {"max_steps": MAX_STEPS},
    "session": {"players": 2, "fps": 30, "episodes": EPISODES, "seed": 7, "input_delay": 2},
}


@pytest.fixture(scope="module")
def study(assets_dir, tmp_path_factory):
    """The server and both players' browsers, shared by the tests of this file (each test is a new session)."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("two_players")
    with StudyServer(root / "server", STUDY, assets=assets_dir) as server, sync_playwright() as pw:
        players = [Player(pw, name, root / name) for name in ("a", "b")]
        try:
            yield server, players, root
        finally:
            for p in players:
                p.close()


class Run:
    """One session: both pages opened with their URL parameters, downloads going to fresh directories."""

    def __init__(self, name: str, server: StudyServer, players: list[Player], root: Path) -> None:
        self.name, self.server, self.players = name, server, players
        self.evidence = root / f"evidence-{name}"
        self.dirs = []
        for p in players:
            d = p.workdir / f"downloads-{name}"
            p.set_download_dir(d)
            self.dirs.append(d)

    def open(self, *queries: str) -> None:
        for p, q in zip(self.players, queries):
            p.console.clear()
            p.open(f"{self.server.url}/?{q}")

    def bundles(self, timeout: float = 120.0) -> list[Path]:
        def ready():
            found = [p.bundles() for p in self.players]
            return [f[0] for f in found] if all(found) else None

        return wait_for(ready, timeout, f"both bundles in {self.dirs}")

    def statuses(self) -> list[dict]:
        return [p.status() for p in self.players]

    def final_statuses(self) -> list[dict] | None:
        statuses = self.statuses()
        return statuses if all(_settled(s) for s in statuses) else None

    def fail(self, message: str) -> None:
        for p in self.players:
            p.save_evidence(self.evidence)
        (self.evidence / "server.log").write_text(self.server.log_path.read_text())
        pytest.fail(f"{message}\nconsoles, status, screenshots and bundles saved in {self.evidence}")


def check(run: Run, condition: bool, message: str) -> None:
    if not condition:
        run.fail(message)


def _settled(status: dict) -> bool:
    upload = status.get("upload") or {}
    return str(status.get("download", "")).startswith("saved") and upload.get("state") != "uploading"


def finish(run: Run) -> tuple[list[Path], list[dict]]:
    """Wait for both bundles and the final status, then check compare and validate with the real CLI."""
    try:
        bundles = run.bundles()
        statuses = wait_for(run.final_statuses, 20, "the final status")
    except TimeoutError as exc:
        run.fail(str(exc))
    for s in statuses:
        check(run, s.get("phase") == "ended" and s.get("outcome") == "complete", f"session not complete: {s}")
        check(run, not s.get("errors"), f"page errors: {s.get('errors')}")
        check(run, s.get("confirmed_frames") == EPISODES * MAX_STEPS, f"confirmed frames: {s.get('confirmed_frames')}")
    compared = run_cli("compare", str(bundles[0]), str(bundles[1]))
    check(run, compared.returncode == 0, f"compare exited {compared.returncode}:\n{compared.stdout}{compared.stderr}")
    validated = run_cli("validate", str(bundles[0]), str(bundles[1]))
    check(run, validated.returncode == 0, f"validate exited {validated.returncode}:\n{validated.stdout}")
    return bundles, statuses


def local_metadata(bundle: Path) -> dict:
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("metadata.json"))["participant_local"]


def test_webrtc_with_latency_rolls_back_and_both_exports_are_identical(study):
    server, players, root = study
    run = Run("p2p", server, players, root)
    run.open("participant=A&autopilot=random&seed=1&latency_ms=70&jitter_ms=10",
             "participant=B&autopilot=random&seed=2")
    bundles, (a, b) = finish(run)
    check(run, a["transport"] == "p2p" and b["transport"] == "p2p", f"transports {a['transport']}, {b['transport']}")
    check(run, a["transport_stats"]["sent_p2p"] > 0 and b["transport_stats"]["sent_relay"] < 50,
          f"bytes did not go over the DataChannel: {a['transport_stats']} {b['transport_stats']}")
    check(run, a["rollbacks"] + b["rollbacks"] > 0, "70 ms of injected latency caused no rollback")
    check(run, a["conditions"]["latency_ms"] == 70 and a["conditioner"]["delayed"] > 0,
          f"the conditioner did not delay player A's packets: {a['conditions']} {a['conditioner']}")
    check(run, b["conditions"] is None, "player B had no conditions")
    meta = local_metadata(bundles[0])
    check(run, meta["extra"]["page"]["conditioner"]["latency_ms"] == 70, "the conditions are in A's metadata")
    check(run, "_A_seat" in bundles[0].name and "_B_seat" in bundles[1].name, f"bundle names {bundles}")
    uploaded = {p.name.split("-")[1][:16] for p in server.data_dir.rglob("*.zip")}
    downloaded = {s["bundle_sha256"][:16] for s in (a, b)}
    check(run, downloaded <= uploaded, f"uploads {uploaded} do not include the downloaded bundles {downloaded}")


def test_forced_relay_carries_the_game_and_exports_are_identical(study):
    server, players, root = study
    run = Run("relay", server, players, root)
    run.open("participant=A&autopilot=random&seed=3&relay=1", "participant=B&autopilot=random&seed=4&relay=1")
    _, (a, b) = finish(run)
    for s in (a, b):
        check(run, s["transport"] == "relay" and s["relay_forced"], f"transport {s['transport']}")
        check(run, s["transport_stats"]["sent_p2p"] == 0 and s["transport_stats"]["sent_relay"] > 100,
              f"not relayed: {s['transport_stats']}")


def test_webrtc_not_open_in_time_falls_back_to_the_relay(study):
    server, players, root = study
    run = Run("fallback", server, players, root)
    run.open("participant=A&autopilot=random&seed=9&p2p_timeout_ms=0", "participant=B&autopilot=random&seed=10")
    _, (a, b) = finish(run)
    check(run, a["transport"] == "relay" and not a["relay_forced"], f"A: {a['transport']}, forced {a['relay_forced']}")
    check(run, a["transport_stats"]["sent_p2p"] == 0 and a["transport_stats"]["sent_relay"] > 100,
          f"A did not fall back to the relay: {a['transport_stats']}")
    check(run, b["transport_stats"]["received_relay"] > 100, f"B did not receive A's relayed packets: {b}")


def test_hidden_then_frozen_tab_fast_forwards_and_exports_stay_identical(study):
    server, players, root = study
    run = Run("away", server, players, root)
    a, b = players
    run.open("participant=A&autopilot=random&seed=5", "participant=B&autopilot=random&seed=6")
    try:
        wait_for(lambda: (b.status().get("frame") or 0) >= 45, 90, "player B playing")
    except TimeoutError as exc:
        run.fail(str(exc))
    other = b.context.new_page()  # B's game tab is now a background tab: hidden, rAF stopped
    cdp = b.context.new_cdp_session(b.page)
    try:
        wait_for(lambda: b.status().get("away"), 10, "player B's page to count as away")
        time.sleep(1.0)
        cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
        time.sleep(3.0)
        cdp.send("Page.setWebLifecycleState", {"state": "active"})
    finally:
        b.page.bring_to_front()
        other.close()
    _, (sa, sb) = finish(run)
    check(run, sb["away_periods"] >= 1, f"B was never away: {sb}")
    check(run, sb["fast_forward_frames"] > 0, f"B did not fast-forward after the freeze: {sb}")
    check(run, sa["events_seen"]["peer_away"] >= 1, f"A never saw its partner away: {sa['events_seen']}")
    check(run, sb["transport_stats"]["reconnects"] >= 1, "B's socket, closed on resume, was not reconnected")
    check(run, sb["transport"] == "p2p", "the DataChannel survived the freeze")


def test_reload_mid_session_offers_the_checkpointed_data(study):
    server, players, root = study
    run = Run("reload", server, players, root)
    a, b = players
    run.open("participant=A&autopilot=random&seed=7", "participant=B&autopilot=random&seed=8")
    try:
        wait_for(lambda: (b.status().get("episodes_done") or 0) >= 1, 90, "B's first episode to end")
        b.page.reload()
        wait_for(lambda: b.status().get("phase") == "interrupted", 20, "B's page to see the interruption")
        b.page.click("#recover")
        recovered = wait_for(lambda: b.bundles(), 60, "the recovered bundle")[0]
        kept = wait_for(lambda: a.bundles(), 60, "A's partial bundle")[0]
    except TimeoutError as exc:
        run.fail(str(exc))
    check(run, recovered.name.endswith("-recovered.zip"), f"recovered file name {recovered.name}")
    check(run, local_metadata(recovered).get("recovered_from_checkpoint") is True, "not flagged as recovered")
    validated = run_cli("validate", str(recovered), str(kept))
    check(run, validated.returncode == 0, f"validate exited {validated.returncode}:\n{validated.stdout}")
    compared = run_cli("compare", "--prefix", str(recovered), str(kept))
    check(run, compared.returncode == 0, f"compare --prefix exited {compared.returncode}:\n{compared.stdout}")
    sa = a.status()
    check(run, sa["outcome"] == "partial" and sa["confirmed_frames"] >= MAX_STEPS, f"A's session: {sa}")
