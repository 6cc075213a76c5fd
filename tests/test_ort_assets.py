"""onnxruntime-web in the assets: fetched from a (local, hand-made) npm registry, verified against the pinned
integrity, listed in the manifest, kept when already in place, and served with the right types and caching."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pyodide_runtime.host import assets, ort_assets
from pyodide_runtime.host.cli import main
from pyodide_runtime.host.server.files import IMMUTABLE, FileRoutes, page_csp
from server_support import make_assets, npm_tarball
from tests.test_assets import _fetch, distribution  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parent.parent
DIST_FILES = {
    "ort.wasm.min.mjs": b"export const env = { wasm: {} };\n",
    "ort-wasm-simd-threaded.mjs": b"export default async function () {}\n",
    "ort-wasm-simd-threaded.wasm": b"\x00asm\x01\x00\x00\x00",
    "ort.all.min.mjs": b"// another build, never extracted\n",
    "ort-wasm-simd-threaded.jsep.wasm": b"\x00asm\x01\x00\x00\x00jsep",
}


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A hand-made onnxruntime-web tarball laid out as the npm registry serves it, under a file:// URL.

    The pinned integrity is replaced by this tarball's (the real one is checked by the integrity tests below)."""
    files = {"package.json": json.dumps({"name": ort_assets.ORT_PACKAGE, "version": ort_assets.ORT_VERSION}).encode(),
             **{f"dist/{n}": d for n, d in DIST_FILES.items()}}
    tar_bytes = npm_tarball(files)
    root = tmp_path / "registry"
    folder = root / ort_assets.ORT_PACKAGE / "-"
    folder.mkdir(parents=True)
    tarball = folder / f"{ort_assets.ORT_PACKAGE}-{ort_assets.ORT_VERSION}.tgz"
    tarball.write_bytes(tar_bytes)
    monkeypatch.setattr(ort_assets, "ORT_INTEGRITY", _integrity(tarball.read_bytes()))
    return {"url": root.as_uri(), "tarball": tarball}


def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url: str, timeout: float = 30.0) -> bytes:
        raise AssertionError(f"downloaded {url} although the files were in place")

    monkeypatch.setattr(ort_assets, "_download", refuse)


