"""The fault matrix: two real Chromium processes play the example study through the real server, one fault each.

Every scenario first asserts that its fault really happened (rollbacks, conditioner losses, away periods,
fast-forward frames, a closed tab, a reload), then that the two downloaded export bundles are identical to the
frame with the real ``pyodide-runtime compare`` (tolerance zero: exit 0) and pass ``validate``. Inputs come from
the page's seeded autopilot, or from real key presses in the human-AI scenario.

One study server and one Chromium per player serve the whole module; each test is a new session (room). The
human-AI scenario needs a one-seat study, so it starts a second server and uses player A's browser.

On failure, both consoles, status dumps, screenshots, the server log and the bundles are saved under the
directory the failure message names.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from players import Player, StudyServer, run_cli, wait_for

from pyodide_runtime.host.data import load

pytestmark = pytest.mark.browser

FPS, EPISODES, MAX_STEPS = 30, 2, 240  # 8 s episodes: long enough for a 5 s tab-away inside one of them
FRAMES = EPISODES * MAX_STEPS
AWAY_S = 5.5  # tab-away and freeze durations (at least 5 s)
#: Longest time the status may show a running session without a new frame under 20% loss (seconds): a generous
#: bound for a loaded machine, which only a session that stopped exceeds (the longest stall seen is printed).
MAX_STALL_S = 10.0
#: A closed or reloaded tab tells the server it leaves, and its partner's session ends: the deadline for that, far
#: beyond a loaded machine's; the end reason, not the time, shows it was the leave (seconds).
LEAVE_DEADLINE_S = 30.0
SESSION = {
    "players": 2, "fps": FPS, "episodes": EPISODES, "seed": 7,
    # One frame of input delay, and time sync keeping the two pages within one frame of each other: then a
    # 75 ms one-way delay (2.25 frames) makes every changed input arrive late on *both* sides. With the defaults
    # (delay 2, sync threshold 2) the page that happens to run up to 2 frames behind can receive every input in
    # time and never roll back, which would let the scenarios below pass without their fault on that side.
    "input_delay": 1, "time_sync_threshold": 1,
    # Each page then chooses its own input delay from the round trips it measures, starting at that 1 frame (the
    # first second, before enough acks came back, still rolls back on both sides): every fault below also runs
    # with the delay changing under it, and the exports must still be identical.
    "adaptive_delay": True, "min_input_delay": 1, "max_input_delay": 6,
    # Timeouts keep their defaults: disconnect_timeout_ms (5 s) is shorter than the freeze, so a frozen tab must
    # not take its own pause for its partner's silence; away_silence_timeout_ms (120 s) is far longer than the
    # partner-leaves scenarios take, so only the leave notice can end them in time.
}
STUDY = {
    "title": "Coin Chase",
    "instructions": "Collect the coins with the arrow keys.",
    "test_mode": True,
    "env_config": {"max_steps": MAX_STEPS},
    "session": SESSION,
}
BOT_AGENT = "player_1"
AI_STEPS = 150
AI_STUDY = {
    **STUDY,
    "env_config": {"max_steps": AI_STEPS, "target_score": 1000},  # the bot must not end the episode early
    "session": {"players": 1, "fps": FPS, "episodes": 1, "seed": 11, "input_delay": 2},
    "bots": {BOT_AGENT: "pyodide_runtime.bots:CoinChasePolicy"},
    "completion_url": "https://app.prolific.com/submissions/complete?cc=C0MPL3T3",
}


@pytest.fixture(scope="module")
def matrix(assets_dir, tmp_path_factory):
    """The server and both players' browsers, shared by the module (each test is a new session)."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("fault_matrix")
    with StudyServer(root / "server", STUDY, assets=assets_dir) as server, sync_playwright() as pw:
        players = [Player(pw, name, root / name) for name in ("a", "b")]
        try:
            yield server, players, root, assets_dir
        finally:
            for p in players:
                p.close()


