"""The example studies in real Chromium, served from their shipped TOML files through the real server.

Each test copies an example's config with short episodes and ``test_mode = true`` (for the autopilot), plays
one complete session on autopilot and checks the downloads with the real ``compare`` / ``validate`` commands.
Pong and the kitchen pair two participants; the human-AI kitchen is a room of one, the partner being the Python
bot named in the config.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from players import Player, StudyServer, play_to_the_end, run_cli, wait_for

from pyodide_runtime.host.study_config import example_config

pytestmark = pytest.mark.browser

MAX_STEPS = 120


def short_config(name: str, into: Path) -> Path:
    """The example's TOML with one short episode and test mode on (edited as text: the file itself is tested)."""
    text = example_config(name).read_text()
    text, n_steps = re.subn(r"max_steps = \d+", f"max_steps = {MAX_STEPS}", text)
    text, n_episodes = re.subn(r"(?m)^episodes = \d+", "episodes = 1", text)
    assert n_steps == 1 and n_episodes == 1, "the example config no longer has max_steps / episodes"
    path = into / f"{name}.toml"
    path.write_text("test_mode = true\n" + text)
    return path


def play(assets_dir: Path, tmp_path: Path, name: str, seats: int) -> tuple[list[Path], list[dict]]:
    config = short_config(name, tmp_path)
    bundles, statuses = play_to_the_end(assets_dir, tmp_path, config,
                                        [f"participant=P{i}&autopilot=random&seed={i + 1}" for i in range(seats)], 75)
    for s in statuses:
        assert s["phase"] == "ended" and s["outcome"] == "complete", s
        assert not s["errors"], s["errors"]
        assert s["confirmed_frames"] == MAX_STEPS, s
        assert s["rendered_frames"] > 30, "the draw list was painted"
        assert s["autopilot"]["mode"] == "random"
    validated = run_cli("validate", *map(str, bundles))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    for bundle in bundles:  # re-simulated from the bundle alone, every canonical row is reproduced
        verified = run_cli("verify", str(bundle))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    return bundles, statuses


@pytest.mark.parametrize("name", ["pong", "kitchen"])
def test_two_player_example_plays_a_session_and_exports_match(assets_dir, tmp_path, name):
    bundles, statuses = play(assets_dir, tmp_path, name, seats=2)
    compared = run_cli("compare", str(bundles[0]), str(bundles[1]))
    assert compared.returncode == 0, compared.stdout
    assert {s["seat"] for s in statuses} == {0, 1}


def test_human_ai_example_is_a_room_of_one_with_a_python_partner(assets_dir, tmp_path):
    import csv
    import io
    import zipfile

    bundles, (status,) = play(assets_dir, tmp_path, "human_ai", seats=1)
    with zipfile.ZipFile(bundles[0]) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("frames.csv").decode())))
    partner = [r for r in rows if r["agent"] == "cook_1"]
    human = [r for r in rows if r["agent"] == "cook_0"]
    assert len(partner) == len(human) == MAX_STEPS
    assert all(r["seat"] == "" for r in partner) and all(r["seat"] == "0" for r in human)
    assert {r["action"] for r in partner} - {"0"}, "the Python partner moved"
    assert status["seat"] == 0 and status["transport"] == "solo"


def test_the_complete_kitchen_study_walks_every_scene(assets_dir, tmp_path):
    """The shipped kitchen_study, shortened: consent to completion code, with practice, screening and a survey."""
    import json
    import zipfile
    from playwright.sync_api import sync_playwright

    text = example_config("kitchen_study").read_text()
    text, n_steps = re.subn(r"max_steps = \d+", f"max_steps = {MAX_STEPS}", text)
    text, n_between = re.subn(r"between_episodes_ms = \d+", "between_episodes_ms = 1000", text)
    text, n_read = re.subn(r"min_seconds = \d+", "min_seconds = 1", text)
    assert (n_steps, n_between, n_read) == (2, 1, 1), "the example no longer has these settings"
    config = tmp_path / "kitchen_study.toml"
    config.write_text("test_mode = true\n" + text)
    with StudyServer(tmp_path / "server", config, assets=assets_dir, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"p{i}", tmp_path / f"p{i}") for i in range(2)]
        try:
            for i, p in enumerate(players):
                p.open(f"{server.url}/?PROLIFIC_PID=K{i}&autopilot=random&seed={i + 1}")
            try:
                bundles = wait_for(lambda: (lambda b: b if all(b) else None)([p.bundles() for p in players]), 150,
                                   "both participants' exports")
            except TimeoutError as exc:
                for p in players:
                    p.save_evidence(tmp_path / "evidence")
                pytest.fail(f"{exc}; evidence in {tmp_path / 'evidence'}")
            statuses = [p.status() for p in players]
            codes = [p.page.evaluate("document.querySelector('[data-completion-code]')?.textContent") for p in players]
        finally:
            for p in players:
                p.close()
    exports = [b[0] for b in bundles]
    compared = run_cli("compare", *map(str, exports))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    validated = run_cli("validate", *map(str, exports))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert codes == ["KITCHEN1", "KITCHEN1"]
    for export, status in zip(exports, statuses):
        assert [s["kind"] for s in status["record"]["scenes"]] == [
            "consent", "instructions", "practice", "waiting", "game", "survey", "end"]
        with zipfile.ZipFile(export) as z:
            record = json.loads(z.read("participant/record.json"))["record"]
            answered = {a["question_id"] for a in record["answers"] if a["answer"] is not None}
        assert {"teamwork", "partner_human", "age"} <= answered
        assert status["outcome"] == "complete" and status["between_episode_holds"] == 1
