"""Researchers' real envs reach the page: ``[env] packages``, ``[env] source`` and the checks that must agree with
what the page will do (``serve``'s start-up study check and ``check-env``), on the study folders in
``tests/studies/``.

Each refusal here is a case where the page would fail: the check must fail too (no false pass), name the module
and say which ``[env]`` line fixes it. Where the page works, the checks pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pyodide_runtime.host.checkenv import PASS, CheckOptions, EnvTarget, run_checks
from pyodide_runtime.host.headless import StudyServer
from pyodide_runtime.host.study_config import StudyConfigError, load_study_config

from pyodide_support import pyodide_assets  # noqa: F401 - fixture

STUDIES = Path(__file__).with_name("studies")
QUICK = CheckOptions(distances=(1,), sync_frames=40, rollout_frames=40)


@pytest.fixture(autouse=True)
def _assets(pyodide_assets, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PYODIDE_RUNTIME_ASSETS", str(pyodide_assets))


def serve(config: Path, assets: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``serve`` with a config that must be refused: it exits before printing its URL."""
    return subprocess.run([sys.executable, "-m", "pyodide_runtime", "serve", "--config", str(config), "--port", "0",
                           "--assets", str(assets), *extra], capture_output=True, text=True, timeout=timeout)


def edited(name: str, into: Path, pattern: str, replacement: str) -> Path:
    """A copy of a study folder with one edit to its study.toml."""
    folder = into / name
    shutil.copytree(STUDIES / name, folder)
    config = folder / "study.toml"
    text, n = re.subn(pattern, replacement, config.read_text())
    assert n == 1, f"{pattern!r} not found in {name}/study.toml"
    config.write_text(text)
    return config


# -- the study config ---------------------------------------------------------------------------------------------


def test_study_config_reads_packages_and_the_env_directory():
    maze = load_study_config(STUDIES / "maze_dir" / "study.toml")
    assert maze.env_source == (STUDIES / "maze_dir" / "maze").resolve() and maze.env_spec == "maze_env:make_env"
    assert load_study_config(STUDIES / "scipy_field" / "study.toml").packages == ("scipy",)


@pytest.mark.parametrize(("pattern", "replacement", "message"), [
    (r'packages = \["scipy"\]', 'packages = "scipy"', "env.packages: must be a list of requirement strings"),
    (r'packages = \["scipy"\]', 'packages = ["https://example.org/x.whl"]', "env.packages[0]: must be a pip requirement"),
    (r'spec = "field_env.py:make_env"', 'spec = "field_env.py:make_env"\nsource = "nowhere"', "env.source: env directory"),
])
def test_bad_env_fields_name_the_field(tmp_path, pattern, replacement, message):
    config = edited("scipy_field", tmp_path, pattern, replacement)
    with pytest.raises(StudyConfigError, match=re.escape(message)):
        load_study_config(config)


def test_env_directory_takes_a_module_spec_not_a_file(tmp_path):
    config = edited("maze_dir", tmp_path, r'spec = "maze_env:make_env"', 'spec = "maze/maze_env.py:make_env"')
    with pytest.raises(StudyConfigError, match="with env.source, name the factory as 'module:function'"):
        load_study_config(config)


# -- serve refuses what the page cannot run -----------------------------------------------------------------------


def test_serve_refuses_an_env_importing_a_package_the_study_does_not_load(tmp_path, pyodide_assets):  # noqa: F811
    config = edited("scipy_field", tmp_path, r'packages = \["scipy"\]\n', "")
    done = serve(config, pyodide_assets)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "the page cannot import: scipy (scipy: provided by Pyodide 0.27.7, but the study does not load it)" in last
    assert 'add to the study config: [env] packages = ["scipy"]' in last
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_single_env_file_whose_sibling_module_the_page_would_not_get(tmp_path, pyodide_assets):  # noqa: F811
    config = edited("maze_dir", tmp_path, r'source = "maze"\nspec = "maze_env:make_env"',
                    'spec = "maze/maze_env.py:make_env"')
    done = serve(config, pyodide_assets)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "No module named 'maze_layout'" in done.stderr
    assert f'[env] source = "{tmp_path / "maze_dir" / "maze"}"' in done.stderr


def test_serve_refuses_a_package_with_no_pure_wheel_naming_the_requirement_chain(tmp_path, pyodide_assets):  # noqa: F811
    """slimevb needs opencv-python: compiled, in Pyodide's lock, but its file is not available on this machine."""
    config = edited("maze_dir", tmp_path, r'source = "maze"', 'source = "maze"\npackages = ["slimevb==0.1.1"]')
    done = serve(config, pyodide_assets)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "opencv-python" in done.stderr and "slimevb==0.1.1" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_finds_an_env_error_at_its_file_and_line_before_anyone_is_recruited(tmp_path, pyodide_assets):  # noqa: F811
    config = edited("maze_dir", tmp_path, r'title = "Two rooms"', 'title = "Two rooms, one broken door"')
    env = tmp_path / "maze_dir" / "maze" / "maze_env.py"
    text = env.read_text().replace("        self.t += 1\n",
                                   "        self.t += 1\n        if self.t == 150:\n            raise ZeroDivisionError"
                                   "(\"the door's hinge\")\n", 1)
    env.write_text(text)
    done = serve(config, pyodide_assets)
    assert done.returncode == 2, done.stdout + done.stderr
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "the door's hinge" in t)
    message = done.stderr.strip().splitlines()[-1]
    assert "the env raised ZeroDivisionError: the door's hinge in step at frame 149 of episode 0" in message
    assert f"at {env.resolve()}:{line}" in message
    assert "Traceback" not in done.stderr


# -- what serve serves --------------------------------------------------------------------------------------------


