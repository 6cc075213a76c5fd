"""The participant part of an export: attach keeps the game bytes, validate checks it, compare ignores it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from pyodide_runtime.bridge import Bridge, attach_participant, practice_study_json
from pyodide_runtime.export.bundle import open_bundle
from pyodide_runtime.export.participant import ParticipantError, attach
from pyodide_runtime.host.compare import CompareError, compare
from pyodide_runtime.host.data import load
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate

KITCHEN = "pyodide_runtime.examples.kitchen:make_env"
COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"


def study(spec: str = COIN_CHASE) -> dict:
    return {"study": "attach_test", "env": {"spec": spec, "function": "make_env", "file": None}, "players": 2,
            "config": {"env_config": {"max_steps": 30}, "session": {"players": 2, "episodes": 1, "seed": 2},
                       "scenes": [{"kind": "waiting", "id": "waiting"}, {"kind": "game", "id": "game"}]}}


@pytest.fixture(scope="module")
def game_bundles() -> list[bytes]:
    bridges = [Bridge(json.dumps(study()), s, room="room-attach", participant=f"p{s}") for s in range(2)]
    net = Network(seed=1, default=LinkSpec(latency_ms=40))
    now, bundles = 0.0, [None, None]
    while not all(b.session.ended for b in bridges):
        assert now < 30_000
        for seat, b in enumerate(bridges):
            out = b.tick(now + seat * 5, (int(now) // 300 + seat) % 5, net.deliver(now + seat * 5, seat))
            for to, data, _ in out["messages"]:
                net.send(now + seat * 5, seat, to, data)
            if out["bundle"] is not None:
                bundles[seat] = out["bundle"]
        now += 1000 / 30
    assert all(bundles)
    return bundles


def record(answer: object, *, completed: bool = True, with_questions: bool = False) -> dict:
    rec = {
        "page_started_utc": "2026-01-01T00:00:00.000Z",
        "scenes": [{"index": 0, "id": "waiting", "kind": "waiting", "entered_ms": 10.5, "left_ms": 900.25,
                    "outcome": "matched"},
                   {"index": 1, "id": "game", "kind": "game", "entered_ms": 900.25, "left_ms": 5000.0,
                    "outcome": "complete"},
                   {"index": 2, "id": "survey", "kind": "survey", "entered_ms": 5000.0,
                    "left_ms": 9000.0 if completed else None, "outcome": "completed" if completed else None}],
        "answers": [{"scene_id": "survey", "question_id": "fun", "kind": "likert", "answer": answer,
                     "answered_ms": 6000.0},
                    {"scene_id": "survey", "question_id": "colour", "kind": "choice", "answer": ["red", "blue"],
                     "answered_ms": 7000.0}],
        "assignment": [{"label": "intro", "order": ["how", "rules"]}],
        "waiting": [{"attempt": 1, "event": "joined", "at_ms": 10.5, "rtt_ms": None, "detail": None},
                    {"attempt": 1, "event": "screened", "at_ms": 800.0, "rtt_ms": 42.5, "detail": "ok, 42 ms"}],
        "consent": "agreed",
        "completion_code": "ABC",
    }
    if with_questions:
        rec["questions"] = [{"scene_id": "survey", "question_id": "fun", "kind": "likert", "required": True},
                            {"scene_id": "survey", "question_id": "age", "kind": "number", "required": False}]
    return rec


def rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return out.getvalue()


def test_attach_keeps_every_game_entry_and_adds_the_tables(game_bundles):
    data, sha = attach(game_bundles[0], record(5))
    assert sha == hashlib.sha256(data).hexdigest()
    game, both = open_bundle(game_bundles[0]), open_bundle(data)
    assert list(both)[:len(game)] == list(game)
    assert all(both[name] == body for name, body in game.items()), "game entries are byte-identical"
    assert {n for n in both if n not in game} == {
        "participant/scenes.csv", "participant/answers.csv", "participant/assignment.csv", "participant/waiting.csv",
        "participant/record.json", "participant/manifest.json"}
    assert both["participant/scenes.csv"].decode() == (
        "scene_index,scene_id,kind,entered_ms,left_ms,duration_ms,outcome\n"
        "0,waiting,waiting,10.5,900.25,889.75,matched\n"
        "1,game,game,900.25,5000.0,4099.75,complete\n"
        "2,survey,survey,5000.0,9000.0,4000.0,completed\n")
    assert both["participant/answers.csv"].decode().splitlines()[1:] == [
        "survey,fun,likert,5,6000.0", 'survey,colour,choice,"[""red"",""blue""]",7000.0']
    assert both["participant/assignment.csv"].decode() == 'label,order\nintro,"[""how"",""rules""]"\n'
    assert both["participant/waiting.csv"].decode().splitlines()[1:] == [
        "1,joined,10.5,,", '1,screened,800.0,42.5,"ok, 42 ms"']
    saved = json.loads(both["participant/record.json"])
    assert saved["schema_version"] == 1 and saved["record"]["completion_code"] == "ABC"
    result = validate(data)
    assert result.ok, result.problems
    assert result.summary["bundle"] == "game+participant" and result.summary["participant_answers"] == 2
    assert attach(game_bundles[0], record(5)) == (data, sha), "deterministic"


def test_compare_of_two_attached_bundles_with_different_answers_is_identical(game_bundles, tmp_path):
    a, _ = attach(game_bundles[0], record(1))
    b, _ = attach(game_bundles[1], record(7))
    (tmp_path / "a.zip").write_bytes(a)
    (tmp_path / "b.zip").write_bytes(b)
    result = compare(str(tmp_path / "a.zip"), str(tmp_path / "b.zip"))
    assert result.identical, result.report()
    assert any("participant/" in note for note in result.notes)
    assert open_bundle(a)["participant/answers.csv"] != open_bundle(b)["participant/answers.csv"]


def test_participant_only_export_validates(tmp_path):
    data, _ = attach(None, {**record(3), "consent": "declined", "scenes": record(3)["scenes"][:1], "answers": []})
    files = open_bundle(data)
    assert all(name.startswith("participant/") for name in files)
    result = validate(data)
    assert result.ok, result.problems
    assert result.summary["bundle"] == "participant-only"
    (tmp_path / "p.zip").write_bytes(data)
    with pytest.raises(CompareError, match="participant-only"):
        compare(str(tmp_path / "p.zip"), str(tmp_path / "p.zip"))


def broken(data: bytes, path: str, body: bytes, *, fix_manifest: bool = True) -> bytes:
    files = open_bundle(data)
    files[path] = body
    if fix_manifest:
        man = json.loads(files["participant/manifest.json"])
        man["files"][path] = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        files["participant/manifest.json"] = json.dumps(man).encode()
    return rezip(files)


@pytest.mark.parametrize(("path", "body", "fix", "message"), [
    ("participant/answers.csv", b"scene_id,question,kind,answer,answered_ms\n", True, "columns"),
    ("participant/answers.csv", b"scene_id,question_id,kind,answer,answered_ms\nsurvey,fun,likert,{bad,1.0\n",
     True, "answer"),
    ("participant/scenes.csv", b"scene_index,scene_id,kind,entered_ms,left_ms,duration_ms,outcome\nx,a,b,1.0,,,\n",
     True, "scene_index"),
    ("participant/waiting.csv", b"attempt,event,at_ms,rtt_ms,detail\n1,joined,,,\n", True, "at_ms is empty"),
    ("participant/answers.csv", b"scene_id,question_id,kind,answer,answered_ms\n", False, "sha256 or size differs"),
    ("participant/extra.csv", b"x\n", True, "not a participant file"),
])
def test_validate_catches_a_broken_participant_table(game_bundles, path, body, fix, message):
    data, _ = attach(game_bundles[0], record(4))
    problems = validate(broken(data, path, body, fix_manifest=fix)).problems
    assert any(message in p for p in problems), problems


def test_validate_checks_required_answers_when_the_record_lists_the_questions(game_bundles):
    ok, _ = attach(game_bundles[0], record(4, with_questions=True))
    assert validate(ok).ok
    missing, _ = attach(game_bundles[0], record(None, with_questions=True))
    problems = validate(missing).problems
    assert any("required question 'fun' of survey 'survey' has no answer" in p for p in problems), problems
    unfinished, _ = attach(game_bundles[0], record(None, completed=False, with_questions=True))
    assert validate(unfinished).ok, "a survey the participant never completed has no required answers"


def test_attach_refuses_a_malformed_record(game_bundles):
    with pytest.raises(ParticipantError, match=r"record.scenes\[0\].entered_ms: is required"):
        attach(game_bundles[0], {"scenes": [{"index": 0, "id": "x", "kind": "game"}]})
    with pytest.raises(ParticipantError, match=r"record.answers: must be a list"):
        attach(None, {"answers": "yes"})
    with pytest.raises(ParticipantError, match="already has participant/ entries"):
        attach(attach(None, {})[0], {})


def test_practice_bridge_and_attach_participant(game_bundles):
    desc = study(KITCHEN)
    scene = {"kind": "practice", "id": "practice", "episodes": 2, "bots": {"cook_1": "idle"},
             "env_config": {"max_steps": 15}}
    practice_desc = json.loads(practice_study_json(json.dumps(desc), json.dumps(scene)))
    assert practice_desc["players"] == 1 and practice_desc["config"]["session"]["players"] == 1
    assert "scenes" not in practice_desc["config"]
    bridge = Bridge(json.dumps(practice_desc), 0)
    now, bundle, interims = 0.0, None, 0
    while bundle is None:
        assert now < 10_000, "a practice with no peers must run by itself"
        out = bridge.tick(now, 1, [])
        interims += out.get("interim") is not None
        bundle = out["bundle"]
        now += 1000 / 30
    assert bridge.session.outcome == "complete" and interims == 1
    meta = json.loads(open_bundle(bundle)["metadata.json"])["canonical"]
    assert meta["agents"] == ["cook_0", "cook_1"] and meta["seats"] == ["cook_0"]
    assert [e["frames"] for e in meta["episodes"]] == [15, 15]

    data, name, sha = attach_participant(game_bundles[0], json.dumps(record(2)), [bundle, bundle])
    assert name.endswith("_seat0.zip") and sha == hashlib.sha256(data).hexdigest()
    files = open_bundle(data)
    for n in (1, 2):
        assert {k[len(f"participant/practice/{n}/"):]: v for k, v in files.items()
                if k.startswith(f"participant/practice/{n}/")} == open_bundle(bundle)
    result = validate(data)
    assert result.ok, result.problems
    frames = files["participant/practice/2/frames.csv"]
    bad = broken(data, "participant/practice/2/frames.csv", frames.replace(b"cook_1", b"cook_9", 1))
    assert any(p.startswith("participant/practice/2/") for p in validate(bad).problems)

    alone, name, _ = attach_participant(None, json.dumps({"study": "s", "participant": "P 1", "consent": "declined"}),
                                        [])
    assert name == "s_P-1_participant.zip" and validate(alone).ok


def test_data_loader_reads_the_participant_tables(game_bundles):
    data, _ = attach(game_bundles[0], record(6))
    bundle = load(data, backend="python")
    part = bundle.participant
    assert [r["scene_id"] for r in part["scenes"]] == ["waiting", "game", "survey"]
    assert part["scenes"][0]["duration_ms"] == 889.75 and part["scenes"][0]["left_ms"] == 900.25
    assert [bundle.decode(r["answer"]) for r in part["answers"]] == [6, ["red", "blue"]]
    assert part["waiting"][0]["rtt_ms"] is None and part["record"]["consent"] == "agreed"
    assert load(game_bundles[0], backend="python").participant is None
