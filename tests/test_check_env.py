"""check-env passes the bundled examples and fails each purpose-built bad env on the right check, with a fix."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from pyodide_runtime.host import cli
from pyodide_runtime.host.checkenv import FAIL, PASS, SKIP, WARN, CheckOptions, EnvTarget, run_checks
from pyodide_runtime.host.checkenv.api import check_upstream_api
from pyodide_runtime.host.checkenv.pyodide import check_modules, load_catalog, page_modules

from env_fixtures.fake_dist import make_compiled_distribution
from pyodide_support import pyodide_assets  # noqa: F401 - fixture

PACKAGE = Path(cli.__file__).resolve().parents[1]  # pyodide_runtime/ (the command line is in host/)
BAD = Path(__file__).with_name("env_fixtures")
FAST = CheckOptions(distances=(1, 4), sync_frames=120, rollout_frames=120)
ALL_CHECKS = {"api.adapter", "snapshot", "synctest", "hidden-state", "global-rng", "wall-time", "determinism",
              "set-iteration", "pyodide-modules", "cost", "pyodide-run"}


def _examples() -> list[pytest.param]:
    """Every example study that ships with the package (examples/*.toml), with its env config and bots."""
    found = []
    for path in sorted((PACKAGE / "examples").glob("*.toml")):
        study = tomllib.loads(path.read_text())
        env = study["env"]
        if any(p.values[0] == env["spec"] for p in found):
            continue  # an example study of an env already listed above
        found.append(pytest.param(env["spec"], env.get("config"), dict(study.get("bots", {})), id=path.stem))
    return found


def _line_of(path: Path, needle: str) -> int:
    """The line number of the first line containing ``needle`` (so tests do not hard-code line numbers)."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.fixture(autouse=True)
def _assets_for_the_module_check(pyodide_assets, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PYODIDE_RUNTIME_ASSETS", str(pyodide_assets))


def test_at_least_coin_chase_is_among_the_examples():
    ids = [p.id for p in _examples()]
    assert "coin_chase" in ids


@pytest.mark.parametrize(("spec", "config", "bots"), _examples())
def test_bundled_examples_pass(spec, config, bots):
    report = run_checks(EnvTarget(spec, config, bots), FAST)
    statuses = {r.name: r.status for r in report.results}
    assert report.passed, report.render()
    assert ALL_CHECKS <= set(statuses), statuses
    assert statuses["pyodide-run"] == SKIP  # only with --pyodide
    not_passed = {n: s for n, s in statuses.items()
                  if s != PASS and n not in ("pyodide-run", "cost", "packages", "frame-budget")}
    assert not not_passed, report.render()
    # Without Pyodide's figures the frame budget is never judged a pass (the page runs in Pyodide)
    assert statuses["frame-budget"] in (SKIP, WARN) and "--pyodide" in report.get("frame-budget").message
    assert statuses["cost"] in (PASS, WARN)  # a timing warning on a loaded machine is not a failure
    assert report.get("synctest").details["runs"][-1]["checks"] > 0


def test_the_correct_base_of_the_fixture_envs_passes():
    """The control: each bad env below differs from this one by exactly its defect."""
    report = run_checks(EnvTarget("env_fixtures.line:make_env", source=BAD), FAST)
    assert report.passed, report.render()
    assert not [r for r in report.results if r.status not in (PASS, SKIP)], report.render()
    assert report.get("packages").status == PASS  # the env directory, packed for the page


def test_a_local_package_the_page_does_not_get_fails_the_module_check_with_the_source_fix():
    """Without [env] source the page has no copy of a local package, so the module check must not pass."""
    report = run_checks(EnvTarget("env_fixtures.line:make_env"), FAST)
    result = _failed(report, "pyodide-modules")
    assert f"env_fixtures (a local module at {BAD / '__init__.py'}; the page does not get it)" in result.message
    assert f'[env] source = "{BAD}"' in result.fix


def _failed(report, name: str):
    result = report.get(name)
    assert result.status == FAIL, report.render()
    assert result.fix, f"{name} failed without a fix"
    assert not report.passed
    return result


def test_nondeterministic_env_fails_determinism_and_names_the_entropy_source():
    report = run_checks(EnvTarget("env_fixtures.nondeterministic:make_env"), FAST)
    result = _failed(report, "determinism")
    assert "two fresh processes with the same seeds diverged at episode 0" in result.message
    entropy = _failed(report, "global-rng")
    line = _line_of(BAD / "nondeterministic.py", "os.urandom(8)")
    assert f"reset calls os.urandom at {BAD / 'nondeterministic.py'}:{line}" in entropy.message


def test_hidden_state_is_found_by_restoring_into_a_fresh_env():
    report = run_checks(EnvTarget("env_fixtures.hidden_state:make_env"), FAST)
    result = _failed(report, "hidden-state")
    assert "a fresh env restored from the snapshot" in result.message
    assert "observations" in result.message
    # Restoring into the same env cannot see it: that is what this check adds.
    assert report.get("snapshot").status == PASS
    assert report.get("synctest").status == PASS
    assert report.get("determinism").status == PASS


@pytest.mark.parametrize(("factory", "call", "needle"), [
    ("make_env", "random.randrange", "random.randrange(2)"),
    ("make_numpy_env", "numpy.random.randint", "np.random.randint(2)"),
])
def test_global_generators_in_step_are_reported_with_the_call_site(factory, call, needle):
    report = run_checks(EnvTarget(f"env_fixtures.global_random:{factory}"), FAST)
    result = _failed(report, "global-rng")
    line = _line_of(BAD / "global_random.py", needle)
    assert f"step calls {call} at {BAD / 'global_random.py'}:{line}" in result.message
    assert "self.np_random" in result.fix
    assert report.get("wall-time").status == PASS


def test_wall_time_in_step_is_reported_with_the_call_site():
    report = run_checks(EnvTarget("env_fixtures.wall_time:make_env"), FAST)
    result = _failed(report, "wall-time")
    line = _line_of(BAD / "wall_time.py", "time.monotonic()")
    assert f"step calls time.monotonic at {BAD / 'wall_time.py'}:{line}" in result.message
    assert "frames" in result.fix
    assert report.get("global-rng").status == PASS


def test_set_iteration_is_found_by_other_hash_seeds():
    report = run_checks(EnvTarget("env_fixtures.set_iteration:make_env"), FAST)
    result = _failed(report, "set-iteration")
    assert "results change with PYTHONHASHSEED (0 vs" in result.message
    assert "sorted(" in result.fix
    assert report.get("determinism").status == PASS  # one hash seed: reproducible


def test_compiled_dependency_outside_pyodide_fails_the_module_check(tmp_path):
    site = make_compiled_distribution(tmp_path / "site")
    spec = f"{BAD / 'compiled_dep.py'}:make_env"
    report = run_checks(EnvTarget(spec, {"site": str(site)}), FAST)
    result = _failed(report, "pyodide-modules")
    assert "fastline (distribution fastline 1.0: fastline/_speedups.cpython-311-x86_64-linux-gnu.so" in result.message
    assert "not provided by Pyodide 0.27.7" in result.message
    assert [r.name for r in report.results if r.failed] == ["pyodide-modules"]


def test_module_check_reasons_from_what_the_page_loads(pyodide_assets):  # noqa: F811
    """Pyodide shipping a package is not enough: the study must load it, or the page cannot import it."""
    catalog = load_catalog(pyodide_assets)
    assert catalog is not None and catalog.version == "0.27.7"
    page = page_modules(EnvTarget("pyodide_runtime.examples.coin_chase:make_env"), pyodide_assets)
    assert page is not None and "numpy" in page.importable and "gymnasium" in page.importable
    assert "scipy" not in page.importable and "micropip" not in page.importable  # in the lock, never loaded
    fine = [{"module": "json", "kind": "stdlib", "compiled": False},
            {"module": "numpy", "kind": "dist", "dist": "numpy", "pure": False, "version": "2.0.2"}]
    assert check_modules(fine, page).status == PASS
    scipy = check_modules([{"module": "scipy", "kind": "dist", "dist": "scipy", "pure": False, "version": "1.14.1",
                            "compiled_files": ["scipy/x.so"]}], page)
    assert scipy.status == FAIL and "scipy (scipy: provided by Pyodide 0.27.7, but the study does not load it)" \
        in scipy.message
    assert '[env] packages = ["scipy"]' in scipy.fix
    tk = check_modules([{"module": "tkinter", "kind": "stdlib", "compiled": False}], page)
    assert tk.status == FAIL and "tkinter (standard library module not in Pyodide 0.27.7)" in tk.message
    pure = check_modules([{"module": "tinylib", "kind": "dist", "dist": "tinylib", "version": "1.2", "pure": True}],
                         page)
    assert pure.status == FAIL and '[env] packages = ["tinylib==1.2"]' in pure.fix


def test_pettingzoo_checker_is_skipped_and_said_so_when_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pettingzoo.test", None)
    result = check_upstream_api(EnvTarget("env_fixtures.line:make_env"))
    assert result.status == SKIP and "pettingzoo is not installed" in result.message


# -- the command line ------------------------------------------------------------------------------------------------


def test_cli_json_report_and_progress(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(["check-env", str(PACKAGE / "examples" / "coin_chase.py") + ":make_env",
                     "--config", '{"players": 2}', "--distance", "1,8", "--frames", "100", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert captured.out.strip().splitlines()[-1].startswith("PASSED: ")
    assert "check-env: determinism: seeded rollouts in 4 fresh processes" in captured.err
    data = json.loads(out.read_text())
    assert data["passed"] is True and data["config"] == {"players": 2}
    names = {c["name"]: c for c in data["checks"]}
    assert ALL_CHECKS <= set(names)
    assert [r["distance"] for r in names["synctest"]["details"]["runs"]] == [1, 8]
    assert names["cost"]["details"]["capture_us"] > 0 and names["cost"]["details"]["snapshot_bytes"] > 0


def test_cli_failure_exits_1_with_a_fix_line(tmp_path, capsys):
    out = tmp_path / "report.json"
    config = tmp_path / "config.json"
    config.write_text('{"max_steps": 40}')
    code = cli.main(["check-env", "env_fixtures.wall_time:make_env", "--source", str(BAD), "--config", str(config),
                     "--quiet", "--distance", "1", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == ""  # --quiet
    lines = captured.out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL  wall-time"))
    assert lines[at + 1].strip().startswith("fix: count frames")
    data = json.loads(out.read_text())
    assert data["passed"] is False and data["config"] == {"max_steps": 40}
    assert [c["name"] for c in data["checks"] if c["status"] == FAIL] == ["wall-time"]


@pytest.mark.parametrize(("argv", "message"), [
    (["no/such/env.py:make_env"], "cannot load env 'no/such/env.py:make_env': env file not found"),
    (["pyodide_runtime.examples.coin_chase"], "must look like 'package.module:function'"),
    (["env_fixtures.line:make_env", "--config", "{nope"], "--config is neither valid JSON"),
    (["env_fixtures.line:make_env", "--config", "[1, 2]"], "--config must hold a JSON object, got list"),
    (["env_fixtures.line:make_env", "--bot", "a"], "--bot 'a': expected AGENT=BOT"),
    (["env_fixtures.line:make_env", "--distance", "1,x"], "--distance '1,x': expected comma-separated integers"),
    (["env_fixtures.line:make_env", "--json", "/no/such/dir/r.json"], "directory /no/such/dir does not exist"),
])
def test_cli_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(["check-env", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("error: ") and message in captured.err


@pytest.mark.pyodide
def test_pyodide_run_steps_coin_chase_from_a_file_spec_in_real_pyodide(pyodide_assets, capsys):  # noqa: F811
    spec = str(PACKAGE / "examples" / "coin_chase.py") + ":make_env"
    report = run_checks(EnvTarget(spec, {"players": 2}), CheckOptions(distances=(1,), sync_frames=60,
                                                                      rollout_frames=60, pyodide=True,
                                                                      assets=pyodide_assets))
    result = report.get("pyodide-run")
    assert result.status == PASS, result.message + json.dumps(result.details)[:2000]
    assert "stepped 60 frames in Pyodide 0.27.7" in result.message
    assert result.details["snapshot_method"] == "explicit"  # verified inside Pyodide, as the page does
    assert result.details["python"].startswith("3.12")
    assert result.details["step_median_us"] > 0 and result.details["capture_us"] > 0
    budget = report.get("frame-budget")  # judged from the figures measured in Pyodide
    assert budget.status == PASS, budget.message
    assert budget.details["measured_in"] == "Pyodide"
    assert budget.details["step_us"] == round(result.details["step_median_us"], 1)


def test_modules_made_at_run_time_by_extensions_are_not_imports(monkeypatch):
    """Cython registers holders such as ``_cython_3_3_1`` in sys.modules: no spec, file or loader, nothing to ship."""
    import types

    from pyodide_runtime.host.checkenv.modules import top_level_modules

    holder = types.ModuleType("_cython_9_9_9")
    holder.__spec__ = holder.__loader__ = None
    monkeypatch.setitem(sys.modules, "_cython_9_9_9", holder)
    assert "_cython_9_9_9" not in top_level_modules()
    assert "json" in top_level_modules({"json"})
