"""``[[scenes]]`` in the study config: defaults, normalisation, every kind of bad input, images, practice, files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from server_support import make_assets

from pyodide_runtime.host.assets import AssetSet
from pyodide_runtime.host.server.study import StudyError, load_study, validate_env
from pyodide_runtime.host.study_config import (
    IMAGE_MAX_BYTES,
    SCENE_KEYS,
    StudyConfigError,
    load_study_config,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32

HEAD = """
completion_url = "https://example.org/done"
[env]
spec = "pyodide_runtime.examples.kitchen:make_env"
config = { max_steps = 40 }
[session]
players = 2
between_episodes_ms = 3000
"""

FULL = HEAD + """
[[scenes]]
kind = "consent"
text = "Do you agree?"
agree = "Yes"

[[scenes]]
kind = "instructions"
id = "how"
title = "How to play"
text = "# Moves\\n\\n![the map](img/map.png) and **more**"
min_seconds = 5
shuffle = "intro"

[[scenes]]
kind = "instructions"
text = "Second page"
shuffle = "intro"

[[scenes]]
kind = "practice"
episodes = 2
bots = { cook_1 = "idle" }
env_config = { max_steps = 20 }

[[scenes]]
kind = "waiting"
timeout_s = 120
timeout_code = "NOPARTNER"
max_rtt_ms = 250
max_requeues = 1
max_sessions = 40

[[scenes]]
kind = "game"
text = "Cook!"

[[scenes]]
kind = "survey"
button = "Send"

[[scenes.questions]]
id = "fun"
kind = "likert"
prompt = "How much fun was it?"
labels = ["none", "a lot"]

[[scenes.questions]]
id = "colour"
kind = "choice"
prompt = "Favourite colour?"
options = ["red", "blue"]
multiple = true

[[scenes.questions]]
id = "age"
kind = "number"
prompt = "Age?"
min = 18
max = 99
integer = true
required = false

[[scenes.questions]]
id = "comments"
kind = "text"
prompt = "Anything else?"
max_length = 500
required = false

[[scenes]]
kind = "end"
completion_code = "DONE123"
redirect_after_s = 10
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "map.png").write_bytes(PNG)
    return tmp_path


