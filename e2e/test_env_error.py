"""An env that raises mid-session, in two real Chromium pages through the real server with the built wheel.

The study's env is a single file (``tests/env_fixtures/raises_mid_session.py``, served to the pages) whose
``step`` raises ZeroDivisionError on seat 0 from frame 90 on. Both participants must get their download (and
upload): seat 0's outcome ``error``, seat 1's ``partial``, both valid, with the frames both confirmed equal. Each
page shows a plain message and no traceback (the traceback goes to the console and the export).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO
from players import Player, StudyServer, run_cli, wait_for

from pyodide_runtime.host.data import load

pytestmark = pytest.mark.browser

FIXTURE = REPO / "tests" / "env_fixtures" / "raises_mid_session.py"
FAULT_AT = 90
STUDY = {
    "title": "Coin Chase",
    "instructions": "Collect the coins with the arrow keys.",
    "test_mode": True,
    "env_config": {"max_steps": 900, "target_score": 1000, "fault_at": FAULT_AT, "fault_seat": 0},
    "session": {"players": 2, "fps": 30, "episodes": 1, "seed": 7},
}
MESSAGES = {
    "error": "The game stopped because of an error. Your data has been saved.",
    "partial": "Your partner's game stopped because of an error. Your data has been saved.",
}


def _settled(status: dict[str, Any]) -> bool:
    upload = status.get("upload") or {}
    return str(status.get("download", "")).startswith("saved") and upload.get("state") not in (None, "uploading")


def _metadata(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as z:
        return json.loads(z.read("metadata.json"))


def test_an_env_error_mid_session_saves_both_participants_data(assets_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    with StudyServer(tmp_path / "server", STUDY, assets=assets_dir, env=f"{FIXTURE}:make_env") as server, \
            sync_playwright() as pw:
        players = [Player(pw, name, tmp_path / name) for name in ("a", "b")]
        try:
            for i, p in enumerate(players):
                p.open(f"{server.url}/?participant=P{i}&autopilot=random&seed={i + 1}")

            def done():
                found = [p.bundles() for p in players]
                statuses = [p.status() for p in players]
                return (found, statuses) if all(found) and all(map(_settled, statuses)) else None

            try:
                found, statuses = wait_for(done, 150, "both bundles, downloaded and uploaded")
            except TimeoutError as exc:
                evidence = tmp_path / "evidence"
                for p in players:
                    p.save_evidence(evidence)
                pytest.fail(f"{exc}; consoles, statuses and screenshots saved in {evidence}")
            texts = [p.page.inner_text("body") for p in players]
            consoles = [list(p.console) for p in players]
            uploaded = sorted(server.data_dir.rglob("final-*.zip"))
        finally:
            for p in players:
                p.close()

    by_seat = {s["seat"]: i for i, s in enumerate(statuses)}
    assert sorted(by_seat) == [0, 1], statuses
    failed, partner = statuses[by_seat[0]], statuses[by_seat[1]]
    reason = f"the env raised ZeroDivisionError in step at frame {FAULT_AT}"
    assert failed["phase"] == "ended" and failed["outcome"] == "error" and failed["end_reason"] == reason, failed
    assert failed["error"]["kind"] == "ZeroDivisionError" and failed["error"]["where"] == "step", failed["error"]
    assert re.fullmatch(r"raises_mid_session\.py:\d+", failed["error"]["location"]), failed["error"]
    assert partner["phase"] == "ended" and partner["outcome"] == "partial", partner
    assert partner["end_reason"] == "seat 0 stopped: its env raised an error", partner
    for s in statuses:
        assert not s["errors"], s["errors"]
        assert s["confirmed_frames"] > 60, s
        assert s["upload"]["state"] == "uploaded", s["upload"]

    # What each page shows: the plain message, never the traceback (that is in the console and the export).
    for i, s in enumerate(statuses):
        assert MESSAGES[s["outcome"]] in texts[i], texts[i]
        assert "Traceback" not in texts[i] and "ZeroDivisionError" not in texts[i], texts[i]
    assert any("Traceback" in line and "ZeroDivisionError" in line for line in consoles[by_seat[0]]), consoles

    bundles = [found[i][0] for i in range(2)]
    validated = run_cli("validate", *map(str, bundles))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for i, s in enumerate(statuses):
        meta = _metadata(bundles[i])
        assert meta["participant_local"]["session_outcome"] == s["outcome"]
        assert meta["participant_local"]["end_reason"] == s["end_reason"]
        assert meta["canonical"]["confirmed_frames"] == s["confirmed_frames"]
    network = json.loads(zipfile.ZipFile(bundles[by_seat[0]]).read("diagnostics/network.json"))
    assert "ZeroDivisionError: division by zero" in network["stats"]["error"]["traceback"]
    # The frames both confirmed are the same rows on both sides.
    both = min(s["confirmed_frames"] for s in statuses)
    rows = [[r for r in load(b, backend="python").frames if r["global_frame"] < both] for b in bundles]
    assert rows[0] == rows[1] and len(rows[0]) == 2 * both
    # Uploaded exactly as downloaded.
    assert {p.stem.rsplit("-", 1)[1] for p in uploaded} >= {s["bundle_sha256"][:16] for s in statuses}