# -- one session ----------------------------------------------------------------------------------------------
class Run:
    """One session: pages opened with their URL parameters, downloads to fresh directories, evidence on failure."""

    def __init__(self, name: str, server: StudyServer, players: list[Player], root: Path) -> None:
        self.name, self.server, self.players = name, server, players
        self.evidence = root / f"evidence-{name}"
        for p in players:
            p.set_download_dir(p.workdir / f"downloads-{name}")
        self.stalls = StallMeter(len(players))

    def open(self, *queries: str) -> None:
        for p, q in zip(self.players, queries):
            p.console.clear()
            p.open(f"{self.server.url}/?{q}")

    def statuses(self) -> list[dict[str, Any]]:
        statuses = [p.status() for p in self.players]
        self.stalls.observe(statuses)
        return statuses

    def wait(self, predicate, timeout: float, what: str):
        """``wait_for`` that fails the run (with evidence) on time-out."""
        try:
            return wait_for(predicate, timeout, what)
        except TimeoutError as exc:
            self.fail(str(exc))

    def wait_frame(self, index: int, frame: int, timeout: float = 120) -> dict[str, Any]:
        return self.wait(lambda: _at_least(self.statuses()[index], frame), timeout,
                         f"player {self.players[index].name} to reach frame {frame}")

    def bundles(self, timeout: float = 120.0) -> list[Path]:
        def ready():
            self.statuses()
            found = [p.bundles() for p in self.players]
            return [f[0] for f in found] if all(found) else None

        return self.wait(ready, timeout, "both bundles")

    def final_statuses(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        def settled():
            statuses = self.statuses()
            return statuses if all(_settled(s) for s in statuses) else None

        return self.wait(settled, timeout, "the final status")

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)

    def fail(self, message: str) -> None:
        for p in self.players:
            p.save_evidence(self.evidence)
        (self.evidence / "server.log").write_text(self.server.log_path.read_text())
        pytest.fail(f"[{self.name}] {message}\nconsoles, status, screenshots, server log and bundles saved in "
                    f"{self.evidence}")


