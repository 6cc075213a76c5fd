"""A complete online study in real Chromium: scenes, the waiting room, interim copies on the server.

Each test writes a study folder (TOML config, an image) and plays it through the real server with automated
participants (``autopilot=random`` walks every scene: it agrees, continues, answers the survey and plays).
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from players import Player, StudyServer, run_cli, wait_for

pytestmark = pytest.mark.browser

KITCHEN = "pyodide_runtime.examples.kitchen:make_env"
PARTNER = "pyodide_runtime.examples.human_ai:Partner"


def tiny_png(path: Path, w: int = 24, h: int = 16) -> None:
    """A small orange PNG, written with the standard library."""
    rows = b"".join(b"\x00" + bytes((230, 120, 30)) * w for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_study(folder: Path, scenes: str, *, episodes: int = 2, max_steps: int = 75, between_ms: int = 2000,
                session: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_png(folder / "kitchen.png")
    config = folder / "study.toml"
    config.write_text(f"""
title = "Flow study"
test_mode = true
completion_url = "https://example.org/complete?cc=FLOW"

[env]
spec = "{KITCHEN}"
config = {{ cook_time = 10, orders = 2, order_time = 900, max_steps = {max_steps} }}

[session]
players = 2
fps = 30
input_delay = 2
episodes = {episodes}
seed = 7
between_episodes_ms = {between_ms}
{session}
{scenes}
""")
    return config


CONSENT = """
[[scenes]]
kind = "consent"
text = "We record your **key presses** and answers."
"""
INSTRUCTIONS = """
[[scenes]]
kind = "instructions"
title = "How to play"
text = \"\"\"# Cooking

- Walk with the arrow keys.
- Space uses what you face.

![The kitchen](kitchen.png)\"\"\"
"""
PRACTICE = f"""
[[scenes]]
kind = "practice"
bots = {{ cook_1 = "{PARTNER}" }}
env_config = {{ cook_time = 10, orders = 2, order_time = 900, max_steps = 45 }}
"""
GAME = """
[[scenes]]
kind = "game"
text = "Two short rounds."
"""
SURVEY = """
[[scenes]]
kind = "survey"

[[scenes.questions]]
id = "teamwork"
kind = "likert"
prompt = "How well did you work together?"
scale = 5
labels = ["Badly", "Well"]

[[scenes.questions]]
id = "partner"
kind = "choice"
prompt = "Was your partner a person?"
options = ["Yes", "No", "Not sure"]

[[scenes.questions]]
id = "age"
kind = "number"
prompt = "Your age"
min = 18
max = 99
integer = true

[[scenes.questions]]
id = "comments"
kind = "text"
prompt = "Comments"
required = false
"""
END = """
[[scenes]]
kind = "end"
text = "All done."
completion_code = "FLOW-OK"
"""


def waiting(timeout_s: float = 120, max_rtt_ms: float | None = None, max_requeues: int = 2) -> str:
    rtt = f"max_rtt_ms = {max_rtt_ms}\n" if max_rtt_ms is not None else ""
    return f"""
