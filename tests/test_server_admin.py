"""The researcher dashboard and page reports: authentication, report checks and limits, the state, the files."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server_support import COIN_CHASE, make_assets

from pyodide_runtime.bridge import session_id_for_room
from pyodide_runtime.host.assets import open_assets
from pyodide_runtime.host.server import reports as reports_module
from pyodide_runtime.host.server.admin import COOKIE, admin_csp, list_files
from pyodide_runtime.host.server.app import REPORTS, create_app
from pyodide_runtime.host.server.eventlog import EventLog
from pyodide_runtime.host.server.reports import ReportError, Reports, parse_report
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.study import load_study
from pyodide_runtime.host.web import js_bridge_dir, static_dir

TOKEN = "s3cret-admin-token-for-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PAGE = "pAgE_id-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_app(tmp_path: Path, scenario: Callable[[TestClient, Clock, Path], Awaitable[None]], *,
            admin_token: str | None = TOKEN) -> None:
    """Run ``scenario`` against the real application (study ``pilot``, data in ``tmp_path/data``)."""
    data = tmp_path / "data"
    data.mkdir()
    clock = Clock()
    log = io.StringIO()
    app = create_app(load_study(COIN_CHASE, None, "pilot"), open_assets(make_assets(tmp_path / "assets")),
                     ServerSettings(data_dir=data, admin_token=admin_token), static=static_dir(),
                     js_bridge=js_bridge_dir(), log=EventLog(log), clock=clock)

    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            await scenario(client, clock, data)

    asyncio.run(asyncio.wait_for(main(), 30))
    assert TOKEN not in log.getvalue(), "the admin token is never logged"


def report(page: str = PAGE, **fields: Any) -> dict[str, Any]:
    return {"page": page, "scene": "game", "scene_kind": "game", **fields}


def game(frame: int, rtt: float | None = 12.5, rollbacks: int = 0, away: bool = False) -> dict[str, Any]:
    return {"episode": 1, "frame": frame, "transport": "p2p", "rtt_ms": rtt, "rollbacks": rollbacks,
            "partner_away": away}


def write_uploads(data: Path) -> dict[str, bytes]:
    """Files in both layouts: the flat one (``<session>/seat<N>-<sha>.zip``) and seat directories with a log."""
    files: dict[str, bytes] = {}
    old = data / "pilot" / "sess-old"
    old.mkdir(parents=True)
    body = _zip({"frames.csv": "a,b\n"})
    sha = hashlib.sha256(body).hexdigest()
    (old / f"seat0-{sha[:16]}.zip").write_bytes(body)
    files[f"pilot/sess-old/seat0-{sha[:16]}.zip"] = body
    new = data / "pilot" / "sess-new" / "seat1"
    new.mkdir(parents=True)
    for kind, label in (("interim", "episode1"), ("final", None)):
        body = _zip({"frames.csv": f"{kind}\n"})
        sha = hashlib.sha256(body).hexdigest()
        name = f"{kind}{'-' + label if label else ''}-{sha[:16]}.zip"
        (new / name).write_bytes(body)
        files[f"pilot/sess-new/seat1/{name}"] = body
        with (new / "uploads.jsonl").open("a") as log:
            log.write(json.dumps({"time_utc": "2026-01-02T03:04:05Z", "kind": kind, "label": label, "sha256": sha,
                                  "bytes": len(body), "file": name}) + "\n")
    (data / ".incoming").mkdir()
    (data / ".incoming" / "upload-partial").write_bytes(b"half")
    (data.parent / "secret.txt").write_text("outside the data directory")
    (data / "pilot" / "escape.zip").symlink_to(data.parent / "secret.txt")
    return files


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, text in entries.items():
            z.writestr(name, text)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ auth


def test_every_admin_route_needs_the_token(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        files = write_uploads(data)
        some_file = "/admin/files/" + next(iter(files))
        for path in ("/admin/state.json", some_file, "/admin/data.zip"):
            r = await client.get(path)
            assert r.status == 401, path
            assert "Bearer" in r.headers["WWW-Authenticate"] and r.headers["Cache-Control"] == "no-store"
            for wrong in (f"Bearer {TOKEN}x", "Bearer " + TOKEN[:-1], "Bearer short"):
                r = await client.get(path, headers={"Authorization": wrong})
                assert r.status == 403, (path, wrong)
            r = await client.get(path, headers={"Authorization": f"Basic {TOKEN}"})
            assert r.status == 401
            r = await client.get(path, cookies={COOKIE: TOKEN})  # the token is not a session cookie
            assert r.status == 401
            r = await client.get(path, headers=BEARER)
            assert r.status == 200, path
            assert r.headers["Cache-Control"] == "no-store"
        r = await client.get("/admin/state.json?token=" + TOKEN)  # never from a URL
        assert r.status == 401

    run_app(tmp_path, scenario)


def test_the_page_has_the_participant_page_headers_and_no_data(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        r = await client.get("/admin")
        assert r.status == 200 and r.content_type == "text/html"
        html = await r.text()
        assert TOKEN not in html and "<script type=\"module\" src=\"/admin.mjs\">" in html
        csp = r.headers["Content-Security-Policy"]
        assert csp == admin_csp((static_dir() / "admin.html").read_bytes(), r.url.host + f":{r.url.port}")
        assert "form-action 'self'" in csp and "style-src 'self';" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "<style" not in html and " style=" not in html and "<script>" not in html
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
        for name in ("admin.mjs", "admin.css"):
            assert (await client.get("/" + name)).status == 200
        script = (static_dir() / "admin.mjs").read_text()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script

    run_app(tmp_path, scenario)


def test_login_form_sets_a_strict_httponly_cookie(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        r = await client.post("/admin/login", data={"token": "wrong-token-wrong-token"}, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/admin?login=failed"
        assert "Set-Cookie" not in r.headers
        r = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/admin"
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "httponly" in flags and flags["samesite"].lower() == "samesite=strict"
        assert flags["path"] == "Path=/admin"
        value = cookie.split(";")[0].split("=", 1)[1]
        r = await client.get("/admin/state.json", cookies={COOKIE: value})
        assert r.status == 200 and (await r.json())["study"] == "pilot"
        r = await client.get("/admin/state.json", cookies={COOKIE: value[:-2]})
        assert r.status == 401
        r = await client.post("/admin/logout", cookies={COOKIE: value}, allow_redirects=False)
        assert r.status == 303
        r = await client.get("/admin/state.json", cookies={COOKIE: value})
        assert r.status == 401, "a logged-out session is forgotten"

    run_app(tmp_path, scenario)


def test_login_attempts_are_rate_limited(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        statuses = []
        for i in range(12):
            r = await client.post("/admin/login", data={"token": f"guess-{i:020d}"}, allow_redirects=False)
            statuses.append(r.status)
        assert statuses[:10] == [303] * 10 and statuses[10:] == [429, 429]
        clock.now += 5
        r = await client.post("/admin/login", data={"token": TOKEN}, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/admin"

    run_app(tmp_path, scenario)


def test_without_a_token_there_is_no_dashboard(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        assert (await client.get("/admin/state.json", headers=BEARER)).status == 404
        assert (await client.post("/report", json=report())).status == 204

    run_app(tmp_path, scenario, admin_token=None)


def test_short_admin_tokens_are_refused():
    with pytest.raises(ValueError, match="16"):
        ServerSettings(admin_token="short")
    with pytest.raises(ValueError):
        ServerSettings(admin_token=" " + TOKEN)


# --------------------------------------------------------------------------------------------- reports


def test_reports_are_checked_strictly():
    assert parse_report(json.dumps(report()).encode()) == {
        "page": PAGE, "scene": "game", "scene_kind": "game", "room": None, "seat": None, "session": None,
        "game": None, "ended": None}
    parsed = parse_report(json.dumps(report(scene="my-own_scene 2", scene_kind="loading", seat=1, room="Ab_-9",
                                            session="0123abcd", game=game(5),
                                            ended={"outcome": "complete", "end_cause": "all_confirmed"})).encode())
    assert parsed["scene"] == "my-own_scene 2" and parsed["game"]["frame"] == 5 and parsed["ended"]["outcome"]
    bad = [
        b"not json", b"[]", b"null", b'{"page": "' + PAGE.encode() + b'"}',
        json.dumps(report(participant="P1")), json.dumps(report(PROLIFIC_PID="x")),
        json.dumps(report(page="short")), json.dumps(report(page="has space in it")),
        json.dumps(report(page=123456789)),
        json.dumps(report(scene="x" * 65)), json.dumps(report(scene="")), json.dumps(report(scene="caf\u00e9")),
        json.dumps(report(scene_kind=None)), json.dumps(report(scene="a\nb")),
        json.dumps(report(seat=True)), json.dumps(report(seat=-1)), json.dumps(report(seat=1.0)),
        json.dumps(report(seat=16)), json.dumps(report(room="../x")), json.dumps(report(session="a/b")),
        json.dumps(report(game={**game(1), "participant": "P1"})), json.dumps(report(game={"frame": -1})),
        json.dumps(report(game={"rtt_ms": -1})), json.dumps(report(game={"rtt_ms": "5"})),
        json.dumps(report(game={"partner_away": 1})), json.dumps(report(game=[1])),
        json.dumps(report(ended={"outcome": "complete", "why": "x"})), json.dumps(report(ended="complete")),
        b'{"page": "' + PAGE.encode() + b'", "scene": "game", "scene_kind": "game", "game": {"rtt_ms": NaN}}',
        json.dumps(report(scene="x" * 9000)),
    ]
    for body in bad:
        with pytest.raises(ReportError):
            parse_report(body if isinstance(body, bytes) else body.encode())


def test_report_endpoint_answers_and_limits(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        r = await client.post("/report", json=report())
        assert r.status == 204
        r = await client.post("/report", json=report(participant="P1"))
        assert r.status == 400 and "participant" in await r.text()
        r = await client.post("/report", data=json.dumps(report(scene="x" * 8200)))
        assert r.status == 413
        r = await client.post("/report", json=report(), headers={"Origin": "https://evil.example"})
        assert r.status == 403
        statuses = [(await client.post("/report", json=report(page="other-page-1"))).status for _ in range(12)]
        assert statuses[:10] == [204] * 10 and statuses[10:] == [429, 429], "per page id"
        assert (await client.post("/report", json=report(page="other-page-2"))).status == 204, "others still report"
        clock.now += 3
        assert (await client.post("/report", json=report(page="other-page-1"))).status == 204, "the bucket refills"
        counts = client.app[REPORTS].counts
        assert counts == {"accepted": 13, "rejected": 3, "rate_limited": 2}
        assert (await client.get("/report")).status == 404  # only POST

    run_app(tmp_path, scenario)


def test_reports_are_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(reports_module, "MAX_PAGES", 5)
    monkeypatch.setattr(reports_module, "MAX_POINTS", 7)
    monkeypatch.setattr(reports_module, "MAX_SERIES", 3)
    clock = Clock()
    reports = Reports(clock, lambda token: {"tok-a": "room-a"}.get(token, f"r-{token}"))
    for i in range(8):
        assert reports.add(parse_report(json.dumps(report(f"page-{i:04d}", scene_kind=f"k{i % 2}")).encode()))
        clock.now += 1
    assert list(reports.pages) == [f"page-{i:04d}" for i in range(3, 8)], "the oldest pages are forgotten"
    for i in range(20):
        clock.now += 1
        assert reports.add(parse_report(json.dumps(report(room="tok-a", seat=0, game=game(i, rollbacks=i))).encode()))
    points = reports.points("room-a", 0)
    assert len(points) == 7 and [p[2] for p in points] == list(range(13, 20))
    assert points[-1] == (clock.now, 12.5, 19)
    for room in ("tok-b", "tok-c", "tok-d"):
        reports.add(parse_report(json.dumps(report(f"page-{room}", room=room, seat=1, game=game(1))).encode()))
    assert ("room-a", 0) not in reports.series and len(reports.series) == 3
    assert reports.scene_counts()["game"] == 4
    clock.now += 31
    assert reports.live() == [] and reports.scene_counts() == dict.fromkeys(reports_module.SCENE_KINDS, 0)


# ------------------------------------------------------------------------------------------------ state


def test_state_joins_reports_with_rooms(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        write_uploads(data)
        a, b = await client.ws_connect("/ws"), await client.ws_connect("/ws")
        await a.send_json({"type": "join", "participant": "P-secret-1"})
        ja = json.loads((await a.receive(timeout=5)).data)
        await b.send_json({"type": "join", "participant": "P-secret-2"})
        jb = json.loads((await b.receive(timeout=5)).data)
        token = ja["room"]
        assert jb["room"] == token
        session = session_id_for_room(token)
        pages = ["page-seat-0000", "page-seat-0001"]
        for step in range(3):
            clock.now += 2
            for seat, page in enumerate(pages):
                body = report(page, room=token, seat=seat, session=session,
                              game=game(30 * step + seat, rtt=20.0 + step, rollbacks=step, away=seat == 1))
                assert (await client.post("/report", json=body)).status == 204
        for page, kind in (("page-consent-0", "consent"), ("page-survey-00", "survey"), ("page-load-000", "loading")):
            await client.post("/report", json=report(page, scene=kind, scene_kind=kind))
        state = await (await client.get("/admin/state.json", headers=BEARER)).json()
        text = json.dumps(state)
        assert token not in text and jb["seat_token"] not in text and "P-secret" not in text
        assert state["scenes"] == {"consent": 1, "instructions": 0, "practice": 0, "waiting": 0, "game": 2,
                                   "survey": 1, "end": 0, "loading": 1}
        assert state["pages"] == {"live": 5, "known": 5} and state["connections"] == 2
        (room,) = state["rooms"]
        assert room["status"] == "playing" and room["session"] == session and room["size"] == 2
        assert room["room"] != token and len(room["room"]) == 8
        s0, s1 = room["seats"]
        assert (s0["frame"], s0["rtt_ms"], s0["rollbacks"], s0["transport"], s0["partner_away"]) == (60, 22.0, 2, "p2p",
                                                                                                    False)
        assert s1["frame"] == 61 and s1["partner_away"] is True and s1["connected"] and s1["episode"] == 1
        assert [len(s["points"]) for s in room["series"]] == [3, 3]
        assert room["series"][0]["points"][-1][1:] == [22.0, 2]
        assert state["finished"] == []

        for seat, page in enumerate(pages):
            body = report(page, room=token, seat=seat, session=session, game=game(90),
                          ended={"outcome": "complete", "end_cause": "all_confirmed"})
            assert (await client.post("/report", json=body)).status == 204
        state = await (await client.get("/admin/state.json", headers=BEARER)).json()
        assert state["rooms"][0]["status"] == "ended"
        (done,) = state["finished"]
        assert done["session"] == session and done["room"] == room["room"] and done["outcome"] == "complete"
        assert done["seats"] == [{"seat": 0, "outcome": "complete", "end_cause": "all_confirmed"},
                                 {"seat": 1, "outcome": "complete", "end_cause": "all_confirmed"}]
        assert [len(s["points"]) for s in done["series"]] == [3, 3], "no points once the session ended"
        assert state["files"]["count"] == 3
        await a.close()
        await b.close()

    run_app(tmp_path, scenario)


# ------------------------------------------------------------------------------------------------ files


def test_file_listing_reads_both_layouts(tmp_path: Path):
    data = tmp_path / "data"
    files = write_uploads(data)
    listing = list_files(data, "pilot")
    by_path = {item["path"]: item for item in listing["items"]}
    assert set(by_path) == set(files), "the symlink, .incoming and uploads.jsonl are not listed"
    assert listing["count"] == 3 and listing["bytes"] == sum(map(len, files.values()))
    old = next(i for p, i in by_path.items() if "sess-old" in p)
    assert (old["session"], old["seat"], old["kind"], old["label"]) == ("sess-old", 0, "final", None)
    interim = next(i for p, i in by_path.items() if "interim" in p)
    assert (interim["session"], interim["seat"], interim["kind"], interim["label"]) == ("sess-new", 1, "interim",
                                                                                        "episode1")
    assert interim["sha256"] == hashlib.sha256(files[interim["path"]]).hexdigest()
    assert interim["time_utc"] == "2026-01-02T03:04:05Z" and interim["url"] == "/admin/files/" + interim["path"]
    assert list_files(None, "pilot")["count"] == 0 and list_files(data, "other")["count"] == 0


def test_downloads_stay_in_the_data_directory(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        files = write_uploads(data)
        for path, body in files.items():
            r = await client.get("/admin/files/" + path, headers=BEARER)
            assert r.status == 200 and await r.read() == body
            assert r.headers["Content-Disposition"].startswith("attachment;")
            assert r.headers["Content-Type"] == "application/zip"
        state = await (await client.get("/admin/state.json", headers=BEARER)).json()
        for item in state["files"]["items"]:
            assert (await client.get(item["url"], headers=BEARER)).status == 200
        for bad in ("../secret.txt", "pilot/../../secret.txt", "%2e%2e/secret.txt", "pilot/%2e%2e/%2e%2e/secret.txt",
                    "pilot%2f..%2f..%2fsecret.txt", ".incoming/upload-partial", "pilot/escape.zip", "pilot",
                    "/etc/passwd", "pilot/sess-old/..%5c..%5csecret.txt"):
            r = await client.get("/admin/files/" + bad, headers=BEARER)
            assert r.status == 404, bad
            assert "outside the data directory" not in await r.text()

    run_app(tmp_path, scenario)


def test_data_zip_holds_every_file(tmp_path: Path):
    async def scenario(client: TestClient, clock: Clock, data: Path) -> None:
        files = write_uploads(data)
        big = data / "pilot" / "sess-big" / "seat0"
        big.mkdir(parents=True)
        payload = bytes(range(256)) * 12_000  # over a megabyte: written in several chunks
        (big / "final-0123456789abcdef.zip").write_bytes(payload)
        files["pilot/sess-big/seat0/final-0123456789abcdef.zip"] = payload
        r = await client.get("/admin/data.zip", headers=BEARER)
        assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
        assert "attachment" in r.headers["Content-Disposition"]
        with zipfile.ZipFile(io.BytesIO(await r.read())) as z:
            assert z.testzip() is None
            names = set(z.namelist())
            assert names == set(files) | {"pilot/sess-new/seat1/uploads.jsonl"}
            for name, body in files.items():
                assert z.read(name) == body

    run_app(tmp_path, scenario)


# ---------------------------------------------------------------------------------------------- start-up


def test_serve_prints_a_random_token_or_keeps_the_given_one_secret(tmp_path: Path):
    import urllib.error
    import urllib.request

    from server_support import ServerProcess

    def get(url: str, token: str) -> int:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with ServerProcess(tmp_path / "random", ["--data-dir", "data"]) as server:
        assert server.proc is not None and server.proc.stdout is not None
        lines = [server.proc.stdout.readline() for _ in range(2)]
        (admin,) = [line for line in lines if line.startswith("Admin:")]
        url, token = re.fullmatch(r"Admin: +(\S+) \(token: (\S+)\)\n", admin).groups()
        assert url == server.url + "/admin" and len(token) >= 32
        assert get(server.url + "/admin/state.json", token) == 200
        assert get(server.url + "/admin/state.json", token[:-1] + "x") == 403
    assert token not in (tmp_path / "random" / "server.log").read_text()

    with ServerProcess(tmp_path / "given", ["--admin-token", TOKEN]) as server:
        lines = [server.proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert any(line.startswith("Admin:") and "(token: as given)" in line for line in lines), lines
        assert get(server.url + "/admin/state.json", TOKEN) == 200
        state = json.loads(urllib.request.urlopen(urllib.request.Request(
            server.url + "/admin/state.json", headers={"Authorization": f"Bearer {TOKEN}"}), timeout=10).read())
        assert state["files"]["count"] == 0 and state["rooms"] == []
    assert TOKEN not in (tmp_path / "given" / "server.log").read_text()


# ------------------------------------------------------------------------------------------ the page side

REPORTER_SCRIPT = """
import { Reporter } from "./js_bridge/report.mjs";