class StallMeter:
    """The longest time each player's status showed a running session without a new frame (seconds)."""

    def __init__(self, n: int) -> None:
        self.last: list[tuple[int, float] | None] = [None] * n
        self.longest = [0.0] * n

    def observe(self, statuses: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for i, s in enumerate(statuses):
            if s.get("phase") != "running" or "frame" not in s:
                self.last[i] = None
                continue
            last = self.last[i]
            if last is None or s["frame"] != last[0]:
                self.last[i] = (s["frame"], now)
            else:
                self.longest[i] = max(self.longest[i], now - last[1])


def _at_least(status: dict[str, Any], frame: int) -> dict[str, Any] | None:
    return status if (status.get("frame") or 0) >= frame else None


def _settled(status: dict[str, Any]) -> bool:
    upload = status.get("upload") or {}
    return str(status.get("download", "")).startswith("saved") and upload.get("state") != "uploading"


def autopilot(participant: str, seed: int, extra: str = "") -> str:
    query = f"participant={participant}&autopilot=random&seed={seed}"
    return f"{query}&{extra}" if extra else query


def cli(run: Run, *args: str) -> None:
    """Run a CLI command that must exit 0; fail the run with its output otherwise."""
    done = run_cli(*args)
    run.check(done.returncode == 0, f"{' '.join(args[:1])} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def finish(run: Run, frames: int = FRAMES) -> tuple[list[Path], list[dict[str, Any]]]:
    """Wait for both bundles and final statuses; both complete, every frame confirmed, compare and validate pass."""
    bundles = run.bundles()
    statuses = run.final_statuses()
    for s in statuses:
        run.check(s.get("phase") == "ended" and s.get("outcome") == "complete", f"session not complete: {s}")
        run.check(not s.get("errors"), f"page errors: {s.get('errors')}")
        run.check(s.get("confirmed_frames") == frames, f"confirmed frames: {s.get('confirmed_frames')}")
        run.check(s.get("desyncs") == 0, f"state hashes disagreed: {s.get('desyncs')}")
    cli(run, "compare", str(bundles[0]), str(bundles[1]))
    cli(run, "validate", str(bundles[0]), str(bundles[1]))
    for bundle in bundles:  # the rows are what the env, config and seeds give for the confirmed inputs
        cli(run, "verify", str(bundle))
    return bundles, statuses


def local_metadata(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("metadata.json"))["participant_local"]


def delay_changes(bundle: Path) -> list[dict[str, Any]]:
    """The input delay changes this side recorded (``diagnostics/network.json``, ``stats.input_delays``)."""
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("diagnostics/network.json"))["stats"]["input_delays"]


def away_frames(bundle: Path, seat: int) -> list[int]:
    """Global frames at which ``seat`` played its away default, from the canonical frames.csv."""
    rows = load(bundle, backend="python").frames
    return sorted({r["global_frame"] for r in rows if r["seat"] == seat and r["away"]})


def hide(player: Player):
    """Open another tab in the player's window: its game tab becomes a real background tab. Returns the tab."""
    return player.context.new_page()


def stay_hidden(run: Run, index: int, hidden_at: float, seconds: float = AWAY_S) -> None:
    """Wait until the page counts as away, then until it has been hidden for ``seconds`` since ``hidden_at``."""
    run.wait(lambda: run.statuses()[index].get("away"), 10, f"player {run.players[index].name}'s page to be away")
    time.sleep(max(0.0, seconds - (time.monotonic() - hidden_at)))


def show(player: Player, other) -> None:
    player.page.bring_to_front()
    other.close()


def replace_page(player: Player) -> None:
    """Give the player a fresh tab (after its game tab was closed), with the console captured again."""
    page = player.context.new_page()
    page.on("console", lambda m: player.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: player.console.append(f"pageerror: {e}"))
    player.page = page


# -- scenarios ------------------------------------------------------------------------------------------------
def test_baseline_two_episodes_are_identical(matrix):
    server, players, root, _ = matrix
    run = Run("baseline", server, players, root)
    run.open(autopilot("A", 1), autopilot("B", 2))
    bundles, (a, b) = finish(run)
    for s in (a, b):
        run.check(s["transport"] == "p2p" and s["transport_stats"]["sent_p2p"] > 0
                  and s["transport_stats"]["sent_relay"] < 50, f"bytes did not go over WebRTC: {s['transport_stats']}")
        run.check(s["episodes_done"] == EPISODES and s["events_seen"]["episode_ended"] == EPISODES,
                  f"episodes ended: {s['episodes_done']}, page events {s['events_seen']}")
    run.check("_A_seat" in bundles[0].name and "_B_seat" in bundles[1].name, f"bundle names {bundles}")
    uploaded = {p.stem.rsplit("-", 1)[1] for p in server.data_dir.rglob("final-*.zip")}
    downloaded = {s["bundle_sha256"][:16] for s in (a, b)}
    run.check(downloaded <= uploaded, f"uploads {uploaded} do not include the downloaded bundles {downloaded}")


def test_latency_150ms_rtt_with_jitter_rolls_back_on_both_sides(matrix):
    server, players, root, _ = matrix
    run = Run("latency", server, players, root)
    net = "latency_ms=75&jitter_ms=15"  # each side delays its outgoing packets: 150 ms RTT, +-30 ms
    run.open(autopilot("A", 3, net + "&seed=31"), autopilot("B", 4, net + "&seed=32"))
    bundles, (a, b) = finish(run)
    for s in (a, b):
        run.check(s["conditions"]["latency_ms"] == 75 and s["conditions"]["jitter_ms"] == 15, f"{s['conditions']}")
        run.check(s["conditioner"]["delayed"] > FRAMES // 2, f"packets were not delayed: {s['conditioner']}")
        run.check(s["rollbacks"] > 0 and s["resimulated_frames"] > 0, f"no rollback at 150 ms RTT: {s}")
    run.check(local_metadata(bundles[0])["extra"]["page"]["conditioner"]["latency_ms"] == 75,
              "the conditions are recorded in the export")
    # 150 ms round trips need more than the starting 1 frame of delay: each side raised its own, and says when
    for bundle in bundles:
        changes = delay_changes(bundle)
        run.check(bool(changes) and max(c["delay"] for c in changes) >= 3
                  and all(c["rtt_ms"] is not None and c["rtt_ms"] >= 100 for c in changes if c["delay"] >= 3),
                  f"{bundle.name}: the input delay did not follow the 150 ms round trip: {changes}")
        stats = json.loads(zipfile.ZipFile(bundle).read("diagnostics/network.json"))["stats"]
        run.check(stats["input_delay"] == changes[-1]["delay"]
                  and stats["input_delay_changes"] == len(changes), f"{bundle.name}: delay stats {stats}")


def test_loss_reordering_and_duplication_roll_back_without_long_stalls(matrix):
    server, players, root, _ = matrix
    run = Run("loss", server, players, root)
    net = "latency_ms=40&jitter_ms=10&loss=0.2&reorder=0.1&reorder_ms=50&duplicate=0.1"
    run.open(autopilot("A", 5, net + "&seed=51"), autopilot("B", 6, net + "&seed=52"))
    _, (a, b) = finish(run)
    for s in (a, b):
        c = s["conditioner"]
        run.check(c["lost"] > 0 and c["duplicated"] > 0 and c["reordered"] > 0, f"conditioner counted {c}")
        run.check(c["lost"] > 0.1 * c["sent"], f"far less than 20% lost: {c}")
        run.check(s["rollbacks"] > 0, f"no rollback under loss: {s}")
        run.check(s["rejected"] > 0, f"duplicated and reordered packets were not rejected: {s['rejected']}")
    longest = max(run.stalls.longest)
    print(f"loss: longest stall seen in the status {longest:.2f} s; conditioner A {a['conditioner']}, "
          f"B {b['conditioner']}; rollbacks {a['rollbacks']}/{b['rollbacks']}")
    run.check(longest < MAX_STALL_S, f"a status showed no progress for {longest:.2f} s (bound {MAX_STALL_S} s)")


def test_tab_hidden_for_five_seconds_mid_episode(matrix):
    server, players, root, _ = matrix
    run = Run("tab-away", server, players, root)
    a, _ = players
    run.open(autopilot("A", 7), autopilot("B", 8))
    run.wait_frame(0, 15)
    hidden_at, other = time.monotonic(), hide(a)
    try:
        stay_hidden(run, 0, hidden_at)
    finally:
        show(a, other)
    bundles, (sa, sb) = finish(run)
    run.check(sa["away_periods"] >= 1 and sa["away_changes"] >= 2, f"A was never away and back: {sa}")
    run.check(sb["events_seen"]["peer_away"] >= 1 and sb["events_seen"]["peer_back"] >= 1,
              f"B never saw A away and back: {sb['events_seen']}")
    away = away_frames(bundles[0], seat=0)
    run.check(len(away) >= 3 * FPS, f"only {len(away)} frames flagged away for a {AWAY_S} s absence")
    # A hidden (not frozen) tab keeps ticking in its worker at full pace and executes its away inputs as they
    # fall due, so it comes back level with wall time: its away frames were played, not skipped on return
    # (fast-forward after a frozen tab is the next scenario).
    run.check(sa["fast_forward_frames"] < len(away) / 2,
              f"A fast-forwarded {sa['fast_forward_frames']} of {len(away)} away frames: its worker stopped")
    run.check(away[-1] < MAX_STEPS, f"the absence was meant to lie inside episode 1: frames {away[0]}..{away[-1]}")


def test_hidden_tab_frozen_for_five_seconds_fast_forwards(matrix):
    server, players, root, _ = matrix
    run = Run("freeze", server, players, root)
    a, _ = players
    run.open(autopilot("A", 9), autopilot("B", 10))
    run.wait_frame(0, 30)
    other = hide(a)  # hidden first: the away lease and the away silence timeout apply only to a hidden tab
    cdp = a.context.new_cdp_session(a.page)
    try:
        stay_hidden(run, 0, time.monotonic(), seconds=1.0)
        cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
        time.sleep(AWAY_S)
        cdp.send("Page.setWebLifecycleState", {"state": "active"})
    finally:
        show(a, other)
        cdp.detach()
    _, (sa, sb) = finish(run)
    run.check(sa["away_periods"] >= 1, f"A was never away: {sa}")
    # It catches up only to where B waited for it: the time B spent stalled is not skipped.
    run.check(sa["fast_forward_frames"] > 0 and sa["events_seen"]["fast_forward"] > 0,
              f"A did not fast-forward after the freeze: {sa}")
    run.check(sb["events_seen"]["peer_away"] >= 1, f"B never saw A away: {sb['events_seen']}")
    run.check(sb["stalls"] >= 1, f"B never waited for the frozen partner: {sb}")
    run.check(sa["transport_stats"]["reconnects"] >= 1, "A's socket, closed on resume, was not reconnected")
    run.check(sa["transport"] == "p2p", "the DataChannel did not survive the freeze")
    run.check(sb["left_notices"]["applied"] == 0, "a frozen tab must not count as leaving the study page")


def test_tab_away_across_an_episode_boundary(matrix):
    server, players, root, _ = matrix
    run = Run("away-boundary", server, players, root)
    a, _ = players
    run.open(autopilot("A", 11), autopilot("B", 12))
    run.wait_frame(0, MAX_STEPS - 2 * FPS)
    hidden_at, other = time.monotonic(), hide(a)
    try:
        stay_hidden(run, 0, hidden_at)
    finally:
        show(a, other)
    bundles, (sa, sb) = finish(run)
    run.check(sa["away_periods"] >= 1 and sa["episodes_done"] == EPISODES, f"A's session: {sa}")
    away = away_frames(bundles[0], seat=0)
    run.check(bool(away) and away[0] < MAX_STEPS <= away[-1],
              f"A's away frames {away[:1]}..{away[-1:]} do not span the episode boundary at {MAX_STEPS}")
    run.check(sb["events_seen"]["peer_away"] >= 1 and sb["events_seen"]["peer_back"] >= 1,
              f"B never saw A away and back: {sb['events_seen']}")


def ended_within(run: Run, index: int, since: float) -> float:
    """Seconds from ``since`` until player ``index``'s session ended; fails beyond ``LEAVE_DEADLINE_S``."""
    run.wait(lambda: run.players[index].status().get("phase") == "ended", LEAVE_DEADLINE_S,
             f"player {run.players[index].name}'s session to end")
    return time.monotonic() - since


def test_partner_closes_the_tab_and_the_other_ends_at_once_with_a_flagged_partial_bundle(matrix):
    server, players, root, _ = matrix
    run = Run("partner-left", server, players, root)
    a, b = players
    # B's packets reach A 400 ms late, later than A's prediction window (8 frames, 267 ms at 30 fps), so A is
    # always predicting B's last frames, however far a loaded machine lets the two pages drift: those form A's
    # tail. The leave notice goes through the server, undelayed, and the packets still held back in B's page die
    # with it.
    run.open(autopilot("A", 13), autopilot("B", 14, "latency_ms=400&seed=141"))
    run.wait(lambda: (a.status().get("confirmed_frames") or 0) >= 90, 90, "A to confirm 90 frames")
    spare = b.context.new_page()  # closing the only tab could end the browser
    closed_at = time.monotonic()
    b.page.close()
    took = ended_within(run, 0, closed_at)
    replace_page(b)
    spare.close()
    kept = run.wait(lambda: a.bundles(), 60, "A's partial bundle")[0]
    sa = run.wait(lambda: (s := a.status()) and _settled(s) and s, 20, "A's final status")
    print(f"partner-left: A's session ended {took:.2f} s after B's tab closed; {sa['end_reason']}")
    run.check(sa["outcome"] == "partial" and sa["end_reason"] == "seat 1 left the study page", f"A's outcome: {sa}")
    run.check(sa["left_notices"] == {"applied": 1, "ignored": 0}, f"A's leave notices: {sa['left_notices']}")
    cli(run, "validate", str(kept))
    cli(run, "verify", str(kept))  # a partial bundle: verified up to its last confirmed frame
    bundle = load(kept, backend="python")
    canonical = bundle.metadata["canonical"]
    run.check(canonical["status"] == "partial", f"the bundle is not flagged partial: {canonical['status']}")
    confirmed = sa["confirmed_frames"]
    run.check(confirmed >= 90, f"only {confirmed} frames confirmed before B left")
    frames = {r["global_frame"] for r in bundle.frames}
    run.check(frames == set(range(confirmed)), f"frames.csv holds {len(frames)} frames, not 0..{confirmed - 1}")
    tail = bundle.tail or []
    run.check(bool(tail) and all(r["confirmed"] is False for r in tail), "no flagged unconfirmed tail")
    run.check(min(r["global_frame"] for r in tail) == confirmed, "the tail does not start after the last confirmed frame")


def test_reload_mid_session_recovers_the_checkpoint_and_the_partner_ends_partial(matrix):
    server, players, root, _ = matrix
    run = Run("reload", server, players, root)
    a, b = players
    run.open(autopilot("A", 15), autopilot("B", 16))
    run.wait(lambda: (run.statuses()[0].get("episodes_done") or 0) >= 1, 90, "A's first episode to end")
    reloaded_at = time.monotonic()
    a.page.reload()
    took = ended_within(run, 1, reloaded_at)  # the reloading page left its seat: B ends at once
    run.wait(lambda: a.status().get("phase") == "interrupted", 30, "A's page to show the interruption")
    a.page.click("#recover")
    recovered = run.wait(lambda: a.bundles(), 60, "A's recovered bundle")[0]
    kept = run.wait(lambda: b.bundles(), 60, "B's partial bundle")[0]
    sa, sb = a.status(), run.wait(lambda: (s := b.status()) and _settled(s) and s, 20, "B's final status")
    run.check(recovered.name.endswith("-recovered.zip"), f"recovered file name {recovered.name}")
    run.check(sa["phase"] == "interrupted" and len(sa["recovered"]) == 1, f"A's page: {sa}")
    meta = load(recovered, backend="python").metadata
    run.check(meta["participant_local"].get("recovered_from_checkpoint") is True, "not flagged as recovered")
    run.check(meta["canonical"]["status"] == "partial", f"recovered bundle status {meta['canonical']['status']}")
    print(f"reload: B's session ended {took:.2f} s after A's reload; {sb['end_reason']}")
    run.check(sb["outcome"] == "partial" and sb["end_reason"] == "seat 0 left the study page", f"B's outcome: {sb}")
    run.check(sb["confirmed_frames"] >= MAX_STEPS, f"B's session: {sb}")
    cli(run, "validate", str(recovered), str(kept))
    cli(run, "compare", "--prefix", str(recovered), str(kept))
    cli(run, "verify", str(recovered))  # recovered from the page's checkpoints
    # the reloaded tab kept its seat token, so the recovered export reached the server as well
    stored = run.wait(lambda: list(server.data_dir.rglob("recovered-*.zip")), 30, "the recovered upload")
    run.check(any(p.read_bytes() == recovered.read_bytes() for p in stored), f"recovered upload {stored}")


def test_forced_relay_with_latency(matrix):
    server, players, root, _ = matrix
    run = Run("relay", server, players, root)
    net = "relay=1&latency_ms=60&jitter_ms=10"
    run.open(autopilot("A", 17, net + "&seed=171"), autopilot("B", 18, net + "&seed=172"))
    _, (a, b) = finish(run)
    for s in (a, b):
        run.check(s["transport"] == "relay" and s["relay_forced"], f"transport {s['transport']}")
        run.check(s["transport_stats"]["sent_p2p"] == 0 and s["transport_stats"]["sent_relay"] > 100,
                  f"not relayed: {s['transport_stats']}")
        run.check(s["conditioner"]["delayed"] > 0, f"no latency injected: {s['conditioner']}")
    run.check(a["rollbacks"] + b["rollbacks"] > 0, "no rollback with relay and latency")


def test_webrtc_not_open_in_time_falls_back_to_the_relay(matrix):
    server, players, root, _ = matrix
    run = Run("fallback", server, players, root)
    run.open(autopilot("A", 19, "p2p_timeout_ms=0"), autopilot("B", 20))
    _, (a, b) = finish(run)
    run.check(a["transport"] == "relay" and not a["relay_forced"], f"A: {a['transport']}, forced {a['relay_forced']}")
    run.check(a["transport_stats"]["sent_p2p"] == 0 and a["transport_stats"]["sent_relay"] > 100,
              f"A did not fall back to the relay: {a['transport_stats']}")
    run.check(b["transport_stats"]["received_relay"] > 100, f"B did not receive A's relayed packets: {b}")


def test_human_with_keyboard_against_a_python_bot(matrix):
    _, players, root, assets = matrix
    a = players[0]
    with StudyServer(root / "ai-server", AI_STUDY, assets=assets) as server:
        run = Run("human-ai", server, [a], root)
        run.open("participant=H")
        run.wait_frame(0, 1, timeout=90)
        a.page.bring_to_front()
        a.page.click("#stage")
        keys = ["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"]
        pressed = 0
        while (a.status().get("frame") or 0) < AI_STEPS - 20 and pressed < 200:
            key = keys[pressed % len(keys)]
            a.page.keyboard.down(key)
            time.sleep(0.25)
            a.page.keyboard.up(key)
            pressed += 1
        bundle = run.wait(lambda: a.bundles(), 60, "the bundle")[0]
        (s,) = run.final_statuses()
        run.check(s["outcome"] == "complete" and s["players"] == 1, f"session: {s}")
        run.check(s["confirmed_frames"] == AI_STEPS and not s["errors"], f"session: {s}")
        run.check(s["completion_link"] == AI_STUDY["completion_url"], f"completion link {s['completion_link']}")
        cli(run, "validate", str(bundle))
        cli(run, "verify", str(bundle))  # the Python bot's actions are reproduced too
        data = load(bundle, backend="python")
        run.check(data.complete, f"export status {data.metadata['canonical']['status']}")
        human = [r for r in data.frames if r["seat"] == 0]
        bot = [r for r in data.frames if r["agent"] == BOT_AGENT]
        run.check(len(human) == AI_STEPS and len(bot) == AI_STEPS, f"rows: human {len(human)}, bot {len(bot)}")
        names = s["action_names"]
        held = {names[r["input"]] for r in human}
        run.check({"right", "down", "left", "up"} <= held, f"the pressed keys did not reach the data: {held}")
        run.check(all(r["seat"] is None and r["action"] is not None for r in bot), "bot rows")
        run.check(len({r["action"] for r in bot}) > 1, "the bot never changed its action")