[[scenes]]
kind = "waiting"
timeout_s = {timeout_s}
timeout_text = "No partner could be found."
timeout_code = "NOPARTNER"
max_requeues = {max_requeues}
{rtt}"""


def read_csv(bundle: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(bundle.read(name).decode("utf-8"))))


def ended(episodes: list[dict[str, str]]) -> list[int]:
    """The episodes whose end was confirmed."""
    return [int(e["episode"]) for e in episodes if e["ended"] in ("true", "True", "1")]


def stored(data_dir: Path, pattern: str) -> list[Path]:
    return sorted(data_dir.glob(f"*/*/seat*/{pattern}"))


def fail_with_evidence(tmp_path: Path, players: list[Player], exc: Exception) -> None:
    evidence = tmp_path / "evidence"
    for p in players:
        p.save_evidence(evidence)
    pytest.fail(f"{exc}; consoles, statuses and screenshots saved in {evidence}")


def test_consent_to_end_with_practice_two_episodes_and_a_survey(assets_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    scenes = CONSENT + INSTRUCTIONS + PRACTICE + waiting(max_rtt_ms=2000) + GAME + SURVEY + END
    config = write_study(tmp_path / "study", scenes)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"p{i}", tmp_path / f"p{i}") for i in range(2)]
        try:
            for i, p in enumerate(players):
                p.open(f"{server.url}/?participant=P{i}&autopilot=random&seed={i + 1}")
            # Interim copies of episode 1 reach the server while the session is still running.
            interim = wait_for(lambda: (lambda f: f if len(f) == 2 else None)(
                stored(server.data_dir, "interim-episode1-*.zip")), 150, "both seats' episode-1 copies")
            finals_then = stored(server.data_dir, "final-*.zip")
            phases_then = [p.status().get("scene") for p in players]
            bundles = wait_for(lambda: (lambda b: b if all(b) else None)([p.bundles() for p in players]), 150,
                               "both final downloads")
            statuses = [p.status() for p in players]
            ends = [p.page.evaluate("""() => ({
                code: document.querySelector('[data-completion-code]')?.textContent,
                link: document.querySelector('[data-completion-link]')?.href,
                heading: document.querySelector('#scene h2')?.textContent })""") for p in players]
            finals = wait_for(lambda: (lambda f: f if len(f) == 2 else None)(
                stored(server.data_dir, "final-*.zip")), 30, "both final uploads")
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, players, exc)
        finally:
            for p in players:
                p.close()

    assert finals_then == [], f"a final bundle was stored before the episode-1 copies: {finals_then}"
    assert all(s and s["kind"] == "game" for s in phases_then), phases_then
    for path in interim:  # each interim copy is a valid export of exactly the first, confirmed episode
        assert run_cli("validate", str(path)).returncode == 0, path
        with zipfile.ZipFile(path) as z:
            episodes = read_csv(z, "episodes.csv")
        assert ended(episodes) == [0], episodes

    downloads = [b[0] for b in bundles]
    assert all(len(b) == 1 for b in bundles), bundles  # one export per participant, at the end
    compare = run_cli("compare", str(downloads[0]), str(downloads[1]))
    assert compare.returncode == 0, compare.stdout + compare.stderr
    for d in downloads:
        v = run_cli("validate", str(d))
        assert v.returncode == 0, v.stdout + v.stderr
    for f in finals:
        assert run_cli("validate", str(f)).returncode == 0, f

    kinds = ["consent", "instructions", "practice", "waiting", "game", "survey", "end"]
    for d, status, end in zip(downloads, statuses, ends):
        with zipfile.ZipFile(d) as z:
            names = z.namelist()
            scenes_rows = read_csv(z, "participant/scenes.csv")
            answers = {r["question_id"]: json.loads(r["answer"]) for r in read_csv(z, "participant/answers.csv")}
            waiting_rows = read_csv(z, "participant/waiting.csv")
            episodes = read_csv(z, "episodes.csv")
        assert [r["kind"] for r in scenes_rows] == kinds
        for r in scenes_rows[:-1]:  # every scene but the last was entered and left, in order
            assert float(r["left_ms"]) >= float(r["entered_ms"]) > 0
        assert float(scenes_rows[2]["duration_ms"]) > 1000  # the practice was really played
        assert 1 <= answers["teamwork"] <= 5 and answers["partner"] in ("Yes", "No", "Not sure")
        assert 18 <= answers["age"] <= 99 and answers["age"] == int(answers["age"])
        assert ended(episodes) == [0, 1]
        assert any(n.startswith("participant/practice/1/") and n.endswith("episodes.csv") for n in names), names
        events = [r["event"] for r in waiting_rows]
        assert "paired" in events and "screened-ok" in events, events
        assert status["record"]["consent"] == "agreed"
        assert end["code"] == "FLOW-OK" and end["link"] == "https://example.org/complete?cc=FLOW", end
        assert status["final"]["sha256"] and status["upload"]["state"] == "uploaded", status["upload"]
        assert status["between_episode_holds"] == 1, status  # one hold, between the two episodes
    # the canonical game tables are identical; the participants' own tables differ (their answers and timings)
    with zipfile.ZipFile(downloads[0]) as a, zipfile.ZipFile(downloads[1]) as b:
        assert a.read("participant/scenes.csv") != b.read("participant/scenes.csv")


def test_an_unmatched_participant_reaches_the_timeout_message_and_code(assets_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    scenes = INSTRUCTIONS.replace('title = "How to play"', 'title = "How to play"\nmin_seconds = 2') + \
        waiting(timeout_s=4) + GAME + END
    config = write_study(tmp_path / "study", scenes)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        player = Player(pw, "alone", tmp_path / "alone")
        try:
            player.open(f"{server.url}/?participant=ALONE&autopilot=random&seed=3")
            shown = wait_for(lambda: player.page.evaluate("""() => {
                const img = document.querySelector('#scene img');
                const next = document.querySelector('[data-action=continue]');
                return img && img.complete ? {w: img.naturalWidth, alt: img.alt, disabled: next.disabled,
                  heading: document.querySelector('#scene h2').textContent,
                  list: [...document.querySelectorAll('#scene li')].map((li) => li.textContent)} : null;
            }"""), 30, "the instructions with their image")
            end = wait_for(lambda: player.page.evaluate("""() => {
                const code = document.querySelector('[data-completion-code]');
                return code ? {code: code.textContent, text: document.querySelector('#scene').textContent,
                  link: document.querySelector('[data-completion-link]')?.href} : null; }"""), 60,
                "the timeout message")
            bundle = wait_for(lambda: player.bundles() or None, 30, "the participant's download")[0]
            status = player.status()
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, [player], exc)
        finally:
            player.close()
        log = server.log_path.read_text()
    assert shown["w"] == 24 and shown["alt"] == "The kitchen" and shown["disabled"] is True, shown
    assert shown["list"] == ["Walk with the arrow keys.", "Space uses what you face."], shown
    assert end["code"] == "NOPARTNER" and "No partner could be found." in end["text"], end
    assert end["link"] == "https://example.org/complete?cc=FLOW", end
    assert status["stage"] != "playing" and status["scene"]["kind"] == "end", status
    assert [w["event"] for w in status["record"]["waiting"]] == ["queued", "timeout"]
    v = run_cli("validate", str(bundle))
    assert v.returncode == 0, v.stdout + v.stderr
    with zipfile.ZipFile(bundle) as z:
        assert not any(n == "episodes.csv" for n in z.namelist())  # no game was played: participant tables only
        assert [r["outcome"] for r in read_csv(z, "participant/scenes.csv")][:2] == ["continued", "timeout"]
    assert "ALONE" not in log


def test_a_pair_over_the_rtt_limit_is_not_paired(assets_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    config = write_study(tmp_path / "study", waiting(timeout_s=60, max_rtt_ms=120, max_requeues=0) + GAME + END)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"slow{i}", tmp_path / f"slow{i}") for i in range(2)]
        try:
            for i, p in enumerate(players):  # each side delays its packets by 100 ms: about 200 ms round trip
                p.open(f"{server.url}/?participant=S{i}&autopilot=random&seed={i + 1}&latency_ms=100")
            wait_for(lambda: all(p.bundles() for p in players) or None, 90, "both participants' downloads")
            statuses = [p.status() for p in players]
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, players, exc)
        finally:
            for p in players:
                p.close()
    for s in statuses:
        events = {w["event"]: w for w in s["record"]["waiting"]}
        assert "screened-out" in events and "screened-ok" not in events, s["record"]["waiting"]
        assert events["measured"]["rtt_ms"] > 120, events["measured"]
        assert s["stage"] != "playing" and s["scene"]["kind"] == "end", s
        assert s["interims"] == [], s["interims"]
    assert stored(server.data_dir, "*.zip") == []  # no game data: nothing was played


def test_closing_the_tab_after_episode_one_leaves_episode_one_on_the_server(assets_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    config = write_study(tmp_path / "study", waiting() + GAME + END, episodes=2, between_ms=6000)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"c{i}", tmp_path / f"c{i}") for i in range(2)]
        try:
            for i, p in enumerate(players):
                p.open(f"{server.url}/?participant=C{i}&autopilot=random&seed={i + 1}")
            wait_for(lambda: len(stored(server.data_dir, "interim-episode1-*.zip")) == 2 or None, 150,
                     "both seats' episode-1 copies")
            # The first page to load pairs first and takes seat 0, so the closed one's seat is read, not assumed.
            closed = f"seat{players[1].status()['seat']}"
            players[1].close()  # the participant closes the browser during the between-episode countdown
            survivor = wait_for(lambda: players[0].bundles() or None, 90, "the partner's download")[0]
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, players, exc)
        finally:
            for p in players:
                p.close()
    gone = [p for p in stored(server.data_dir, "interim-episode1-*.zip") if p.parent.name == closed]
    assert len(gone) == 1 and stored(server.data_dir, "final-*.zip") != []
    assert not [p for p in stored(server.data_dir, "final-*.zip") if p.parent.name == closed]
    v = run_cli("validate", str(gone[0]))
    assert v.returncode == 0, v.stdout + v.stderr
    with zipfile.ZipFile(gone[0]) as z:
        episodes = read_csv(z, "episodes.csv")
        frames = {r["global_frame"] for r in read_csv(z, "frames.csv") if r["episode"] == "0"}
    assert ended(episodes) == [0] and len(frames) == 75
    with zipfile.ZipFile(survivor) as z:
        kept = read_csv(z, "episodes.csv")
    assert ended(kept)[:1] == [0]  # the partner's export keeps the confirmed episode too


def test_scene_texts_are_never_html_and_the_scenes_work_by_keyboard_at_200_percent(assets_dir: Path,
                                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    hostile = '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> **bold** [link](javascript:x)'
    scenes = f'''
[[scenes]]
kind = "consent"
text = {json.dumps(hostile)}
''' + INSTRUCTIONS + waiting(timeout_s=300) + GAME + END
    config = write_study(tmp_path / "study", scenes)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        player = Player(pw, "keys", tmp_path / "keys")
        try:
            # 200% zoom of a 1280 px wide window: a 640 CSS px viewport at device scale 2.
            player.page.set_viewport_size({"width": 640, "height": 800})
            player.open(f"{server.url}/?participant=K")
            consent = wait_for(lambda: player.page.evaluate("""() => {
                const s = document.querySelector('#scene');
                return s && !s.hidden && s.textContent.includes('onerror') ? {
                  text: s.querySelector('.text').textContent, imgs: s.querySelectorAll('img').length,
                  scripts: s.querySelectorAll('script').length, links: s.querySelectorAll('a').length,
                  bold: [...s.querySelectorAll('strong')].map((b) => b.textContent),
                  focused: document.activeElement && document.activeElement.tagName,
                  overflow: document.documentElement.scrollWidth - window.innerWidth } : null; }"""),
                30, "the consent scene")
            # Keyboard only: Tab to the first button (agree) and press Enter.
            for _ in range(10):
                player.page.keyboard.press("Tab")
                if player.page.evaluate("document.activeElement?.dataset?.action") == "agree":
                    break
            player.page.keyboard.press("Enter")
            instructions = wait_for(lambda: player.page.evaluate("""() => {
                const h = document.querySelector('#scene h2');
                return h && h.textContent === 'How to play' ? {focused: document.activeElement === h,
                  overflow: document.documentElement.scrollWidth - window.innerWidth,
                  img: document.querySelector('#scene img')?.getBoundingClientRect().width} : null; }"""),
                15, "the instructions after Enter on agree")
            player.page.keyboard.press("Tab")
            player.page.keyboard.press("Enter")
            waiting_text = wait_for(lambda: player.page.evaluate("""() => {
                const t = document.querySelector('#scene .scene-status');
                return t && t.textContent.startsWith('Waiting for a partner') ? t.textContent : null; }"""),
                15, "the waiting room's clock")
            pwned = player.page.evaluate("window.pwned || null")
            status = player.status()
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, [player], exc)
        finally:
            player.close()
    assert consent["text"].startswith('<img src=x onerror="window.pwned=1"> <script>'), consent
    assert (consent["imgs"], consent["scripts"], consent["links"]) == (0, 0, 0), consent
    assert consent["bold"] == ["bold"] and pwned is None
    assert consent["overflow"] <= 0 and instructions["overflow"] <= 0, (consent, instructions)
    assert instructions["focused"] is True and 0 < instructions["img"] <= 640
    assert waiting_text.startswith("Waiting for a partner… 0:")
    assert status["record"]["consent"] == "agreed" and status["scene"]["kind"] == "waiting"
    assert [s["outcome"] for s in status["record"]["scenes"][:2]] == ["agreed", "continued"]


def test_a_mid_episode_reload_rejoins_and_both_exports_are_identical_and_complete(assets_dir: Path,
                                                                                   tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    config = write_study(tmp_path / "study", waiting() + GAME + SURVEY + END, episodes=2, max_steps=150,
                         between_ms=1000, session="rejoin_grace_ms = 30000")
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"r{i}", tmp_path / f"r{i}") for i in range(2)]
        try:
            for i, p in enumerate(players):
                p.open(f"{server.url}/?participant=R{i}&autopilot=random&seed={i + 1}")
            # Mid-episode 2 (frames 150-299), after a checkpoint or two: player A reloads the page.
            wait_for(lambda: (players[0].status().get("frame") or 0) >= 200 or None, 120, "A in the second episode")
            players[0].page.reload()
            back = wait_for(lambda: (lambda s: s if s.get("resumed") else None)(players[0].status()), 60,
                            "A's page to rejoin from its checkpoint")
            bundles = wait_for(lambda: (lambda b: b if all(b) else None)([p.bundles() for p in players]), 150,
                               "both final exports")
            statuses = [p.status() for p in players]
        except (TimeoutError, AssertionError) as exc:
            fail_with_evidence(tmp_path, players, exc)
        finally:
            for p in players:
                p.close()
    exports = [b[0] for b in bundles]
    assert all(len(b) == 1 for b in bundles), bundles  # A's reloaded page offered no recovered download
    compared = run_cli("compare", *map(str, exports))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    validated = run_cli("validate", *map(str, exports))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    metas = []
    for export in exports:
        with zipfile.ZipFile(export) as z:
            assert ended(read_csv(z, "episodes.csv")) == [0, 1]
            metas.append(json.loads(z.read("metadata.json")))
            record = json.loads(z.read("participant/record.json"))["record"]
        assert [s["kind"] for s in record["scenes"]] == ["waiting", "game", "survey", "end"]
        assert len(record["reloads"]) == (1 if export == exports[0] else 0)  # only A reloaded
    assert all(m["canonical"]["status"] == "complete" for m in metas), [m["canonical"]["status"] for m in metas]
    resumed = metas[0]["participant_local"]["stats"]["resumed"]
    assert 0 < resumed["from_frame"] < 300 and resumed["replayed_frames"] == resumed["from_frame"], resumed
    assert back["resumed"]["from_frame"] == resumed["from_frame"]
    assert metas[1]["participant_local"]["stats"]["peer_rejoins"], metas[1]["participant_local"]["stats"]
    assert statuses[0]["record"]["reloads"] and statuses[0]["outcome"] == statuses[1]["outcome"] == "complete"
