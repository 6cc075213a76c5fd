"""The study config file: TOML and JSON layouts, error messages, the example studies, and ``serve`` using them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from server_support import REPO, make_assets, run_server_command

from pyodide_runtime.host.headless import launch_server
from pyodide_runtime.host.server.study import StudyError, load_study, validate_env
from pyodide_runtime.host.study_config import (
    SESSION_FIELDS,
    StudyConfigError,
    example_config,
    list_examples,
    load_study_config,
)

FULL = """
title = "Full"
instructions = "Every field."
test_mode = true
away_action = 0

[env]
spec = "env/game.py:make_env"
config = { max_steps = 50, target_score = 3 }

[session]
players = 2
fps = 20
input_delay = 3
max_prediction = 6
episodes = 4
seed = 99
prediction = "default"
away_lease_frames = 40
away_timeout_ms = 30000
disconnect_timeout_ms = 4000
away_silence_timeout_ms = 60000
hash_interval = 15
frame_hash = "full"
max_frames_per_tick = 6
fast_forward_threshold = 10
time_sync_threshold = 3
handshake_resend_ms = 150
between_episodes_ms = 2000
rejoin_grace_ms = 30000
adaptive_delay = true
min_input_delay = 2
max_input_delay = 6

[bots]
player_1 = "random"

[controls]
ArrowUp = 1
Space = 0

[network]
latency_ms = 60
jitter_ms = 10.5
loss = 0.05
reorder = 0.01
reorder_ms = 30
duplicate = 0.02
seed = 4

[network.seats.1]
latency_ms = 120

[relay]
force = true
p2p_timeout_ms = 2500
ice_servers = ["stun:stun.example.org:3478"]

[data]
upload = false
dir = "uploads"
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def full(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "game.py").write_text((REPO / "pyodide_runtime/examples/coin_chase.py").read_text())
    return write(tmp_path, FULL)


def test_every_field_round_trips(full, tmp_path):
    config = load_study_config(full)
    session = {"players": 2, "fps": 20, "input_delay": 3, "max_prediction": 6, "episodes": 4, "seed": 99,
               "prediction": "default", "away_lease_frames": 40, "away_timeout_ms": 30000,
               "disconnect_timeout_ms": 4000, "away_silence_timeout_ms": 60000, "hash_interval": 15,
               "frame_hash": "full", "max_frames_per_tick": 6, "fast_forward_threshold": 10,
               "time_sync_threshold": 3, "handshake_resend_ms": 150, "between_episodes_ms": 2000,
               "rejoin_grace_ms": 30000, "adaptive_delay": True, "min_input_delay": 2, "max_input_delay": 6}
    assert set(session) == set(SESSION_FIELDS), "the example covers every session setting"
    assert config.page == {
        "title": "Full", "instructions": "Every field.", "test_mode": True, "away_action": 0,
        "env_config": {"max_steps": 50, "target_score": 3},
        "session": session,
        "bots": {"player_1": "random"},
        "controls": {"ArrowUp": 1, "Space": 0},
        "network": {"latency_ms": 60, "jitter_ms": 10.5, "loss": 0.05, "reorder": 0.01, "reorder_ms": 30,
                    "duplicate": 0.02, "seed": 4, "seats": {"1": {"latency_ms": 120}}},
        "relay": True, "p2p_timeout_ms": 2500,
    }
    assert config.env_spec == f"{tmp_path / 'env' / 'game.py'}:make_env", "a file spec is relative to the file"
    assert config.data_dir == tmp_path / "uploads" and config.upload is False
    assert config.ice_servers == ("stun:stun.example.org:3478",)
    assert config.players == 2


def test_the_page_form_is_the_json_layout(full, tmp_path):
    """The normalised config written as JSON loads back to itself: JSON and TOML configs mean the same."""
    page = load_study_config(full).page
    again = load_study_config(write(tmp_path, json.dumps(page), "study.json")).page
    assert again == page


def test_json_configs_keep_working(tmp_path):
    old = {"env_config": {"width": 7}, "session": {"players": 3, "fps": 20}, "title": "T", "test_mode": True,
           "controls": {"KeyW": 1}, "network": {"seats": {"1": {"latency_ms": 50}}}, "relay": False}
    config = load_study_config(write(tmp_path, json.dumps(old), "study.json"))
    assert config.page == old and config.env_spec is None and config.players == 3


