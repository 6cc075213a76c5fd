"""`assets fetch` on a hermetic, hand-made Pyodide distribution: integrity, tampering, offline errors, caching."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from server_support import npm_tarball

from pyodide_runtime.host import assets
from pyodide_runtime.host.cli import main

VERSION = "0.27.7"


def _wheel(path: Path, name: str, ver: str, requires: tuple[str, ...] = ()) -> Path:
    dist = name.replace("-", "_")
    whl = path / f"{dist}-{ver}-py3-none-any.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(f"{dist}/__init__.py", f"NAME = {name!r}\n")
        zf.writestr(f"{dist}-{ver}.dist-info/METADATA", meta)
        zf.writestr(f"{dist}-{ver}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}-{ver}.dist-info/RECORD", "")
    return whl


@pytest.fixture
def distribution(tmp_path: Path) -> dict:
    """A fake npm tarball, an official lock for it, a mirror holding the lock's packages and the pure wheels."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    packages = {}
    for name, deps in (("numpy", []), ("micropip", ["packaging"]), ("packaging", []), ("unrelated", [])):
        whl = _wheel(mirror, name, "1.0")
        packages[name] = {
            "name": name, "version": "1.0", "file_name": whl.name, "install_dir": "site",
            "sha256": hashlib.sha256(whl.read_bytes()).hexdigest(), "package_type": "package",
            "imports": [name], "depends": deps, "unvendored_tests": False,
        }
    (mirror / "unrelated-1.0-py3-none-any.whl").unlink()  # listed officially, never needed, never fetched
    lock = {"info": {"arch": "wasm32", "platform": "emscripten_3_1_58", "version": VERSION, "python": "3.12.7",
                     "abi_version": "2024_0"}, "packages": packages}
    pure = tmp_path / "pure"
    pure.mkdir()
    _wheel(pure, "gymnasium", version("gymnasium"), ("numpy>=1.21", "cloudpickle", "typing-extensions", "farama-notifications"))
    for name in ("cloudpickle", "typing-extensions", "farama-notifications"):
        _wheel(pure, name, "1.0")

    files = {n: f"// {n}\n".encode() for n in assets.CORE_FILES if n not in ("package.json", "pyodide-lock.json")}
    files["package.json"] = json.dumps({"name": "pyodide", "version": VERSION}).encode()
    files["pyodide-lock.json"] = json.dumps(lock).encode()
    tar_bytes = npm_tarball(files)
    tarball = tmp_path / f"pyodide-{VERSION}.tgz"
    tarball.write_bytes(tar_bytes)
    own = assets.build_wheel_from_install(tmp_path)
    return {"mirror": mirror, "pure": pure, "tarball": tarball, "lock": lock, "own": own, "dest": tmp_path / "out"}


def _fetch(d: dict, **kw) -> assets.FetchReport:
    args = dict(mirrors=[str(d["mirror"]), str(d["pure"])], wheel=d["own"], npm_tarball=d["tarball"], cdn=None)
    args.update(kw)
    return assets.fetch_assets(d["dest"], **args)


