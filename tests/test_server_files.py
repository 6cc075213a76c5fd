"""Locating the page and the bridge, safe paths, and the page's Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from pyodide_runtime.host import web
from pyodide_runtime.host.server.files import content_type, inline_script_hashes, page_csp, safe_path


def test_web_dirs_of_this_checkout():
    repo = Path(__file__).resolve().parent.parent
    assert web.static_dir() in (repo / "static", Path(web.__file__).parent / "_web" / "static")
    assert (web.js_bridge_dir() / "loader.mjs").is_file()
    with pytest.raises(ValueError):
        web.web_dir("../etc")


def test_web_dirs_of_a_wheel_install_and_of_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = tmp_path / "site-packages" / "pyodide_runtime"
    (package / "_web" / "static").mkdir(parents=True)
    (tmp_path / "site-packages" / "js_bridge").mkdir()  # a stray sibling directory is never picked up
    monkeypatch.setattr(web, "_PACKAGE", package)
    assert web.static_dir() == package / "_web" / "static"
    with pytest.raises(web.WebFilesError, match="js_bridge"):
        web.js_bridge_dir()
    checkout = tmp_path / "checkout"
    (checkout / "pyodide_runtime").mkdir(parents=True)
    (checkout / "js_bridge").mkdir()
    (checkout / "pyproject.toml").write_text('[project]\nname = "pyodide-runtime"\n')
    monkeypatch.setattr(web, "_PACKAGE", checkout / "pyodide_runtime")
    assert web.js_bridge_dir() == checkout / "js_bridge"


def test_safe_path(tmp_path: Path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.js").write_text("x")
    (root / ".hidden").write_text("x")
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert safe_path(root, "sub/a.js") == (root / "sub" / "a.js").resolve()
    assert safe_path(root, "sub//a.js") == (root / "sub" / "a.js").resolve()
    for bad in ["../secret.txt", "sub/../../secret.txt", ".hidden", "link.txt", "sub", "", "sub\\a.js",
                "sub/a.js\x00", "/etc/passwd"]:
        assert safe_path(root, bad) is None, bad


def test_content_types():
    assert content_type(Path("a.mjs")).startswith("text/javascript")
    assert content_type(Path("a.WASM")) == "application/wasm"
    assert content_type(Path("a.unknown")) == "application/octet-stream"


def test_csp_allows_the_page_inline_scripts_by_hash_only():
    html = b'<script type="module">\nconsole.log(1)\n</script><script src="/x.mjs"></script><SCRIPT>b()</SCRIPT>'
    expected = ["'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
                for body in (b"\nconsole.log(1)\n", b"b()")]
    assert inline_script_hashes(html) == expected
    csp = page_csp(html, "example.org:8443")
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert all(h in csp for h in expected)
    assert "connect-src 'self' ws://example.org:8443 wss://example.org:8443" in csp
    assert "ws://" not in page_csp(html, "evil.org; script-src *")  # a strange Host header is left out