def test_serve_packs_the_env_directory_and_serves_the_study_lock(tmp_path, pyodide_assets):  # noqa: F811
    config = STUDIES / "maze_dir" / "study.toml"
    with StudyServer(tmp_path / "server", config, assets=pyodide_assets, env=None) as server:
        study = json.loads(urllib.request.urlopen(server.url + "/study.json").read())
        assert study["env"]["spec"] == "maze_env:make_env" and study["env"]["file"] is None
        assert study["env"]["packages"] == ["study-env-maze"]
        base = server.url + study["assets_url"]
        lock = json.loads(urllib.request.urlopen(base + "pyodide-lock.json").read())
        entry = lock["packages"]["study-env-maze"]
        assert {"pyodide-runtime", "numpy", "gymnasium"} <= set(lock["packages"])
        wheel = urllib.request.urlopen(base + entry["file_name"]).read()
        assert hashlib.sha256(wheel).hexdigest() == entry["sha256"]
        assert set(entry["imports"]) == {"maze_env", "maze_layout"}
        log = server.log_path.read_text()
    assert '"study-check"' in log and "stepped 300 frames" in log
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(wheel)).namelist()
    assert "maps/two_rooms.json" in names and "maze_layout.py" in names  # the data file travels with the code


# -- check-env agrees with the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["overcooked_cogrid", "scipy_field", "maze_dir"])
def test_check_env_passes_the_module_check_of_each_study(name, pyodide_assets):  # noqa: F811
    study = load_study_config(STUDIES / name / "study.toml")
    target = EnvTarget(study.env_spec, study.page.get("env_config"), {}, study.env_source, study.packages)
    report = run_checks(target, dataclasses.replace(QUICK, assets=pyodide_assets))
    assert report.get("packages").status == PASS, report.render()
    assert report.get("pyodide-modules").status == PASS, report.render()


def test_check_env_fails_where_the_page_would_fail(pyodide_assets):  # noqa: F811
    study = load_study_config(STUDIES / "scipy_field" / "study.toml")
    target = EnvTarget(study.env_spec, study.page.get("env_config"))  # no packages: the page lacks scipy
    report = run_checks(target, dataclasses.replace(QUICK, assets=pyodide_assets))
    result = report.get("pyodide-modules")
    assert result.failed and "scipy" in result.message and '[env] packages = ["scipy"]' in result.fix


@pytest.mark.pyodide
@pytest.mark.parametrize(("name", "packages", "passes"), [
    ("maze_dir", None, True),
    ("scipy_field", None, True),
    ("scipy_field", (), False),  # the same env without its package: the page's import fails, and so must this
])
def test_check_env_pyodide_loads_the_env_exactly_as_the_page(name, packages, passes, pyodide_assets):  # noqa: F811
    study = load_study_config(STUDIES / name / "study.toml")
    target = EnvTarget(study.env_spec, study.page.get("env_config"), {}, study.env_source,
                       study.packages if packages is None else packages)
    options = CheckOptions(distances=(1,), sync_frames=20, rollout_frames=20, pyodide=True, assets=pyodide_assets)
    result = run_checks(target, options).get("pyodide-run")
    if passes:
        assert result.status == PASS, result.message + json.dumps(result.details)[-2000:]
    else:
        assert result.failed and "No module named 'scipy'" in result.message


# -- provenance ---------------------------------------------------------------------------------------------------


def test_the_packages_the_page_loaded_are_canonical_provenance():
    """Two pages that loaded different builds of a package do not compare identical; the same builds do."""
    from test_export_support import coin_chase, context, drive_log, random_inputs

    from pyodide_runtime.host.compare import compare
    from pyodide_runtime.config import SessionConfig
    from pyodide_runtime.export import Diagnostics, write_bundle

    game, config = coin_chase(), SessionConfig(episodes=1)
    log = drive_log(game, config, random_inputs(40))
    loaded = [{"name": "scipy", "version": "1.14.1", "sha256": "a" * 64},
              {"name": "cogrid", "version": "0.3.2", "sha256": "b" * 64}]
    other = [dict(loaded[0]), {**loaded[1], "sha256": "c" * 64}]

    def bundle(seat: int, packages: list[dict]) -> bytes:
        return write_bundle(log, context(game, config, seat, packages=packages), Diagnostics())

    same = compare(bundle(0, loaded), bundle(1, list(reversed(loaded))))
    assert same.identical, same.render()
    differs = compare(bundle(0, loaded), bundle(1, other))
    assert not differs.identical
    assert any("packages" in str(d) for d in differs.differences), differs.render()
    metadata = json.loads(__import__("zipfile").ZipFile(__import__("io").BytesIO(bundle(0, loaded)))
                          .read("metadata.json"))
    assert [p["name"] for p in metadata["canonical"]["packages"]] == ["cogrid", "scipy"]


def test_verify_loads_an_env_folder_with_source(tmp_path):
    """A bundle of an env folder records `module:function`; `verify --source DIR` finds it as the page's wheel did."""
    import os

    folder = STUDIES / "maze_dir" / "maze"
    env = {**os.environ, "PYTHONPATH": str(folder)}
    made = subprocess.run([sys.executable, "-m", "pyodide_runtime", "simulate", "--env", "maze_env:make_env",
                           "--env-config", '{"max_steps": 60}', "--episodes", "2", "--latency-ms", "60",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    bundle = sorted(tmp_path.glob("*_seat0.zip"))[0]

    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pyodide_runtime", "verify", str(bundle), *extra],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    missing = verify()
    assert missing.returncode == 2 and "no module named 'maze_env'" in missing.stderr
    found = verify("--source", str(folder))
    assert found.returncode == 0, found.stdout + found.stderr
    assert "VERIFIED" in found.stdout
