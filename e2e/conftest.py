"""Shared fixtures for browser tests: the fetched assets and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def chromium_path() -> str:
    from players import chromium_path as find_chromium

    try:
        return find_chromium()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    from pyodide_runtime.host.assets import AssetError, open_assets

    try:
        return open_assets(os.environ.get("PYODIDE_RUNTIME_ASSETS") and Path(os.environ["PYODIDE_RUNTIME_ASSETS"])).root
    except AssetError as exc:
        pytest.fail(f"browser tests need the self-hosted assets: {exc}")


@pytest.fixture(scope="module")
def browser():
    """A Playwright-launched Chromium for one test module (stopped after it, so other modules can drive their own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield b
        b.close()