def write(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_every_scene_field_is_normalised(folder):
    config = load_study_config(write(folder, FULL))
    scenes = config.page["scenes"]
    assert [s["id"] for s in scenes] == ["consent", "how", "instructions-2", "practice", "waiting", "game", "survey",
                                         "end"]
    assert scenes[0] == {"kind": "consent", "id": "consent", "title": None, "shuffle": None, "text": "Do you agree?",
                         "agree": "Yes", "decline": "I do not agree"}
    assert scenes[1] == {"kind": "instructions", "id": "how", "title": "How to play", "shuffle": "intro",
                         "text": "# Moves\n\n![the map](/study-files/img/map.png) and **more**", "button": "Continue",
                         "min_seconds": 5}
    assert scenes[2]["min_seconds"] == 0 and scenes[2]["button"] == "Continue"
    assert scenes[3] == {"kind": "practice", "id": "practice", "title": None, "shuffle": None, "episodes": 2,
                         "bots": {"cook_1": "idle"}, "env_config": {"max_steps": 20}, "text": None}
    assert scenes[4] == {"kind": "waiting", "id": "waiting", "title": None, "shuffle": None, "timeout_s": 120,
                         "timeout_text": scenes[4]["timeout_text"], "timeout_code": "NOPARTNER",
                         "timeout_url": "https://example.org/done", "max_rtt_ms": 250, "max_requeues": 1,
                         "text": None, "max_sessions": 40}
    assert scenes[4]["timeout_text"].startswith("No partner could be found")
    assert scenes[6]["questions"] == [
        {"id": "fun", "kind": "likert", "prompt": "How much fun was it?", "required": True, "scale": 7,
         "labels": ["none", "a lot"]},
        {"id": "colour", "kind": "choice", "prompt": "Favourite colour?", "required": True,
         "options": ["red", "blue"], "multiple": True},
        {"id": "age", "kind": "number", "prompt": "Age?", "required": False, "min": 18, "max": 99, "integer": True},
        {"id": "comments", "kind": "text", "prompt": "Anything else?", "required": False, "max_length": 500},
    ]
    assert scenes[6]["button"] == "Send"
    assert scenes[7] == {"kind": "end", "id": "end", "title": None, "shuffle": None,
                         "text": "Thank you! You have finished the study.", "completion_code": "DONE123",
                         "redirect_url": "https://example.org/done", "redirect_after_s": 10}
    assert config.page["session"]["between_episodes_ms"] == 3000
    assert config.max_sessions == 40
    assert dict(config.study_files) == {"img/map.png": (folder / "img" / "map.png").resolve()}
    assert {s["kind"] for s in scenes} == set(SCENE_KEYS), "the example covers every kind"


def test_defaults_fill_practice_from_the_study_and_ids_number_repeats(folder):
    text = HEAD.replace("players = 2", "players = 1") + """
[bots]
cook_1 = "random"
[[scenes]]
kind = "practice"
[[scenes]]
kind = "game"
[[scenes]]
kind = "survey"
questions = [{ id = "a", kind = "text", prompt = "?" }]
[[scenes]]
kind = "survey"
questions = [{ id = "b", kind = "likert", prompt = "?" }]
"""
    config = load_study_config(write(folder, text))
    scenes = config.page["scenes"]
    assert scenes[0]["bots"] == {"cook_1": "random"} and scenes[0]["env_config"] == {"max_steps": 40}
    assert scenes[0]["episodes"] == 1
    assert [s["id"] for s in scenes] == ["practice", "game", "survey-1", "survey-2"]
    assert scenes[2]["questions"][0]["max_length"] == 1000 and scenes[3]["questions"][0]["scale"] == 7
    assert config.max_sessions is None and not config.study_files


def test_without_scenes_nothing_changes(folder):
    config = load_study_config(write(folder, HEAD))
    assert "scenes" not in config.page and config.max_sessions is None and not config.study_files


def test_the_normalised_form_loads_back_to_itself_as_json(folder):
    page = load_study_config(write(folder, FULL)).page
    again = load_study_config(write(folder, json.dumps(page), "study.json"))
    assert again.page == page
    assert dict(again.study_files) == {"img/map.png": (folder / "img" / "map.png").resolve()}


GAME = '[[scenes]]\nkind = "game"\n'
WAIT = '[[scenes]]\nkind = "waiting"\n'

BAD = [
    ('scenes = 3', "scenes: must be a list of scene tables"),
    ('[[scenes]]\ntext = "x"\n', "scenes[0].kind: is required"),
    ('[[scenes]]\nkind = "intro"\n', "scenes[0].kind: unknown scene kind 'intro'"),
    ('[[scenes]]\nkind = "gmae"\n', "did you mean 'game'?"),
    (WAIT + GAME + '[[scenes]]\nkind = "consent"\ntxt = "x"\n', "scenes[2].txt: unknown key; did you mean 'text'?"),
    (WAIT + GAME + '[[scenes]]\nkind = "consent"\n', "scenes[2].text: is required"),
    (WAIT + GAME + '[[scenes]]\nkind = "consent"\ntext = 3\n', "scenes[2].text: must be a string (got 3)"),
    (WAIT, "scenes: needs exactly one scene of kind 'game' (found 0)"),
    (WAIT + GAME + GAME, "scenes: needs exactly one scene of kind 'game' (found 2)"),
    (GAME, "needs exactly one scene of kind 'waiting'"),
    (GAME + WAIT, "scenes[1]: the waiting scene must come before the game scene"),
    (WAIT + GAME + '[[scenes]]\nkind = "end"\n[[scenes]]\nkind = "instructions"\ntext = "x"\n',
     "scenes[2]: the end scene must be the last scene"),
    (WAIT + GAME + '[[scenes]]\nkind = "game"\nid = "Game!"\n', "scenes[2].id: must be 1 to 40 of a-z"),
    (WAIT + '[[scenes]]\nkind = "game"\nid = "waiting"\n', "scenes[1].id: 'waiting' is already the id of scenes[0]"),
    (WAIT + '[[scenes]]\nkind = "game"\nshuffle = "a"\n', "scenes[1].shuffle: only scenes of kind"),
    ('[[scenes]]\nkind = "instructions"\ntext = "x"\nshuffle = "a"\n' + WAIT + GAME,
     "scenes[0].shuffle: only this scene has the label 'a'"),
    ('[[scenes]]\nkind = "instructions"\ntext = "x"\nmin_seconds = -1\n' + WAIT + GAME,
     "scenes[0].min_seconds: must be a number of seconds, at least 0"),
    ('[[scenes]]\nkind = "practice"\nepisodes = 0\n' + WAIT + GAME,
     "scenes[0].episodes: must be an integer between 1 and 1000 (got 0)"),
    ('[[scenes]]\nkind = "practice"\nbots = { cook_1 = "smart" }\n' + WAIT + GAME,
     "scenes[0].bots.cook_1: unknown bot 'smart'"),
    ('[[scenes]]\nkind = "practice"\nenv_config = 3\n' + WAIT + GAME, "scenes[0].env_config: must be a table"),
    ('[[scenes]]\nkind = "practice"\nmax_steps = 3\n' + WAIT + GAME, "scenes[0].max_steps: unknown key"),
    ('[[scenes]]\nkind = "waiting"\ntimeout_s = 0\n' + GAME, "scenes[0].timeout_s: must be a number of seconds, "
                                                             "above 0"),
    ('[[scenes]]\nkind = "waiting"\ntimeout_url = "javascript:x"\n' + GAME,
     "scenes[0].timeout_url: must be an http(s) address"),
    ('[[scenes]]\nkind = "waiting"\nmax_rtt_ms = 0\n' + GAME, "scenes[0].max_rtt_ms: must be a number above 0"),
    ('[[scenes]]\nkind = "waiting"\nmax_requeues = -1\n' + GAME, "scenes[0].max_requeues: must be an integer"),
    ('[[scenes]]\nkind = "waiting"\nmax_sessions = 0\n' + GAME,
     "scenes[0].max_sessions: must be an integer between 1 and 1000000 (got 0)"),
    ('[[scenes]]\nkind = "waiting"\nmax_sessions = 2.5\n' + GAME, "scenes[0].max_sessions: must be an integer"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\n', "scenes[2].questions: is required"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = []\n', "scenes[2].questions: must be a list of one"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "likret", prompt = "?" }]\n',
     "scenes[2].questions[0].kind: unknown question kind 'likret'; did you mean 'likert'?"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ kind = "text", prompt = "?" }]\n',
     "scenes[2].questions[0].id: is required"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a b", kind = "text", prompt = "?" }]\n',
     "scenes[2].questions[0].id: must be 1 to 40 of A-Z"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "text" }]\n',
     "scenes[2].questions[0].prompt: is required"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "text", prompt = "?", '
     'scale = 5 }]\n', "scenes[2].questions[0].scale: unknown key"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "likert", prompt = "?", '
     'scale = 12 }]\n', "scenes[2].questions[0].scale: must be an integer between 2 and 11"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "likert", prompt = "?", '
     'labels = ["x"] }]\n', "scenes[2].questions[0].labels: must be two strings"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "choice", prompt = "?" }]\n',
     "scenes[2].questions[0].options: is required"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "choice", prompt = "?", '
     'options = ["x", "x"] }]\n', "scenes[2].questions[0].options: must be a list of two or more different"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "number", prompt = "?", '
     'min = 5, max = 1 }]\n', "scenes[2].questions[0].max: must be at least min"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "text", prompt = "?", '
     'required = "yes" }]\n', "scenes[2].questions[0].required: must be true or false"),
    (WAIT + GAME + '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "text", prompt = "?" }]\n'
     '[[scenes]]\nkind = "survey"\nquestions = [{ id = "a", kind = "text", prompt = "?" }]\n',
     "scenes[3].questions[0].id: 'a' is already the id of another question"),
    (WAIT + GAME + '[[scenes]]\nkind = "end"\nredirect_url = "ftp://x"\n',
     "scenes[2].redirect_url: must be an http(s) address"),
    (WAIT + GAME + '[[scenes]]\nkind = "end"\nredirect_after_s = "soon"\n',
     "scenes[2].redirect_after_s: must be a number of seconds"),
    ('[session]\nplayers = 1\n' + WAIT + GAME, "scenes[0]: a waiting scene needs session.players > 1"),
    ('[[scenes]]\nkind = ["game"]\n', "scenes[0].kind: unknown scene kind ['game']"),
    (WAIT + '[[scenes]]\nkind = "game"\nid = "game\\n"\n', "scenes[1].id: must be 1 to 40 of a-z"),
    ('[[scenes]]\nkind = "instructions"\ntext = "x"\nshuffle = "a"\n' + WAIT + GAME
     + '[[scenes]]\nkind = "instructions"\ntext = "y"\nshuffle = "a"\n',
     "scenes[3].shuffle: the scenes labelled 'a' are on both sides of the waiting or game scene"),
    ('[[scenes]]\nkind = "instructions"\ntext = "see ![map](img/map.png \\"Map\\")"\n' + WAIT + GAME,
     "scenes[0].text: an image must be written"),
    ('[session]\nbetween_episodes_ms = -5\n', "session.between_episodes_ms: must be between 0 and 600000 (got -5)"),
    ('[session]\nbetween_episodes_ms = 1.5\n', "session.between_episodes_ms: must be an integer (got 1.5)"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_scenes_name_the_file_and_the_field(folder, text, message):
    path = write(folder, text)
    with pytest.raises(StudyConfigError) as caught:
        load_study_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def image_study(folder: Path, target: str) -> Path:
    return write(folder, f'[[scenes]]\nkind = "instructions"\ntext = "see ![x]({target})"\n' + WAIT + GAME)


@pytest.mark.parametrize(("target", "message"), [
    ("img/missing.png", "image 'img/missing.png': file"),
    ("img/map.bmp", "only png, jpg, jpeg, gif, webp, svg files can be shown"),
    ("../outside.png", "must stay inside the study folder"),
    ("img/.hidden.png", "must stay inside the study folder"),
    ("https://example.org/x.png", "images must be files in the study folder"),
    ("/etc/x.png", "images must be files in the study folder"),
    ("img/big.png", f"images may be at most {IMAGE_MAX_BYTES} bytes"),
])
def test_bad_images(folder, target, message):
    (folder / "img" / "map.bmp").write_bytes(b"BM")
    (folder.parent / "outside.png").write_bytes(PNG)
    (folder / "img" / ".hidden.png").write_bytes(PNG)
    (folder / "img" / "big.png").write_bytes(b"\0" * (IMAGE_MAX_BYTES + 1))
    path = image_study(folder, target)
    with pytest.raises(StudyConfigError) as caught:
        load_study_config(path)
    assert str(caught.value).startswith(f"{path}: scenes[0].text: ")
    assert message in str(caught.value)


def test_a_symlink_out_of_the_folder_is_refused(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "secret.png"
    elsewhere.write_bytes(PNG)
    (folder / "img" / "link.png").symlink_to(elsewhere)
    with pytest.raises(StudyConfigError, match="must stay inside the study folder"):
        load_study_config(image_study(folder, "img/link.png"))


def test_practice_must_leave_exactly_one_human(folder):
    ok = write(folder, FULL)
    validate_env(load_study(None, ok))  # the practice gives cook_1 a bot: one human left
    two = write(folder, FULL.replace('bots = { cook_1 = "idle" }\n', ""), "two.toml")
    with pytest.raises(StudyError, match=r"scenes\[3\] \(practice 'practice'\): practice is played alone, so "
                                         r"exactly one agent must be left to the participant, but 2 are"):
        validate_env(load_study(None, two))


def test_study_exposes_files_and_max_sessions_and_describes_scenes(folder):
    study = load_study(None, write(folder, FULL))
    assert study.max_sessions == 40
    assert study.study_files == {"img/map.png": (folder / "img" / "map.png").resolve()}
    described = study.describe()
    assert described["config"]["scenes"][1]["text"].endswith("![the map](/study-files/img/map.png) and **more**")
    assert described["config"]["session"]["between_episodes_ms"] == 3000


def test_study_files_route_serves_only_the_referenced_files(folder, tmp_path_factory):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from pyodide_runtime.host.server.files import FileRoutes

    (folder / "study.toml").write_text(FULL)
    (folder / "img" / "other.png").write_bytes(PNG)
    (folder / "img" / "pic.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    study = load_study(None, folder / "study.toml")
    assets_root = make_assets(tmp_path_factory.mktemp("assets"))
    assets = AssetSet(assets_root, json.loads((assets_root / "manifest.json").read_text()))
    static = tmp_path_factory.mktemp("static")
    (static / "index.html").write_text("<html></html>")
    routes = FileRoutes(static, static, assets, None, None, study_files={**study.study_files,
                                                                         "img/pic.svg": folder / "img" / "pic.svg"})

    async def run() -> None:
        app = web.Application()
        routes.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            ok = await client.get("/study-files/img/map.png")
            assert ok.status == 200 and await ok.read() == PNG
            assert ok.headers["Content-Type"] == "image/png"
            assert "max-age" in ok.headers["Cache-Control"]
            assert ok.headers["X-Content-Type-Options"] == "nosniff"
            svg = await client.get("/study-files/img/pic.svg")
            assert svg.status == 200 and svg.headers["Content-Type"] == "image/svg+xml"
            assert "sandbox" in svg.headers["Content-Security-Policy"]
            for bad in ("img/other.png", "study.toml", "img/../study.toml", "img%2F..%2Fstudy.toml",
                        "%2Fetc%2Fpasswd", "img/map.png/"):
                response = await client.get("/study-files/" + bad)
                assert response.status == 404, bad

    asyncio.run(run())


def test_the_documented_example_loads_and_covers_every_field(tmp_path):
    """docs/study-config.md's complete scenes example is a valid config that uses every scene and question key."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "study-config.md").read_text()
    section = doc[doc.index("## Scenes"):doc.index("## The JSON layout")]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "kitchen.png").write_bytes(PNG)
    config = load_study_config(write(tmp_path, example))
    scenes = config.page["scenes"]
    from pyodide_runtime.host.study_config import QUESTION_KEYS

    raw = __import__("tomllib").loads(example)["scenes"]
    used = {(s["kind"], k) for s in raw for k in s}
    for kind, keys in SCENE_KEYS.items():
        for key in ("kind", "id", "title", *keys):
            assert (kind, key) in used or key in ("id", "title"), f"the example never sets {kind}.{key}"
            assert f"| `{key}` |" in section or key == "kind", f"{kind}.{key} is not documented"
    questions = [q for s in raw for q in s.get("questions", [])]
    for kind, keys in QUESTION_KEYS.items():
        for key in ("id", "kind", "prompt", "required", *keys):
            assert any(q["kind"] == kind and key in q for q in questions) or key == "required", (kind, key)
    assert any(s.get("shuffle") for s in raw)
    assert "/study-files/images/kitchen.png" in scenes[1]["text"]
    validate_env(load_study(None, tmp_path / "study.toml"))