def test_fetch_assembles_verified_locked_directory(distribution):
    d = distribution
    report = _fetch(d)
    dest = d["dest"]
    lock = json.loads((dest / "pyodide-lock.json").read_text())
    # exactly what the page needs: numpy, micropip and its dependency, our wheel and its pure dependencies
    assert set(lock["packages"]) == {"numpy", "micropip", "packaging", "gymnasium", "cloudpickle",
                                     "typing-extensions", "farama-notifications", "pyodide-runtime"}
    for entry in lock["packages"].values():
        assert hashlib.sha256((dest / entry["file_name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert set(lock["packages"]["gymnasium"]["depends"]) == {"numpy", "cloudpickle", "typing-extensions", "farama-notifications"}
    assert set(lock["packages"]["pyodide-runtime"]["depends"]) == {"gymnasium", "numpy"}
    assert lock["info"] == d["lock"]["info"]
    assert not (dest / "unrelated-1.0-py3-none-any.whl").exists()
    # the official lock is kept beside ours, untouched
    assert json.loads((dest / assets.OFFICIAL_LOCK_NAME).read_text()) == d["lock"]
    assert "pyodide-lock.json" in report.files and len(report.fetched) == len(report.files)
    assert assets.open_assets(dest, verify=True).own_wheel == d["own"].name


def test_second_fetch_is_cached_and_idempotent(distribution):
    _fetch(distribution)
    before = {p.name: p.read_bytes() for p in distribution["dest"].iterdir() if p.is_file()}
    report = _fetch(distribution, mirrors=[])  # no mirror needed: everything is already verified in place
    after = {p.name: p.read_bytes() for p in distribution["dest"].iterdir() if p.is_file()}
    assert before == after
    pyodide_files = [e["file_name"] for e in distribution["lock"]["packages"].values() if e["name"] != "unrelated"]
    assert all(report.files[f]["source"] == "cached" for f in pyodide_files)


def test_tampered_mirror_copy_is_a_hard_error(distribution):
    d = distribution
    victim = d["mirror"] / d["lock"]["packages"]["numpy"]["file_name"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit of one byte
    victim.write_bytes(bytes(data))
    with pytest.raises(assets.IntegrityError) as err:
        _fetch(d)
    message = str(err.value)
    assert victim.name in message and d["lock"]["packages"]["numpy"]["sha256"] in message
    assert not (d["dest"] / victim.name).exists(), "a file that failed verification must never be written"


def test_tampered_file_in_zip_mirror_is_rejected_too(distribution, tmp_path):
    d = distribution
    zipped = tmp_path / "mirror.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in d["mirror"].iterdir():
            data = p.read_bytes()
            if p.name.startswith("packaging"):
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            zf.writestr(f"nested/dir/{p.name}", data)
    with pytest.raises(assets.IntegrityError, match="packaging-1.0"):
        _fetch(d, mirrors=[str(zipped), str(d["pure"])])


def test_zip_mirror_works(distribution, tmp_path):
    d = distribution
    zipped = tmp_path / "mirror.whl"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in d["mirror"].iterdir():
            zf.write(p, f"some_pkg/assets/pyodide/{p.name}")
    report = _fetch(d, mirrors=[str(zipped), str(d["pure"])])
    assert report.files["micropip-1.0-py3-none-any.whl"]["source"] == f"mirror {zipped}"


def test_offline_without_mirror_names_every_missing_file_and_the_fix(distribution, tmp_path):
    d = distribution
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(assets.AssetError) as err:
        _fetch(d, mirrors=[str(empty)], cdn="http://127.0.0.1:9/unreachable/")
    message = str(err.value)
    for name in ("numpy", "micropip", "packaging"):
        entry = d["lock"]["packages"][name]
        assert entry["file_name"] in message and entry["sha256"] in message
    assert "--mirror" in message and "127.0.0.1:9" in message


def test_corrupt_npm_tarball_integrity_is_rejected():
    with pytest.raises(assets.IntegrityError, match="integrity mismatch"):
        assets._check_sri(b"tampered", "sha512-" + base64.b64encode(hashlib.sha512(b"original").digest()).decode())


def test_open_assets_detects_a_changed_file(distribution):
    _fetch(distribution)
    (distribution["dest"] / "pyodide.asm.js").write_text("// changed")
    with pytest.raises(assets.IntegrityError, match="pyodide.asm.js"):
        assets.open_assets(distribution["dest"], verify=True)


def test_open_assets_says_how_to_fetch(tmp_path):
    with pytest.raises(assets.AssetError, match="pyodide-runtime assets fetch"):
        assets.open_assets(tmp_path)


def test_cli_fetch_reports_errors_without_traceback(distribution, capsys):
    d = distribution
    victim = d["mirror"] / d["lock"]["packages"]["micropip"]["file_name"]
    victim.write_bytes(victim.read_bytes() + b"x")
    code = main(["assets", "fetch", "--dest", str(d["dest"]), "--mirror", str(d["mirror"]), "--mirror", str(d["pure"]),
                 "--wheel", str(d["own"]), "--npm-tarball", str(d["tarball"]), "--no-cdn"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "Traceback" not in err and victim.name in err


def test_cli_rejects_a_missing_mirror_path(distribution, capsys, tmp_path):
    code = main(["assets", "fetch", "--dest", str(tmp_path / "x"), "--mirror", str(tmp_path / "nope"),
                 "--npm-tarball", str(distribution["tarball"]), "--no-cdn"])
    assert code == 2
    assert "neither a directory" in capsys.readouterr().err


def test_required_packages_follows_depends():
    lock = {"packages": {"a": {"depends": ["b"]}, "b": {"depends": ["c"]}, "c": {"depends": []}, "d": {"depends": []}}}
    assert assets.required_packages(lock, ["a"]) == ["a", "b", "c"]
    with pytest.raises(assets.AssetError, match="'zz'"):
        assets.required_packages(lock, ["zz"])


def test_wheel_packed_from_install_contains_the_package(tmp_path):
    whl = assets.build_wheel_from_install(tmp_path)
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        assert "pyodide_runtime/__init__.py" in names and "pyodide_runtime/canonical.py" in names
        assert not any("__pycache__" in n for n in names)
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "Name: pyodide-runtime" in metadata and "Requires-Dist: gymnasium" in metadata


def test_the_mirrors_used_are_remembered_for_study_packages(distribution):
    """A study's [env] packages are later taken from the same mirrors, so serve needs no --mirror of its own."""
    _fetch(distribution)
    manifest = json.loads((distribution["dest"] / assets.MANIFEST_NAME).read_text())
    assert manifest["mirrors"] == [str(Path(distribution[k]).resolve()) for k in ("mirror", "pure")]
    _fetch(distribution, mirrors=[])
    again = json.loads((distribution["dest"] / assets.MANIFEST_NAME).read_text())
    assert again["mirrors"] == manifest["mirrors"]  # a fetch without --mirror forgets none
