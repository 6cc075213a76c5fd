"""The pure parts of ``bench mug``'s MUG driver: experiment script, offline routes, export comparison, summary.

None of these needs MUG, slimevb or a browser; the real side-by-side run is ``pyodide-runtime bench mug``.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import json
import zipfile
from pathlib import Path

from pyodide_runtime.host.benchmarks import mug
from pyodide_runtime.host.headless import run_cli


def _calls(source: str) -> dict[str, ast.Call]:
    """Method calls in ``source`` by method name (the last one wins)."""
    return {n.func.attr: n for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}


def _kwargs(call: ast.Call) -> dict[str, object]:
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords if isinstance(k.value, ast.Constant | ast.List |
                                                                                   ast.Dict | ast.Tuple)}


def test_experiment_script_configures_the_two_human_slime_study(tmp_path: Path) -> None:
    env_file = tmp_path / "bench_env.py"
    source = mug.experiment_script(5123, env_file, episodes=3, max_steps=450, input_delay=2, fps=30)
    calls = _calls(source)
    assert _kwargs(calls["hosting"]) == {"port": 5123, "host": "127.0.0.1"}
    assert _kwargs(calls["multiplayer"]) == {"input_delay": 2}
    gameplay = _kwargs(calls["gameplay"])
    assert (gameplay["num_episodes"], gameplay["max_steps"]) == (3, 450)
    assert gameplay["action_mapping"] == mug.ACTIONS
    runtime = _kwargs(calls["runtime"])
    assert runtime == {"environment_initialization_code_filepath": str(env_file),
                       "packages_to_install": ["slimevb==0.1.1"]}
    assert _kwargs(calls["rendering"])["fps"] == 30
    # Headless Chromium reports itself as "Chrome Headless": a browser requirement would screen it out.
    assert _kwargs(calls["entry_screening"])["browser_requirements"] == []
    assert source.splitlines()[:2] == ["import eventlet", "eventlet.monkey_patch()"]


def test_env_code_defines_the_state_protocol_mug_needs_for_rollback() -> None:
    tree = ast.parse(mug.ENV_CODE)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    assert {"get_state", "set_state", "render", "reset", "step"} <= methods
    assert any(isinstance(n, ast.Assign) and n.targets[0].id == "env" for n in tree.body if isinstance(n, ast.Assign))


def _assets(tmp_path: Path) -> Path:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "pyodide-lock.json").write_text(json.dumps({"info": {"version": "0.27.7"}, "packages": {}}))
    return assets


def test_route_table_covers_every_public_host_the_page_uses(tmp_path: Path) -> None:
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    slime = wheels_dir / "slimevb-0.1.1-py3-none-any.whl"
    slime.write_bytes(b"wheel")
    stub = mug.placeholder_wheel("opencv-python", "4.10.0.84", wheels_dir)
    table = mug.route_table(_assets(tmp_path), tmp_path / "npm", [slime, stub])
    urls = {r["url"]: r for r in table}
    for url, (pkg, path) in mug.CDN_SCRIPTS.items():
        assert urls[url]["file"] == str(tmp_path / "npm" / pkg.replace("@", "-") / path)
    assert urls[mug.MUG_PYODIDE + "*"]["source"] == "self-hosted Pyodide 0.27.7"
    assert urls[mug.PYPI_SIMPLE + "slimevb/"]["file"] == slime.name
    assert urls[mug.PYPI_SIMPLE + "opencv-python/"]["file"] == stub.name
    assert urls[mug.PYPI_FILES + slime.name]["source"] == "pip download"
    assert urls[mug.PYPI_FILES + stub.name]["source"].startswith("placeholder")
    assert "https://fonts.googleapis.com/*" in urls


def test_simple_index_lists_wheels_with_their_sha256(tmp_path: Path) -> None:
    wheel = tmp_path / "slimevb-0.1.1-py3-none-any.whl"
    wheel.write_bytes(b"some wheel bytes")
    page = mug.simple_index("slimevb", [wheel])
    assert page["name"] == "slimevb"
    assert page["files"] == [{"filename": wheel.name, "url": mug.PYPI_FILES + wheel.name,
                              "hashes": {"sha256": hashlib.sha256(b"some wheel bytes").hexdigest()}}]


def test_placeholder_wheel_is_a_valid_empty_distribution(tmp_path: Path) -> None:
    path = mug.placeholder_wheel("opencv-python", "4.10.0.84", tmp_path)
    assert path.name == "opencv_python-4.10.0.84-py3-none-any.whl"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        info = "opencv_python-4.10.0.84.dist-info"
        assert sorted(names) == sorted(f"{info}/{n}" for n in ("METADATA", "WHEEL", "RECORD"))
        assert "Name: opencv-python\nVersion: 4.10.0.84" in z.read(f"{info}/METADATA").decode()
        for line in z.read(f"{info}/RECORD").decode().splitlines():
            name, digest, size = line.split(",")
            if digest:
                data = z.read(name)
                assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert int(size) == len(data)


def _export(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _rows(n: int, subject: str, action_at: dict[int, int] | None = None) -> list[dict[str, object]]:
    return [{"actions.agent_left": (action_at or {}).get(t, 0), "actions.agent_right": 1, "t": t, "episode_num": 0,
             "timestamp": 1000 * t + hash(subject) % 7, "wasSpeculative.agent_left": subject == "a",
             "player_subjects.agent_left": subject} for t in range(n)]


def test_compare_exports_pairs_episodes_and_ignores_per_peer_columns(tmp_path: Path) -> None:
    data = tmp_path / "data" / "exp" / "slime"
    _export(data / "a_ep0.csv", _rows(5, "a"))
    _export(data / "b_ep0.csv", _rows(5, "b"))  # differs only in per-peer columns
    _export(data / "a_ep1.csv", _rows(5, "a", {3: 2}))
    _export(data / "b_ep1.csv", _rows(5, "b"))  # an action differs at t=3
    as_floats = [{k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in r.items()}
                 for r in _rows(5, "a")]
    _export(data / "a_ep3.csv", as_floats)  # pandas writes 1.0 for 1 when a column has gaps: the same value
    _export(data / "b_ep3.csv", _rows(5, "b"))
    _export(data / "a_ep2.csv", _rows(6, "a"))
    _export(data / "b_ep2.csv", _rows(4, "b"))  # the peers ended the episode on different frames
    out = mug.compare_exports(tmp_path / "data")
    eps = {e["episode"]: e for e in out["episodes"]}
    assert eps["0"]["identical"] is True and eps["0"]["columns_compared"] == 4
    assert eps["1"]["identical"] is False and eps["1"]["first_differing_row"] == 3
    assert eps["2"]["identical"] is False and eps["2"]["rows"] == [6, 4]
    assert eps["3"]["identical"] is True
    assert (out["identical"], out["total"]) == (2, 4)


def _run(delay: int, first: float, tick: list[float], rb_p50: float | None, identical: int, total: int) -> dict:
    return {"delay_frames": delay, "first_frame_s": first, "main_thread_ms_per_tick": tick, "fps_held": [30.0, 29.0],
            "long_tasks": [{"count": 2}, {"count": 4}], "rollback_ms": {"p50": rb_p50}, "rollbacks": 10,
            "rollback_mean_depth": 5.2, "exports": {"identical": identical, "total": total}}


def test_summarise_takes_medians_and_divides_mug_by_ours() -> None:
    mug_runs = [_run(5, 20.0, [8.0, 10.0], 4.0, 0, 2), _run(5, 24.0, [12.0, 14.0], 6.0, 1, 2)]
    ours = [_run(5, 8.0, [0.5, 0.5], None, 1, 1), _run(5, 10.0, [1.5, 1.5], None, 1, 1)]
    (row,) = mug.summarise(mug_runs, ours, {5: 0.5})
    assert row["mug_first_frame_s"] == 22.0 and row["ours_first_frame_s"] == 9.0
    assert row["mug_main_thread_ms_per_tick"] == 11.0 and row["ours_main_thread_ms_per_tick"] == 1.0
    assert row["ratio_first_frame_s"] == round(22.0 / 9.0, 1)
    assert row["ratio_main_thread_ms_per_tick"] == 11.0
    assert row["mug_rollback_ms"] == 5.0 and row["ratio_rollback_ms"] == 10.0
    assert row["mug_identical_episodes"] == "1/4" and row["ours_identical_exports"] == "2/2"
    assert row["mug_rollbacks"] == 20 and row["mug_long_tasks_per_run"] == 3.0


def test_missing_mug_venv_is_a_one_line_error(tmp_path: Path) -> None:
    res = run_cli("bench", "mug", "--mug-python", str(tmp_path / "nowhere" / "python"))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "nowhere" in res.stderr and "multi-user-gymnasium[server]==0.1.3" in res.stderr


def test_our_study_serves_slimevb_with_the_same_opencv_stand_in(tmp_path: Path) -> None:
    from pyodide_runtime.host.server.study import load_study

    config = mug.our_study(tmp_path, fps=30, max_steps=600, episodes=2, input_delay=2)
    study = load_study(None, config)
    assert study.packages == ("slimevb==0.1.1",) and study.exclude == ("opencv-python",)
    session = study.config["session"]
    assert (session["fps"], session["input_delay"], session["episodes"], study.players) == (30, 2, 2, 2)
    assert study.env_config == {**mug.SLIME_CONFIG, "max_steps": 600}
    # The env file is self-contained (the page imports it alone) and defines the same wrapper as in-process runs.
    tree = ast.parse(mug.our_env_code())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    methods = {n.name for n in classes["SlimeParallel"].body if isinstance(n, ast.FunctionDef)}
    assert {"reset", "step", "render", "action_space"} <= methods
    assert any(isinstance(n, ast.FunctionDef) and n.name == "make_env" for n in tree.body)
    assert not any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("pyodide_runtime") for n in tree.body)
    assert "opencv" in mug.ENVS["opencv_stand_in"] and mug.PLACEHOLDER_DISTS == ("opencv-python",)
