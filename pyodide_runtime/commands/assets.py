"""Fetch, verify and lock the self-hosted Pyodide assets the participant page loads.

`assets fetch` assembles the directory (idempotent: verified files already present are kept);
`assets verify` re-checks every file's sha256 against the manifest; `assets path` prints the default location.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyodide_runtime.assets import DEFAULT_CDN, DEFAULT_NPM_REGISTRY, DEFAULT_PYODIDE_VERSION


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
    verify = sub.add_parser("verify", help="re-check every asset file against the manifest")
    verify.add_argument("--dest", type=Path, help="asset directory")
    sub.add_parser("path", help="print the default asset directory")


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime import assets
    from pyodide_runtime.cli import CommandError

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
        report = assets.fetch_assets(
            args.dest,
            pyodide_version=args.pyodide_version,
            mirrors=args.mirror,
            wheel=args.wheel,
            npm_registry=args.npm_registry,
            npm_tarball=args.npm_tarball,
            cdn=None if args.no_cdn else args.cdn,
            progress=progress,
        )
    except assets.AssetError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{report.dest}: {len(report.files)} files ready, {len(report.fetched)} fetched this run")
    return 0