BAD = [
    ("title = 3", "title: must be a string (got 3)"),
    ("test_mode = 1", "test_mode: must be true or false"),
    ("away_action = -1", "away_action: must be an integer between 0 and 255"),
    ("titel = 'x'", "titel: unknown key; did you mean 'title'?"),
    ("[session]\nfps = 0", "session.fps: must be between 1 and 240 (got 0)"),
    ("[session]\nfps = 30.0", "session.fps: must be an integer (got 30.0)"),
    ("[session]\nplayers = 9", "session.players: must be between 1 and 8 (got 9)"),
    ("[session]\ninput_dealy = 2", "session.input_dealy: unknown key; did you mean 'input_delay'?"),
    ("[session]\nprediction = 'guess'", "session.prediction: must be one of"),
    ("[session]\nframe_hash = 1", "session.frame_hash: must be a string"),
    ("[env]\nspec = 'no_colon'", "env.spec: 'no_colon' must look like"),
    ("[env]\nspec = 'missing.py:make_env'", "env.spec: env file"),
    ("[env]\nconfig = 3", "env.config: must be a table"),
    ("[env]\nconfg = {}", "env.confg: unknown key; did you mean 'config'?"),
    ("[bots]\nplayer_1 = 'smart'", "bots.player_1: unknown bot 'smart'"),
    ("[bots]\nplayer_1 = 1", "bots.player_1: must be a bot name"),
    ("[controls]\nArrowUp = 'up'", "controls.ArrowUp: must be an integer between 0 and 255"),
    ("[network]\nlatency_ms = 50", "network: network conditions are only honoured in test mode"),
    ("test_mode = true\n[network]\nloss = 2", "network.loss: must be a number between 0 and 1"),
    ("test_mode = true\n[network]\nlatency = 5", "network.latency: unknown key; did you mean 'latency_ms'?"),
    ("test_mode = true\n[network.seats]\nx = {}", "network.seats.x: seat keys are seat numbers"),
    ("test_mode = true\n[network.seats.1]\nlos = 0.1", "network.seats.1.los: unknown key; did you mean 'loss'?"),
    ("[relay]\nforce = 'yes'", "relay.force: must be true or false"),
    ("[relay]\nice_servers = ['http://x']", "relay.ice_servers: 'http://x' must start with stun:"),
    ("[relay]\np2p_timeout_ms = -1", "relay.p2p_timeout_ms: must be a number between 0 and 600000"),
    ("[data]\nupload = 'no'", "data.upload: must be true or false"),
    ("[data]\nuplod = true", "data.uplod: unknown key; did you mean 'upload'?"),
    ("[data]\nfolder = 'x'", "data.folder: unknown key; known keys: upload, dir"),
    ("[session\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_values_name_the_file_and_the_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(StudyConfigError) as caught:
        load_study_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_json_errors_name_the_field_too(tmp_path):
    for text, message in [('{"sesion": {}}', "sesion: unknown key; did you mean 'session'?"),
                          ('{"session": {"fps": 500}}', "session.fps: must be between 1 and 240"),
                          ('{"env_config": 3}', "env_config: must be a table"),
                          ("[1]", "must hold a JSON object"), ("{", "not valid JSON")]:
        with pytest.raises(StudyConfigError, match=message.replace("(", r"\(")):
            load_study_config(write(tmp_path, text, "study.json"))


def test_env_comes_from_the_file_or_the_command_line(tmp_path):
    with_env = write(tmp_path, '[env]\nspec = "pyodide_runtime.examples.pong:make_env"\n')
    assert load_study(None, with_env).env_spec == "pyodide_runtime.examples.pong:make_env"
    assert load_study("pyodide_runtime.examples.kitchen:make_env", with_env).env_spec.endswith("kitchen:make_env")
    without = write(tmp_path, 'title = "no env"\n', "bare.toml")
    with pytest.raises(StudyError, match="no env given: pass --env SPEC, set env.spec"):
        load_study(None, without)
    with pytest.raises(StudyError, match="no env given"):
        load_study(None, None)


def test_players_must_match_the_seats_left_to_humans(tmp_path):
    path = write(tmp_path, '[env]\nspec = "pyodide_runtime.examples.kitchen:make_env"\n[session]\nplayers = 1\n')
    with pytest.raises(StudyError, match=r"session.players is 1 but the env has 2 human seat\(s\)"):
        validate_env(load_study(None, path))
    path.write_text(path.read_text() + '[bots]\ncook_1 = "idle"\n')
    assert validate_env(load_study(None, path)) is None
    path.write_text(path.read_text().replace("[env]", "away_action = 6\n[env]"))
    with pytest.raises(StudyError, match=r"away_action 6 is not an action of seat 0 \(0..5\)"):
        validate_env(load_study(None, path))


def test_away_action_reaches_the_game():
    from pyodide_runtime.bridge import Bridge

    study = load_study(None, example_config("kitchen"), "kitchen").describe()
    assert Bridge(study, seat=0).game.default_input(0) == 0
    study["config"]["away_action"] = 5
    game = Bridge(study, seat=1).game
    assert (game.default_input(0), game.default_input(1)) == (5, 5)


def test_examples_are_listed_and_load():
    assert list_examples() == ["coin_chase", "human_ai", "human_ai_onnx", "kitchen", "kitchen_study", "pong"]
    for name in list_examples():
        config = load_study_config(example_config(name))
        page = config.page
        # a study with scenes shows its texts in them; the others have one instructions text
        assert page["title"] and (page.get("instructions") or page.get("scenes")) and page["controls"]
        assert page["session"]["episodes"] >= 1 and page["session"]["fps"] == 30
        env = {"kitchen_study": "kitchen", "human_ai_onnx": "human_ai"}.get(name, name)
        assert config.env_spec == f"pyodide_runtime.examples.{env}:make_env"
        assert validate_env(load_study(None, example_config(name), name)) is None
    flow = load_study_config(example_config("kitchen_study")).page["scenes"]
    assert [s["kind"] for s in flow] == ["consent", "instructions", "practice", "waiting", "game", "survey", "end"]
    assert load_study_config(example_config("human_ai")).players == 1
    with pytest.raises(ValueError, match="no example study 'ponf'; did you mean 'pong'"):
        example_config("ponf")


def test_the_module_needs_no_aiohttp():
    code = ("import sys; sys.modules['aiohttp'] = None; from pyodide_runtime.host import study_config as s; "
            "print(s.load_study_config(s.example_config('pong')).players)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "2", done.stderr


# -- serve ------------------------------------------------------------------------------------------------------

def serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str, object]:
    assets = make_assets(tmp_path / "assets")
    argv = [sys.executable, "-m", "pyodide_runtime.host.server", "--port", "0", "--assets", str(assets), *args]
    log = (tmp_path / "server.log").open("w")
    proc, url = launch_server(argv, tmp_path, log, tmp_path / "server.log", 60)
    return proc, url, log


def study_json(tmp_path: Path, *args: str) -> dict:
    proc, url, log = serve(tmp_path, *args)
    try:
        with urllib.request.urlopen(f"{url}/study.json", timeout=10) as response:
            return json.loads(response.read())
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout:
            proc.stdout.close()
        log.close()


def test_serve_example_serves_the_normalised_config(tmp_path):
    study = study_json(tmp_path, "--example", "human_ai")
    assert study["study"] == "human_ai" and study["players"] == 1
    assert study["config"] == load_study_config(example_config("human_ai")).page
    assert study["env"]["spec"] == "pyodide_runtime.examples.human_ai:make_env"
    assert study["upload"]["enabled"] is False


def test_serve_toml_config_with_file_env_relay_and_data(tmp_path):
    (tmp_path / "my_env.py").write_text((REPO / "pyodide_runtime/examples/pong.py").read_text())
    config = write(tmp_path, """
title = "Pong pilot"
[env]
spec = "my_env.py:make_env"
config = { max_steps = 100 }
[session]
episodes = 2
[relay]
force = true
ice_servers = ["stun:stun.example.org:3478"]
[data]
dir = "uploads"
""")
    study = study_json(tmp_path, "--config", str(config))
    assert study["config"] == load_study_config(config).page
    assert study["config"]["title"] == "Pong pilot" and study["config"]["env_config"] == {"max_steps": 100}
    assert study["env"]["spec"] == "my_env.py:make_env" and study["env"]["file"]["name"] == "my_env.py"
    assert study["relay"] == {"forced": True}
    assert study["ice_servers"] == [{"urls": "stun:stun.example.org:3478"}]
    assert study["upload"]["enabled"] is True and (tmp_path / "uploads").is_dir()


def test_serve_refuses_bad_configs_with_the_field(tmp_path):
    assets = make_assets(tmp_path / "assets")
    bad = write(tmp_path, '[env]\nspec = "pyodide_runtime.examples.pong:make_env"\n[session]\nfps = 0\n')
    for args, message in [
        (["--config", str(bad)], f"{bad}: session.fps: must be between 1 and 240 (got 0)"),
        (["--example", "pnog"], "no example study 'pnog'; did you mean 'pong'?"),
        ([], "no env given"),
        (["--example", "pong", "--config", str(bad)], "not allowed with argument"),
    ]:
        done = run_server_command(["--port", "0", "--assets", str(assets), *args])
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_serve_help_names_both_formats_and_the_examples():
    done = subprocess.run([sys.executable, "-m", "pyodide_runtime.host.server", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert ".toml or .json" in done.stdout and "human_ai, human_ai_onnx, kitchen," in done.stdout


def test_the_documented_example_is_valid(tmp_path):
    doc = (REPO / "docs" / "study-config.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_study_config(write(tmp_path, example))
    assert config.page["title"] == "Pong" and config.page["session"]["episodes"] == 3
    assert config.data_dir == tmp_path / "data" and config.ice_servers == ("stun:stun.example.org:3478",)
    assert validate_env(load_study(None, tmp_path / "study.toml")) is None


def test_completion_url_is_passed_to_the_page_and_only_web_addresses_are_accepted(tmp_path):
    good = "https://app.prolific.com/submissions/complete?cc=ABC123"
    path = write(tmp_path, f'completion_url = "{good}"\n[env]\nspec = "pyodide_runtime.examples.pong:make_env"\n')
    assert load_study_config(path).page["completion_url"] == good
    for bad in ("javascript:alert(1)", "data:text/html,hi", "https://x.org/a b", "/relative"):
        path = write(tmp_path, f'completion_url = "{bad}"\n[env]\nspec = "pyodide_runtime.examples.pong:make_env"\n')
        with pytest.raises(StudyConfigError, match="completion_url: must be an http"):
            load_study_config(path)
