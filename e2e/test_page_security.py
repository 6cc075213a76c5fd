"""Page security: the Content-Security-Policy the pages run under, the shipped JavaScript, and file names.

The browser test loads the real participant page and the browser check page in Chromium with a listener for
``securitypolicyviolation`` events installed before any script runs, plays a whole two-player session, and
fails on any violation or CSP console message. The other tests need no browser.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import zipfile
from pathlib import Path

import aiohttp
import pytest

from players import Player, StudyServer, wait_for
from pyodide_runtime.export.bundle import bundle_name

REPO = Path(__file__).resolve().parent.parent
SHIPPED_JS = sorted([*REPO.glob("js_bridge/*.mjs"), *REPO.glob("js_bridge/*.js"), *REPO.glob("static/*.mjs")])
PAGES = sorted(REPO.glob("static/*.html"))
HOSTILE_IDS = ["../../x", "..\\..\\x", "<script>alert(1)</script>", "a" * 5000, "pärticipant-ü-😀", "/etc/passwd",
               ".hidden", "con", "x\x00y", "  ", "-rf"]

#: Sinks that turn text into code or markup. A use is allowed only with a constant string literal argument.
SINKS = re.compile(r"\beval\s*\(|\bnew\s+Function\b|\bFunction\s*\(|\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML"
                   r"|document\.write(ln)?\s*\(|\bset(Timeout|Interval)\s*\(\s*[\"'`]|createContextualFragment"
                   r"|\.srcdoc\b|DOMParser")


def test_shipped_javascript_has_no_code_or_markup_sinks():
    assert SHIPPED_JS and any(p.name == "main.mjs" for p in SHIPPED_JS)
    found = []
    for path in SHIPPED_JS:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            if SINKS.search(code):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "code or markup built from text (use textContent / DOM nodes):\n" + "\n".join(found)


def test_pages_have_no_inline_scripts_or_handlers():
    assert PAGES
    for page in PAGES:
        html = page.read_text()
        for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", html, re.I | re.S):
            assert "src=" in attrs and not body.strip(), f"{page.name}: inline script"
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), f"{page.name}: inline event handler"
        assert "javascript:" not in html.lower()


def test_peer_bytes_are_never_executed_or_rendered_as_html():
    """Peer bytes go from the transport to the worker as binary, and the page shows only ``textContent``."""
    transport = (REPO / "js_bridge" / "transport.mjs").read_text()
    main = (REPO / "js_bridge" / "main.mjs").read_text()
    assert "arraybuffer" in transport.lower()  # binary frames stay bytes
    assert "textContent" in main
    for text in (transport, main):
        assert not SINKS.search(text)
        assert "JSON.parse" not in text or "peer" not in re.findall(r"JSON\.parse\(([^)]*)\)", text)


@pytest.mark.parametrize("participant", HOSTILE_IDS)
def test_download_file_name_is_safe_for_hostile_participant_ids(participant):
    name = bundle_name("study/1", "../session", participant, 1)
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.zip", name), name
    assert ".." not in name and "/" not in name and "\\" not in name and len(name) <= 200
    assert not name.startswith((".", "-"))


def test_server_upload_path_is_safe_for_hostile_session_names(tmp_path: Path):
    """A hostile session name in an upload lands inside the data directory, under a sanitised name."""
    from server_support import Client, ServerProcess

    bundle = b"PK\x03\x04" + b"\x00" * 64
    digest = hashlib.sha256(bundle).hexdigest()

    async def main(server: ServerProcess) -> list[str]:
        paths = []
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/rooms") as resp:
                room = (await resp.json())["room"]
            c = await Client.connect(http, server.ws_url)
            joined = await c.join(room=room, participant="<script>../../x")
            assert joined["participant"] == "script....x"  # only letters, digits and ._~@+:- are kept
            for session in HOSTILE_IDS[:6]:
                url = server.url + "/upload"
                params = {"sha256": digest, "seat_token": joined["seat_token"], "session": session}
                async with http.post(url, params=params, data=bundle) as resp:
                    assert resp.status in (200, 201), await resp.text()
                    paths.append((await resp.json())["path"])
            await c.close()
        return paths

    with ServerProcess(tmp_path / "server", ["--data-dir", "data"]) as server:
        paths = asyncio.run(main(server))
        data = (tmp_path / "server" / "data").resolve()
        for rel in paths:
            stored = (data / rel).resolve()
            assert stored.is_relative_to(data) and stored.is_file(), rel
            assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) and part not in (".", "..") for part in Path(rel).parts)
        assert not list(tmp_path.glob("x*")) and not (tmp_path / "server" / "x").exists()


CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber});
});
"""


@pytest.mark.browser
def test_pages_work_under_the_csp_with_no_violation(assets_dir, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    study = {
        "title": "Coin Chase", "instructions": "Collect the coins.", "test_mode": True,
        "env_config": {"max_steps": 90}, "session": {"players": 2, "fps": 30, "episodes": 1, "seed": 3},
    }
    with StudyServer(tmp_path / "server", study, assets=assets_dir) as server, sync_playwright() as pw:
        players = [Player(pw, name, tmp_path / name) for name in ("a", "b")]
        try:
            responses = []
            for i, p in enumerate(players):
                p.context.add_init_script(CSP_LISTENER)
                responses.append(p.page.goto(f"{server.url}/?participant=<b>{i}</b>&autopilot=random&seed={i}"))
            for r in responses:
                csp = r.headers["content-security-policy"]
                directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
                assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
                assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
                assert r.headers["x-content-type-options"] == "nosniff"
                assert r.headers["referrer-policy"] == "no-referrer"

            def done():
                statuses = [p.status() for p in players]
                return statuses if all(str(s.get("download", "")).startswith("saved") for s in statuses) else None

            statuses = wait_for(done, 180, "both players to finish and download")
            assert all(s.get("outcome") == "complete" and s.get("confirmed_frames") == 90 for s in statuses), statuses
            bundles = [wait_for(lambda p=p: p.bundles() or None, 30, "the download")[0] for p in players]
            for b in bundles:
                assert re.fullmatch(r"[A-Za-z0-9._-]+\.zip", b.name) and "<" not in b.name
                with zipfile.ZipFile(b) as z:
                    assert "frames.csv" in z.namelist()
            # The browser check page, under the same policy.
            check = players[0]
            check.page.goto(f"{server.url}/check.html")
            result = check.page.evaluate("window.browserCheck")
            assert result["steps"] == 1000
            for p in players:
                violations = p.page.evaluate("window.__csp")
                assert violations == [], violations
                csp_console = [m for m in p.console if "Content Security Policy" in m or "Content-Security-Policy" in m]
                assert not csp_console, csp_console
            # The listener works, and the policy bites: an inline script injected now is blocked and reported.
            check.page.evaluate("""() => { const s = document.createElement("script");
                s.textContent = "window.__inlineRan = true"; document.head.appendChild(s); }""")
            wait_for(lambda: check.page.evaluate("window.__csp.length") or None, 10, "the violation report")
            assert check.page.evaluate("window.__inlineRan") is None
            assert check.page.evaluate("window.__csp[0].directive").startswith("script-src")
        finally:
            for p in players:
                p.close()
