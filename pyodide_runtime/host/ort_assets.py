"""onnxruntime-web for ONNX policies: fetch the pinned npm release, verify it, keep only the wasm backend.

The page runs a study's ONNX policies with onnxruntime-web's WebAssembly backend inside its worker. Of the npm
package (about 33 MB packed) it needs three files, kept in ``<assets>/ort/``:

- ``ort.wasm.min.mjs``: the JavaScript API (``InferenceSession``, ``Tensor``, ``env``) of the wasm-only build;
- ``ort-wasm-simd-threaded.mjs``: the Emscripten loader it imports from ``env.wasm.wasmPaths``;
- ``ort-wasm-simd-threaded.wasm``: the runtime itself. It runs single-threaded (``env.wasm.numThreads = 1``),
  so the page needs no cross-origin isolation.

The same three files run under Node 20 (``js_bridge/policy_node.mjs``). The single-file bundle
(``ort.wasm.bundle.min.mjs``) is not used: it cannot load its wasm under Node.

The tarball is checked against the sha512 integrity pinned here, never only against what a registry reports.
The work is idempotent: files already in place that match the record written beside them are kept.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.error
from collections.abc import Callable, Mapping
from pathlib import Path

from pyodide_runtime.host.assets import AssetError, IntegrityError, _atomic_write, _download, sha256_file

__all__ = [
    "ORT_PACKAGE", "ORT_VERSION", "ORT_INTEGRITY", "ORT_DIR", "ORT_ENTRY", "ORT_FILES",
    "fetch_ort", "cached_ort", "ort_manifest_entry", "require_ort",
]

ORT_PACKAGE = "onnxruntime-web"
ORT_VERSION = "1.30.0"
#: The npm registry's ``dist.integrity`` of onnxruntime-web 1.30.0.
ORT_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
#: Where the files go, relative to the asset directory (and to the assets URL).
ORT_DIR = "ort"
#: The module the page imports (``assetsURL + "ort/" + ORT_ENTRY``); ``js_bridge/policy.mjs`` names the same file.
ORT_ENTRY = "ort.wasm.min.mjs"
#: Everything the wasm backend loads, as named in the package's ``dist/`` folder.
ORT_FILES = (ORT_ENTRY, "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: The record of what is in ``ort/`` (a hidden file: never served).
RECORD_NAME = ".ort-integrity"

Progress = Callable[[str], None]


def fetch_ort(
    dest: Path,
    *,
    registry: str,
    tarball: Path | None = None,
    version: str | None = None,
    integrity: str | None = None,
    progress: Progress = lambda msg: None,
) -> dict[str, dict[str, str]]:
    """Put the wasm backend of onnxruntime-web into ``dest/ort/``; return ``{"ort/<file>": {sha256, source}}``.

    The tarball comes from ``tarball`` or from the npm ``registry`` (any URL urllib opens, ``file://`` included).
    Its sha512 must equal ``integrity`` (default :data:`ORT_INTEGRITY`) or :class:`IntegrityError` is raised and
    nothing is written. Files already in place and matching are kept without a download.
    """
    version = version or ORT_VERSION
    integrity = integrity or ORT_INTEGRITY
    cached = cached_ort(dest, version=version, integrity=integrity)
    if cached is not None:
        progress(f"{ORT_PACKAGE} {version}: cached")
        return cached
    if tarball is not None:
        try:
            data = tarball.read_bytes()
        except OSError as exc:
            raise AssetError(f"--ort-tarball {tarball}: {exc}") from exc
        source = str(tarball)
    else:
        url = _tarball_url(registry, version)
        progress(f"{ORT_PACKAGE} {version}: downloading {url}")
        try:
            data = _download(url, timeout=300)
        except (urllib.error.URLError, OSError) as exc:
            raise AssetError(
                f"cannot download {ORT_PACKAGE} {version} ({url}: {exc}).\n"
                f"Supply the tarball instead: `npm pack {ORT_PACKAGE}@{version}` on a connected machine, then pass "
                f"--ort-tarball {ORT_PACKAGE}-{version}.tgz (or pass --no-ort when no study uses ONNX policies)."
            ) from exc
        source = url
    check_integrity(data, integrity, f"{ORT_PACKAGE} {version} tarball from {source}")
    contents = _extract(data, version, source)
    folder = dest / ORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():  # files of another release
        if old.is_file() and not old.name.startswith(".") and old.name not in ORT_FILES:
            old.unlink()
    files: dict[str, dict[str, str]] = {}
    for name, blob in contents.items():
        _atomic_write(folder / name, blob)
        files[f"{ORT_DIR}/{name}"] = {"sha256": hashlib.sha256(blob).hexdigest(), "source": source}
    record = {"package": ORT_PACKAGE, "version": version, "integrity": integrity,
              "files": {n: f["sha256"] for n, f in files.items()}}
    _atomic_write(folder / RECORD_NAME, json.dumps(record, indent=1, sort_keys=True).encode())
    size = sum(len(b) for b in contents.values())
    progress(f"{ORT_PACKAGE} {version}: {len(contents)} files ({size // 1024} KB) from {source} (integrity ok)")
    return files


def cached_ort(
    dest: Path, *, version: str | None = None, integrity: str | None = None
) -> dict[str, dict[str, str]] | None:
    """The ``ort/`` files already in ``dest`` when they are the pinned release, complete and unchanged; else None."""
    version = version or ORT_VERSION
    integrity = integrity or ORT_INTEGRITY
    folder = dest / ORT_DIR
    try:
        record = json.loads((folder / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != version or record.get("integrity") != integrity:
        return None
    expected = record.get("files") or {}
    names = [f"{ORT_DIR}/{n}" for n in ORT_FILES]
    if set(expected) != set(names):
        return None
    for name in names:
        path = dest / name
        if not path.is_file() or sha256_file(path) != expected[name]:
            return None
    return {name: {"sha256": expected[name], "source": "cached"} for name in names}


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    """Raise :class:`IntegrityError` naming ``what`` unless ``data`` has the npm-style ``integrity`` digest."""
    algo, _, expected = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        raise IntegrityError(f"{what}: unsupported integrity algorithm {algo!r}")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise IntegrityError(
            f"{what} failed its integrity check: expected {integrity}, got {algo}-{actual}. "
            "The download is corrupt or was tampered with; nothing was written."
        )


def ort_manifest_entry(dest: Path, files: Mapping[str, object]) -> dict[str, object] | None:
    """The asset manifest's ``"ort"`` entry (package, version, integrity, entry module, files) when ``files`` (the
    manifest's file table) holds the ``ort/`` files of ``dest``; else None."""
    names = [f"{ORT_DIR}/{n}" for n in ORT_FILES]
    if not all(n in files for n in names):
        return None
    try:
        record = json.loads((dest / ORT_DIR / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None
    return {"package": ORT_PACKAGE, "version": record.get("version"), "integrity": record.get("integrity"),
            "entry": f"{ORT_DIR}/{ORT_ENTRY}", "files": names}


def require_ort(root: Path, manifest: Mapping[str, object]) -> None:
    """Raise :class:`AssetError` unless the asset directory ``root`` (with its ``manifest``) holds onnxruntime-web."""
    files = manifest.get("files")
    names = [f"{ORT_DIR}/{n}" for n in ORT_FILES]
    if not isinstance(files, Mapping) or not all(n in files for n in names):
        raise AssetError(
            f"the assets in {root} lack {ORT_PACKAGE} {ORT_VERSION}, which ONNX policies need. "
            f"Run `pyodide-runtime assets fetch --dest {root}` (without --no-ort)."
        )


def _tarball_url(registry: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{ORT_PACKAGE}/-/{ORT_PACKAGE}-{version}.tgz"


def _extract(data: bytes, version: str, source: str) -> dict[str, bytes]:
    """The :data:`ORT_FILES` from the verified tarball, after checking its package.json names this release."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                member = members.get(name)
                handle = tar.extractfile(member) if member is not None else None
                if handle is None:
                    raise AssetError(f"{ORT_PACKAGE} tarball from {source} lacks {name}")
                return handle.read()

            pkg = json.loads(read("package.json"))
            if pkg.get("name") != ORT_PACKAGE or pkg.get("version") != version:
                raise AssetError(
                    f"tarball from {source} holds {pkg.get('name')} {pkg.get('version')}, "
                    f"expected {ORT_PACKAGE} {version}"
                )
            return {name: read(f"dist/{name}") for name in ORT_FILES}
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise AssetError(f"{ORT_PACKAGE} tarball from {source} cannot be read: {exc}") from exc
