"""Fetch, verify and lock the self-hosted Pyodide assets the participant page loads.

`assets fetch` assembles the directory (idempotent: verified files already present are kept; it includes
onnxruntime-web for ONNX policies unless told `--no-ort`), and with
`--config study.toml` also prepares the study's `[env] packages` and `[env] source`;
`assets add REQ ...` resolves, fetches and locks extra packages for a study ahead of time;
`assets verify` re-checks every file's sha256 against the manifest; `assets path` prints the default location.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from pyodide_runtime.host.assets import DEFAULT_CDN, DEFAULT_NPM_REGISTRY, DEFAULT_PYODIDE_VERSION


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="assets_command", metavar="ACTION", required=True)
    fetch = sub.add_parser("fetch", help="download or copy, verify and lock the assets")
    fetch.add_argument("--pyodide-version", default=DEFAULT_PYODIDE_VERSION, help="Pyodide version (default %(default)s)")
    fetch.add_argument("--dest", type=Path, help="asset directory (default: $PYODIDE_RUNTIME_ASSETS or the user cache)")
    fetch.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="a directory, zip/wheel or base URL holding Pyodide package files; repeatable; tried before the CDN",
    )
    fetch.add_argument("--wheel", type=Path, help="our wheel to serve (default: newest dist/*.whl, else packed from this install)")
    fetch.add_argument("--npm-registry", default=DEFAULT_NPM_REGISTRY, help="npm registry (default %(default)s)")
    fetch.add_argument("--npm-tarball", type=Path, help="use this pyodide-<version>.tgz instead of the registry")
    fetch.add_argument("--cdn", default=DEFAULT_CDN, help="Pyodide CDN base URL template (default %(default)s)")
    fetch.add_argument("--no-cdn", action="store_true", help="never contact the CDN; use mirrors only")
    fetch.add_argument("--ort-tarball", type=Path, help="use this onnxruntime-web-<version>.tgz instead of the registry")
    fetch.add_argument("--no-ort", action="store_true", help="skip onnxruntime-web (needed only by ONNX policies)")
    fetch.add_argument(
        "--config", type=Path, help="a study TOML: also prepare its [env] packages and [env] source for the page"
    )
    add = sub.add_parser("add", help="resolve, fetch and lock extra packages for a study ahead of time")
    add.add_argument("requirements", nargs="*", metavar="REQ", help='pip requirement strings, e.g. "cogrid==0.3.2"')
    add.add_argument("--dest", type=Path, help="asset directory (default: $PYODIDE_RUNTIME_ASSETS or the user cache)")
    add.add_argument("--source", type=Path, metavar="DIR", help="a local env directory to pack into a wheel")
    add.add_argument("--name", help="distribution name of the packed env (default study-env-<directory name>)")
    add.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="PATH_OR_URL",
        help="a directory, zip/wheel or base URL holding Pyodide package files or pure wheels; repeatable",
    )
    add.add_argument("--cdn", default=DEFAULT_CDN, help="Pyodide CDN base URL template (default %(default)s)")
    add.add_argument("--no-cdn", action="store_true", help="never contact the CDN; use mirrors only")
    add.add_argument("--no-index", action="store_true", help="never ask the package index; use mirrors only")
    add.add_argument("--refresh", action="store_true", help="resolve again instead of reusing a cached resolution")
    verify = sub.add_parser("verify", help="re-check every asset file against the manifest")
    verify.add_argument("--dest", type=Path, help="asset directory")
    sub.add_parser("path", help="print the default asset directory")


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host import assets
    from pyodide_runtime.host.cli import CommandError

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.assets_command == "path":
            print(assets.default_assets_dir())
            return 0
        if args.assets_command == "verify":
            found = assets.open_assets(args.dest, verify=True)
            print(f"{found.root}: {len(found.manifest['files'])} files verified")
            return 0
        if args.assets_command == "add":
            if not args.requirements and args.source is None:
                raise CommandError("name at least one requirement or pass --source DIR")
            _prepare(args.requirements, args.dest, args.source, args.name, args, progress)
            return 0
        study = _read_study_env(args.config) if args.config is not None else None
        report = assets.fetch_assets(
            args.dest,
            pyodide_version=args.pyodide_version,
            mirrors=args.mirror,
            wheel=args.wheel,
            npm_registry=args.npm_registry,
            npm_tarball=args.npm_tarball,
            cdn=None if args.no_cdn else args.cdn,
            ort=not args.no_ort,
            ort_tarball=None if args.no_ort else args.ort_tarball,
            progress=progress,
        )
        print(f"{report.dest}: {len(report.files)} files ready, {len(report.fetched)} fetched this run")
        if study is not None and (study[0] or study[1] is not None):
            _prepare(study[0], report.dest, study[1], None, args, progress)
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from exc
    return 0


def _read_study_env(config: Path) -> tuple[list[str], Path | None]:
    """``[env] packages`` (pip requirement strings) and ``[env] source`` (relative to the TOML) of a study."""
    from pyodide_runtime.host.cli import CommandError

    try:
        data = tomllib.loads(config.read_text())
    except OSError as exc:
        raise CommandError(f"cannot read {config}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(f"{config} is not valid TOML: {exc}") from exc
    env = data.get("env", {})
    if not isinstance(env, dict):
        raise CommandError(f"{config}: [env] must be a table")
    packages = env.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) for p in packages):
        raise CommandError(f'{config}: [env] packages must be a list of requirement strings, e.g. ["cogrid==0.3.2"]')
    source = env.get("source")
    if source is not None and not isinstance(source, str):
        raise CommandError(f"{config}: [env] source must be a directory path (relative to the TOML file)")
    return packages, (config.parent / source).resolve() if source is not None else None


def _prepare(
    requirements: list[str],
    dest: Path | None,
    source: Path | None,
    name: str | None,
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> None:
    """Prepare a study's packages and print what was resolved (name, version, source, sha256 prefix, chain)."""
    from pyodide_runtime.host.packages import prepare_study_packages

    study = prepare_study_packages(
        requirements,
        assets=dest,
        source_dir=source,
        source_name=name,
        mirrors=args.mirror,
        cdn=None if args.no_cdn else args.cdn,
        index=not getattr(args, "no_index", False),
        refresh=getattr(args, "refresh", False),
        progress=progress,
    )
    rows = [(p.name, p.version, p.source, p.sha256[:12], " -> ".join(p.required_by)) for p in study.packages]
    if rows:
        rows.insert(0, ("name", "version", "source", "sha256", "required by"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    else:
        print("no packages beyond the base lock")
    print(f"lock: {study.lock_path}")
