"""Locate the participant page (``static/``) and the JavaScript bridge (``js_bridge/``).

An installed wheel carries them as ``pyodide_runtime/_web/static`` and ``pyodide_runtime/_web/js_bridge``. In a
source checkout (an editable install) they are the repository's top-level ``static/`` and ``js_bridge/``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WebFilesError", "web_dir", "static_dir", "js_bridge_dir"]

_PACKAGE = Path(__file__).resolve().parents[1]


class WebFilesError(FileNotFoundError):
    """The page or the bridge is not where an install or a checkout puts it."""


def web_dir(name: str) -> Path:
    """The directory ``name`` (``"static"`` or ``"js_bridge"``) of this installation."""
    if name not in ("static", "js_bridge"):
        raise ValueError(f"unknown web directory {name!r}")
    packaged = _PACKAGE / "_web" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent
    # Only trust a sibling directory when the parent really is this project's checkout.
    pyproject = checkout / "pyproject.toml"
    if (checkout / name).is_dir() and pyproject.is_file() and 'name = "pyodide-runtime"' in pyproject.read_text():
        return checkout / name
    raise WebFilesError(
        f"cannot find the {name}/ directory: looked in {packaged} and {checkout / name}. "
        "Reinstall pyodide-runtime from its wheel, or install the source checkout with `pip install -e .`."
    )


def static_dir() -> Path:
    """The participant page's directory."""
    return web_dir("static")


def js_bridge_dir() -> Path:
    """The JavaScript bridge's directory."""
    return web_dir("js_bridge")
