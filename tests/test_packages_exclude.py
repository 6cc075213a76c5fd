"""``[env] exclude``: declared dependencies the page does not load because the env never imports them.

slimevb 0.1.1 requires opencv-python, a compiled package of Pyodide's distribution that no mirror here holds; slimevb
imports ``cv2`` only for its own pixel renderer. Excluding it resolves the study without it; without the exclusion
the resolution fails naming it. Uses the session copy of the assets from ``tests/test_packages.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyodide_runtime.host.packages import PackageError, prepare_study_packages
from pyodide_runtime.host.study_config import StudyConfigError, parse_study_config
from tests.test_packages import UNREACHABLE_CDN, assets_root, mirror  # noqa: F401 - fixtures


def test_slimevb_with_opencv_excluded_resolves_without_it(assets_root, mirror):  # noqa: F811
    study = prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, mirrors=[str(mirror)],
                                   cdn=UNREACHABLE_CDN, exclude=["opencv-python"])
    by_name = {p.name: p for p in study.packages}
    assert by_name["slimevb"].source == "index" and by_name["slimevb"].version == "0.1.1"
    assert "opencv-python" not in by_name
    lock = study.lock()["packages"]
    assert "opencv-python" not in lock
    assert all("opencv-python" not in e.get("depends", []) for e in lock.values())
    assert "slimevb" in study.load_names and "opencv-python" not in study.load_names
    assert study.excluded == (("opencv-python", ("slimevb==0.1.1", "opencv-python")),)
    resolution = json.loads((study.lock_path.parent / "resolution.json").read_text())
    assert resolution["exclude"] == ["opencv-python"]
    assert resolution["excluded"] == [{"name": "opencv-python", "required_by": ["slimevb==0.1.1", "opencv-python"]}]
    assert {"name": "opencv-python", "version": None, "sha256": None, "source": "excluded",
            "required_by": ["slimevb==0.1.1", "opencv-python"]} in study.provenance()
    assert "cv2" not in study.importable()
    # The exclusion is part of the study key; the second start reuses it, exclusion included.
    again = prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, mirrors=[str(mirror)],
                                   cdn=UNREACHABLE_CDN, exclude=["opencv_python"])
    assert again.key == study.key and again.excluded == study.excluded


def test_slimevb_without_exclude_fails_naming_opencv(assets_root, mirror):  # noqa: F811
    with pytest.raises(PackageError) as err:
        prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, mirrors=[str(mirror)], cdn=UNREACHABLE_CDN)
    assert "slimevb==0.1.1 -> opencv-python" in str(err.value)


def test_exclude_must_name_a_declared_dependency_and_not_a_requirement(assets_root, mirror):  # noqa: F811
    with pytest.raises(PackageError, match="none of the study's packages requires"):
        prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, mirrors=[str(mirror)], cdn=UNREACHABLE_CDN,
                               exclude=["opencv-python", "not-a-dependency"])
    with pytest.raises(PackageError, match="which \\[env\\] packages requires"):
        prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, cdn=UNREACHABLE_CDN, exclude=["slimevb"])


def test_study_config_reads_and_validates_exclude(tmp_path: Path):
    base = {"env": {"spec": "m:f", "packages": ["slimevb==0.1.1"], "exclude": ["opencv-python"]}}
    assert parse_study_config(base, source=tmp_path / "s.toml").exclude == ("opencv-python",)
    assert parse_study_config({"env": {"spec": "m:f"}}, source=tmp_path / "s.toml").exclude == ()
    for bad in ("opencv-python", ["opencv-python==4.10"], [""], [3]):
        with pytest.raises(StudyConfigError, match="env.exclude"):
            parse_study_config({"env": {"spec": "m:f", "exclude": bad}}, source=tmp_path / "s.toml")


def test_start_up_check_refuses_a_study_whose_env_imports_the_excluded_package(assets_root, mirror, tmp_path,  # noqa: F811
                                                                                monkeypatch):
    from dataclasses import replace

    from pyodide_runtime.host.server.study import StudyError, check_study, load_study

    # A cv2 that CPython can import (the start-up check runs the env in CPython), and an env that imports it.
    fake = tmp_path / "fake_site"
    fake.mkdir()
    (fake / "cv2.py").write_text("VERSION = 'stand-in'\n")
    monkeypatch.syspath_prepend(str(fake))
    env = tmp_path / "uses_cv2.py"
    env.write_text("import cv2  # noqa: F401\n\n"
                   "from pyodide_runtime.examples.coin_chase import make_env as _make\n\n\n"
                   "def make_env(config=None):\n    return _make(config)\n")
    config = tmp_path / "study.toml"
    config.write_text(f'[env]\nspec = "{env}:make_env"\npackages = ["slimevb==0.1.1"]\nexclude = ["opencv-python"]\n'
                      "[session]\nplayers = 2\n")
    study = load_study(None, config)
    assert study.exclude == ("opencv-python",)
    resolved = prepare_study_packages(study.packages, assets=assets_root, mirrors=[str(mirror)], cdn=UNREACHABLE_CDN,
                                      exclude=study.exclude)
    with pytest.raises(StudyError, match="cv2"):
        check_study(replace(study, resolved=resolved), assets_root, frames=30)
