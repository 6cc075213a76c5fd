"""Upload kinds and labels, the per-seat layout and its ``uploads.jsonl`` index, idempotence and never overwriting,
in-process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from aiohttp.test_utils import TestClient

from pyodide_runtime.host.server.upload import INDEX, KINDS
from server_support import Served, served

BUNDLE = b"PK\x03\x04" + bytes(range(256)) * 4


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


async def seat_tokens(s: Served) -> list[str]:
    a, b = await s.connect(), await s.connect()
    tokens = [(await a.join())["seat_token"], (await b.join())["seat_token"]]
    await a.close()
    await b.close()
    return tokens


async def upload(client: TestClient, token: str, data: bytes, **params: str) -> tuple[int, dict | str]:
    query = {"sha256": hashlib.sha256(data).hexdigest(), "seat_token": token, "session": "s1", **params}
    async with client.post("/upload", params=query, data=data) as r:
        return r.status, (await r.json()) if r.status < 300 else await r.text()


def index(seat_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (seat_dir / INDEX).read_text().splitlines()]


def test_kinds_and_labels_are_stored_per_seat_and_indexed(tmp_path: Path):
    data = tmp_path / "data"
    interim = BUNDLE + b"interim"
    participant = b"PK\x03\x04participant"
    not_zip = b"not a zip at all"

    async def scenario():
        async with served(tmp_path, data_dir=data) as s:
            token0, token1 = await seat_tokens(s)
            assert await upload(s.client, token0, BUNDLE) == (201, {
                "ok": True, "path": f"pilot/s1/seat0/final-{hashlib.sha256(BUNDLE).hexdigest()[:16]}.zip",
                "sha256": hashlib.sha256(BUNDLE).hexdigest(), "bytes": len(BUNDLE), "duplicate": False,
                "kind": "final", "label": None})
            status, body = await upload(s.client, token0, interim, kind="interim", label="episode1")
            assert status == 201 and body["path"].startswith("pilot/s1/seat0/interim-episode1-")
            headers = {"X-Upload-Kind": "participant", "X-Upload-Label": "end-1"}
            query = {"sha256": hashlib.sha256(participant).hexdigest(), "seat_token": token1, "session": "s1"}
            async with s.client.post("/upload", params=query, headers=headers, data=participant) as r:
                assert r.status == 201
                assert (await r.json())["path"].startswith("pilot/s1/seat1/participant-end-1-")
            status, body = await upload(s.client, token1, not_zip, kind="recovered")
            assert status == 201 and re.fullmatch(r"pilot/s1/seat1/recovered-[0-9a-f]{16}\.bin", body["path"])
            upload_events = s.events("upload")
            assert [(e["kind"], e["label"]) for e in upload_events] == [
                ("final", None), ("interim", "episode1"), ("participant", "end-1"), ("recovered", None)]

    run(scenario())
    seat0, seat1 = data / "pilot" / "s1" / "seat0", data / "pilot" / "s1" / "seat1"
    assert sorted(p.name for p in seat0.iterdir()) == sorted([
        f"final-{hashlib.sha256(BUNDLE).hexdigest()[:16]}.zip",
        f"interim-episode1-{hashlib.sha256(interim).hexdigest()[:16]}.zip", INDEX])
    lines = index(seat0)
    assert [(e["kind"], e["label"], e["bytes"]) for e in lines] == [("final", None, len(BUNDLE)),
                                                                   ("interim", "episode1", len(interim))]
    for line in lines + index(seat1):
        assert set(line) == {"time_utc", "kind", "label", "sha256", "bytes", "file"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time_utc"])
        stored = (seat0 if (seat0 / line["file"]).exists() else seat1) / line["file"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == line["sha256"]
    assert [e["kind"] for e in index(seat1)] == ["participant", "recovered"]


def test_the_same_bytes_again_change_nothing_and_nothing_is_overwritten(tmp_path: Path):
    data = tmp_path / "data"
    other = BUNDLE + b"other"

    async def scenario():
        async with served(tmp_path, data_dir=data) as s:
            [token, _] = await seat_tokens(s)
            status, first = await upload(s.client, token, BUNDLE, kind="interim", label="episode1")
            assert status == 201
            status, again = await upload(s.client, token, BUNDLE, kind="interim", label="episode1")
            assert status == 200 and again["duplicate"] is True and again["path"] == first["path"]
            # The same bytes as another kind are another file; other bytes never replace a stored file.
            status, final = await upload(s.client, token, BUNDLE)
            assert status == 201 and final["path"] != first["path"]
            status, changed = await upload(s.client, token, other, kind="interim", label="episode1")
            assert status == 201 and changed["path"] not in (first["path"], final["path"])
            # A different file already holding the name (same sha prefix, other bytes): a new name, never replaced.
            taken = data / changed["path"]
            squatter = taken.read_bytes()
            taken.unlink()
            taken.write_bytes(b"PK\x03\x04 someone else's bytes")
            status, moved = await upload(s.client, token, other, kind="interim", label="episode1")
            assert status == 201 and moved["path"] == changed["path"].replace(".zip", "-1.zip")
            assert taken.read_bytes() == b"PK\x03\x04 someone else's bytes"
            assert (data / moved["path"]).read_bytes() == squatter
            return first

    run(scenario())
    seat0 = data / "pilot" / "s1" / "seat0"
    lines = index(seat0)
    assert len(lines) == 4, lines  # one line per file stored: the duplicate added none
    assert [line["file"] for line in lines] == [line["file"] for line in lines if (seat0 / line["file"]).is_file()]


def test_a_bad_kind_or_label_is_refused_with_a_clear_message(tmp_path: Path):
    data = tmp_path / "data"

    async def scenario():
        async with served(tmp_path, data_dir=data) as s:
            [token, _] = await seat_tokens(s)
            status, text = await upload(s.client, token, BUNDLE, kind="draft")
            assert status == 400 and "kind 'draft' is not one of " + ", ".join(KINDS) in text
            for label in ("Episode1", "../x", "a" * 41, "with space", "ep_1"):
                status, text = await upload(s.client, token, BUNDLE, kind="interim", label=label)
                assert status == 400 and "must be 1 to 40 lower-case letters, digits or '-'" in text, label
            assert await upload(s.client, token, BUNDLE, label="a" * 40) == (201, await _ok_body(BUNDLE, "a" * 40))

    async def _ok_body(data_bytes: bytes, label: str) -> dict:
        digest = hashlib.sha256(data_bytes).hexdigest()
        return {"ok": True, "path": f"pilot/s1/seat0/final-{label}-{digest[:16]}.zip", "sha256": digest,
                "bytes": len(data_bytes), "duplicate": False, "kind": "final", "label": label}

    run(scenario())
    stored = sorted(p.name for p in (data / "pilot" / "s1" / "seat0").iterdir())
    assert len(stored) == 2 and INDEX in stored  # only the good upload, and its index line
    assert not list((data / ".incoming").iterdir())