def test_fetch_keeps_exactly_the_wasm_backend_files(registry, tmp_path: Path):
    dest = tmp_path / "assets"
    files = ort_assets.fetch_ort(dest, registry=registry["url"])
    names = [f"ort/{n}" for n in ort_assets.ORT_FILES]
    assert sorted(files) == sorted(names)
    assert sorted(p.name for p in (dest / "ort").iterdir() if not p.name.startswith(".")) == sorted(ort_assets.ORT_FILES)
    for name in names:
        data = (dest / name).read_bytes()
        assert data == DIST_FILES[name.split("/", 1)[1]]
        assert files[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[name]["source"].endswith(".tgz")


def test_the_pinned_integrity_is_checked_and_names_the_package(registry, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(ort_assets, "ORT_INTEGRITY", "sha512-" + base64.b64encode(hashlib.sha512(b"x").digest()).decode())
    dest = tmp_path / "assets"
    with pytest.raises(assets.IntegrityError) as err:
        ort_assets.fetch_ort(dest, registry=registry["url"])
    message = str(err.value)
    assert "onnxruntime-web 1.30.0" in message and ort_assets.ORT_INTEGRITY in message and "integrity" in message
    assert not (dest / "ort").exists(), "nothing from a tarball that failed verification may be written"


def test_the_real_pinned_integrity_rejects_a_different_tarball(tmp_path: Path):
    """The constant shipped in the code (not a test's) refuses anything but the real onnxruntime-web 1.30.0."""
    assert ort_assets.ORT_INTEGRITY.startswith("sha512-") and len(base64.b64decode(ort_assets.ORT_INTEGRITY[7:])) == 64
    fake = tmp_path / "onnxruntime-web-1.30.0.tgz"
    fake.write_bytes(b"not the release")
    with pytest.raises(assets.IntegrityError, match="onnxruntime-web"):
        ort_assets.fetch_ort(tmp_path / "assets", registry="http://127.0.0.1:9", tarball=fake)


def test_a_tarball_of_another_package_is_refused(registry, tmp_path: Path, monkeypatch):
    other = tmp_path / "other.tgz"
    other.write_bytes(npm_tarball({"package.json": json.dumps({"name": "onnxruntime-web", "version": "1.29.0"}).encode()}))
    monkeypatch.setattr(ort_assets, "ORT_INTEGRITY", _integrity(other.read_bytes()))
    with pytest.raises(assets.AssetError, match="1.29.0, expected onnxruntime-web 1.30.0"):
        ort_assets.fetch_ort(tmp_path / "assets", registry=registry["url"], tarball=other)


def test_unreachable_registry_says_how_to_supply_the_tarball(tmp_path: Path):
    with pytest.raises(assets.AssetError) as err:
        ort_assets.fetch_ort(tmp_path / "assets", registry="http://127.0.0.1:9/unreachable")
    message = str(err.value)
    assert "127.0.0.1:9" in message and "--ort-tarball" in message and "--no-ort" in message
    assert not isinstance(err.value, assets.IntegrityError)


def test_second_fetch_downloads_nothing_and_a_changed_file_is_fetched_again(registry, tmp_path: Path, monkeypatch):
    dest = tmp_path / "assets"
    ort_assets.fetch_ort(dest, registry=registry["url"])
    before = {p.name: p.read_bytes() for p in (dest / "ort").iterdir()}
    with monkeypatch.context() as m:
        _no_download(m)
        again = ort_assets.fetch_ort(dest, registry=registry["url"])
    assert {n: f["source"] for n, f in again.items()} == {f"ort/{n}": "cached" for n in ort_assets.ORT_FILES}
    assert {p.name: p.read_bytes() for p in (dest / "ort").iterdir()} == before
    (dest / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(b"changed")
    assert ort_assets.cached_ort(dest) is None
    repaired = ort_assets.fetch_ort(dest, registry=registry["url"])
    assert repaired["ort/ort-wasm-simd-threaded.wasm"]["source"] != "cached"
    assert {p.name: p.read_bytes() for p in (dest / "ort").iterdir()} == before


def test_fetch_assets_lists_ort_in_the_manifest_and_verifies_it(distribution, registry, monkeypatch):  # noqa: F811
    d = distribution
    _fetch(d, ort=True, npm_registry=registry["url"])
    dest = d["dest"]
    manifest = json.loads((dest / assets.MANIFEST_NAME).read_text())
    names = [f"ort/{n}" for n in ort_assets.ORT_FILES]
    for name in names:
        assert manifest["files"][name]["sha256"] == hashlib.sha256((dest / name).read_bytes()).hexdigest()
    assert manifest["ort"] == {"package": "onnxruntime-web", "version": "1.30.0", "integrity": ort_assets.ORT_INTEGRITY,
                               "entry": "ort/ort.wasm.min.mjs", "files": names}
    found = assets.open_assets(dest, verify=True)
    ort_assets.require_ort(found.root, found.manifest)

    _no_download(monkeypatch)  # idempotent: the second run finds everything in place
    report = _fetch(d, ort=True, npm_registry=registry["url"])
    assert all(report.files[n]["source"] == "cached" for n in names)
    again = json.loads((dest / assets.MANIFEST_NAME).read_text())
    assert again["files"] == manifest["files"] and again["ort"] == manifest["ort"]
    # without ort=True a verified copy in place is kept, not dropped from the manifest
    _fetch(d)
    assert json.loads((dest / assets.MANIFEST_NAME).read_text())["ort"] == manifest["ort"]

    (dest / "ort" / "ort.wasm.min.mjs").write_text("// changed")
    with pytest.raises(assets.IntegrityError, match="ort.wasm.min.mjs"):
        assets.open_assets(dest, verify=True)


def test_without_ort_the_assets_say_how_to_add_it(distribution):  # noqa: F811
    _fetch(distribution)
    found = assets.open_assets(distribution["dest"], verify=True)
    assert found.manifest["ort"] is None and not (found.root / "ort").exists()
    with pytest.raises(assets.AssetError, match="pyodide-runtime assets fetch"):
        ort_assets.require_ort(found.root, found.manifest)


def _cli(d: dict, *extra: str) -> list[str]:
    return ["assets", "fetch", "--dest", str(d["dest"]), "--mirror", str(d["mirror"]), "--mirror", str(d["pure"]),
            "--wheel", str(d["own"]), "--npm-tarball", str(d["tarball"]), "--no-cdn", *extra]


def test_cli_fetches_ort_by_default_and_skips_it_when_told(distribution, registry, capsys):  # noqa: F811
    d = distribution
    assert main(_cli(d, "--no-ort")) == 0
    assert not (d["dest"] / "ort").exists()
    assert main(_cli(d, "--npm-registry", registry["url"])) == 0
    assert "onnxruntime-web 1.30.0: 3 files" in capsys.readouterr().err
    assert assets.open_assets(d["dest"], verify=True).manifest["ort"]["version"] == "1.30.0"


def test_cli_integrity_mismatch_is_an_error_naming_the_package(distribution, registry, capsys, monkeypatch):  # noqa: F811
    d = distribution
    monkeypatch.setattr(ort_assets, "ORT_INTEGRITY", _integrity(b"another tarball"))
    code = main(_cli(d, "--ort-tarball", str(registry["tarball"])))
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "onnxruntime-web" in err and "integrity" in err and "Traceback" not in err


def test_ort_files_are_served_under_the_assets_url_with_types_and_caching(tmp_path: Path):
    root = make_assets(tmp_path / "assets")
    (root / "ort").mkdir()
    manifest = json.loads((root / "manifest.json").read_text())
    for name in ort_assets.ORT_FILES:
        data = DIST_FILES[name]
        (root / "ort" / name).write_bytes(data)
        manifest["files"][f"ort/{name}"] = {"sha256": hashlib.sha256(data).hexdigest(), "source": "test"}
    (root / "ort" / ort_assets.RECORD_NAME).write_text("{}")
    (root / "ort" / "unlisted.mjs").write_text("// not in the manifest\n")
    (root / "manifest.json").write_text(json.dumps(manifest))
    routes = FileRoutes(REPO / "static", REPO / "js_bridge", assets.open_assets(root, verify=True), None)
    app = web.Application()
    routes.add_routes(app)

    async def scenario() -> None:
        async with TestClient(TestServer(app)) as client:
            base = routes.assets_url + "ort/"
            for name, kind in (("ort.wasm.min.mjs", "text/javascript"), ("ort-wasm-simd-threaded.mjs", "text/javascript"),
                               ("ort-wasm-simd-threaded.wasm", "application/wasm")):
                response = await client.get(base + name)
                assert response.status == 200, name
                assert response.headers["Content-Type"].split(";")[0] == kind
                assert response.headers["Cache-Control"] == IMMUTABLE
                assert await response.read() == DIST_FILES[name]
            for bad in (base + "unlisted.mjs", base + ort_assets.RECORD_NAME, base + "..%2Fmanifest.json",
                        "/assets/0000000000000000/ort/ort.wasm.min.mjs"):
                assert (await client.get(bad)).status == 404, bad

    asyncio.run(scenario())


def test_the_page_policy_lets_same_origin_modules_compile_webassembly():
    """onnxruntime-web is imported from this origin and compiles its wasm, exactly as Pyodide does."""
    csp = dict(part.split(" ", 1) for part in page_csp(b"<html></html>", "localhost:8000").split("; "))
    assert {"'self'", "'wasm-unsafe-eval'"} <= set(csp["script-src"].split())
    assert csp["worker-src"] == "'self'" and "'self'" in csp["connect-src"].split()


def test_the_page_imports_the_entry_module_that_is_fetched():
    source = (REPO / "js_bridge" / "policy.mjs").read_text()
    assert re.search(r'export const ORT_ENTRY = "([^"]+)"', source).group(1) == ort_assets.ORT_ENTRY