const calls = [];
let answer = () => Promise.resolve({ ok: true });
globalThis.fetch = (url, init) => { calls.push({ url, ...init }); return answer(); };
const settle = () => new Promise((r) => setTimeout(r, 0));
let state = { page: "abcdefgh12", scene: "game" };
const r = new Reporter("/report", () => state, 40);
r.start();
r.start();  // a second start changes nothing
const sentAtStart = calls.length;
while (calls.length < 3) await new Promise((res) => setTimeout(res, 5));
const periodic = calls.length;
r.stop();
await new Promise((res) => setTimeout(res, 100));
const afterStop = calls.length;
answer = () => Promise.resolve({ ok: false, status: 429 });
r.now(); await settle();
answer = () => Promise.reject(new Error("offline"));
r.now(); await settle();
answer = () => { throw new Error("sync"); };
r.now(); await settle();
state = null;
r.now(); await settle();
const silent = calls.length;
r.getState = () => { throw new Error("broken state"); };
r.now(); await settle();
console.log(JSON.stringify({ sentAtStart, periodic, afterStop, silent, calls: calls.length, sent: r.sent, errors: r.errors,
  first: calls[0] }));
"""


def test_reporter_posts_json_with_keepalive_and_counts_errors():
    import shutil
    import subprocess

    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed; the bridge's JavaScript tests need it")
    proc = subprocess.run([node, "--input-type=module", "-e", REPORTER_SCRIPT], cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sentAtStart"] == 1 and out["periodic"] >= 3, "one report at start, then one every interval"
    assert out["afterStop"] == out["periodic"], "stop() ends the reports"
    assert out["silent"] == out["periodic"] + 3 and out["calls"] == out["silent"], "a null state sends nothing"
    assert out["sent"] == out["silent"] and out["errors"] == 4, "non-ok, rejected, thrown and a broken state"
    first = out["first"]
    assert first["url"] == "/report" and first["method"] == "POST" and first["keepalive"] is True
    assert json.loads(first["body"]) == {"page": "abcdefgh12", "scene": "game"}
    assert first["headers"] == {"Content-Type": "application/json"} and first["credentials"] == "omit"
