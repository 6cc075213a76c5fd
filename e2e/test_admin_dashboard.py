"""The researcher dashboard in a real browser while two real participants play a short study.

The server runs as a process with ``--data-dir`` and ``--admin-token``; two Chromium players play on autopilot.
A third browser context logs in through the dashboard's form (keyboard only) and must show the live room with its
frames advancing, then the finished session with outcome ``complete`` and the uploaded files. The screenshot is
checked for content: the rendered regions' text names the room and the outcome, and its pixels hold the RTT
polyline's colour.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from players import Player, StudyServer, chromium_path, wait_for

pytestmark = pytest.mark.browser

TOKEN = "dashboard-e2e-token-0123456789"
STEPS = 600  # 20 s at 30 fps: long enough to watch the frames advance
RTT_COLOUR = (0x0B, 0x62, 0xD6)  # --rtt in static/admin.css


def colour_pixels(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=-1).sum())


def test_dashboard_follows_a_two_player_session(assets_dir, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    study = {
        "title": "Coin Chase", "test_mode": True, "env_config": {"max_steps": STEPS},
        "session": {"players": 2, "fps": 30, "episodes": 1, "seed": 5},
    }
    evidence = tmp_path / "evidence"
    with StudyServer(tmp_path / "server", study, assets=assets_dir, extra=["--admin-token", TOKEN]) as server, \
            sync_playwright() as pw:
        players = [Player(pw, name, tmp_path / name) for name in ("a", "b")]
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        admin = context.new_page()
        admin_console: list[str] = []
        admin.on("console", lambda m: admin_console.append(f"{m.type}: {m.text}"))
        admin.on("pageerror", lambda e: admin_console.append(f"pageerror: {e}"))
        try:
            # Log in with the keyboard: the form is shown because state.json answers 401.
            admin.goto(f"{server.url}/admin")
            admin.wait_for_selector("#login:not([hidden])")
            assert admin.evaluate("document.activeElement.id") == "token"
            admin.keyboard.type(TOKEN)
            admin.keyboard.press("Enter")
            admin.wait_for_selector("#dashboard:not([hidden])")
            assert TOKEN not in admin.url and admin.url.endswith("/admin")
            cookies = context.cookies()
            assert [c["name"] for c in cookies] == ["pyodide_runtime_admin"]
            assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict" and cookies[0]["value"] != TOKEN

            for i, p in enumerate(players):
                p.open(f"{server.url}/?participant=P{i}&autopilot=random&seed={i + 1}")

            def live_frames() -> tuple[str, list[int]] | None:
                card = admin.query_selector("#rooms article[data-room]")
                if card is None:
                    return None
                frames = [int(m) for m in re.findall(r"frame (\d+)", card.inner_text())]
                return (card.get_attribute("data-room"), frames) if len(frames) == 2 and min(frames) > 0 else None

            room, first = wait_for(live_frames, 120, "a live room with frames on the dashboard", interval=0.5)
            _, later = wait_for(lambda: (f := live_frames()) and min(f[1]) > max(first) and f, 30,
                                "the room's frames to advance on the dashboard", interval=0.5)
            text = admin.inner_text("#rooms")
            assert f"Room {room}" in text and ("p2p" in text or "relay" in text), text
            assert admin.inner_text('#scenes li[data-kind="game"] b') == "2"
            assert admin.query_selector(f'#rooms article[data-room="{room}"] svg.plot polyline')

            def finished() -> bool:
                statuses = [p.status() for p in players]
                return all(s.get("download") == "saved+uploaded" for s in statuses) and statuses

            statuses = wait_for(finished, 90, "both players to finish and upload")
            assert all(s["outcome"] == "complete" for s in statuses), statuses
            stored = sorted((server.data_dir).rglob("*.zip"))
            assert len(stored) == 2, stored

            # The finished session and the files, as the dashboard draws them.
            wait_for(lambda: room in admin.inner_text("#finished") and "complete" in admin.inner_text("#finished"),
                     30, "the finished session on the dashboard", interval=0.5)
            wait_for(lambda: admin.locator("#files tbody tr").count() == 2, 30, "the uploaded files on the dashboard")
            assert admin.is_visible("#rooms-empty"), "an ended room is no longer in play"
            card_text = admin.inner_text("#finished article")
            assert f"room {room}" in card_text and "seat 0: complete" in card_text and "seat 1: complete" in card_text
            files_text = admin.inner_text("#files")
            for path in stored:
                assert path.name in files_text

            # Downloads with the session cookie: one file, then everything.
            link = admin.locator("#files tbody a").first
            url = server.url + link.get_attribute("href")
            body = context.request.get(url).body()
            assert body in {p.read_bytes() for p in stored}
            everything = context.request.get(server.url + "/admin/data.zip")
            assert everything.status == 200
            with zipfile.ZipFile(io.BytesIO(everything.body())) as z:
                names = z.namelist()
                assert sorted(Path(n).name for n in names if n.endswith(".zip")) == sorted(p.name for p in stored)
            anonymous = browser.new_context()
            assert anonymous.request.get(url).status == 401
            assert anonymous.request.get(server.url + "/admin/state.json").status == 401
            anonymous.close()

            # The screenshot: its content, not just its existence.
            admin.wait_for_selector("#finished svg.plot polyline.rtt", state="attached")
            png = admin.screenshot(full_page=True, path=str(tmp_path / "dashboard.png"))
            assert colour_pixels(png, RTT_COLOUR) >= 30, "the RTT polyline is drawn"
            finished_box = admin.locator("#finished article").first.bounding_box()
            assert finished_box and finished_box["width"] > 200 and finished_box["height"] > 100
            crop = admin.screenshot(clip=finished_box)
            assert colour_pixels(crop, RTT_COLOUR) >= 10, "the finished session's own plot shows its RTT"

            # Readable at 200 % zoom: nothing wider than the viewport at half the width.
            admin.set_viewport_size({"width": 550, "height": 900})
            admin.wait_for_timeout(300)
            assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            # The one 401 is state.json answering before the login (that is how the page knows to show the form).
            errors = [m for m in admin_console if m.startswith(("error", "pageerror")) and "401" not in m]
            assert not errors, errors
        except BaseException:
            for p in players:
                p.save_evidence(evidence)
            admin.screenshot(path=str(evidence / "admin.png"))
            raise
        finally:
            context.close()
            browser.close()
            for p in players:
                p.close()
