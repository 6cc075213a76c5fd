"""Support for two-player browser tests: the study server as a process, and one Chromium process per player.

Each player's Chromium is started by hand and attached over CDP (``no_defaults=True``), so hidden tabs really are
hidden and downloads land as files in the player's own directory (``Browser.setDownloadBehavior``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from server_support import launch_server  # tests/server_support.py

REPO = Path(__file__).resolve().parent.parent
COIN_CHASE = "pyodide_runtime.envs.examples.coin_chase:make_env"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium); browser tests need it")
    return path


class StudyServer:
    """``python -m pyodide_runtime serve`` with a study config, on a free port, logging to a file."""

    def __init__(self, workdir: Path, config: dict[str, Any], *, assets: Path, env: str = COIN_CHASE,
                 extra: list[str] | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "study.json"
        self.config_path.write_text(json.dumps(config))
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.argv = [sys.executable, "-m", "pyodide_runtime", "serve", "--env", env, "--config", str(self.config_path),
                     "--port", "0", "--assets", str(assets), "--data-dir", str(self.data_dir), *(extra or [])]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> StudyServer:
        self._log = self.log_path.open("w")
        self.proc, self.url = launch_server(self.argv, self.workdir, self._log, self.log_path, timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class Player:
    """One participant: a Chromium process of its own, attached with Playwright over CDP, one page."""

    def __init__(self, pw: Any, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.downloads = workdir / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        self.profile = Path(tempfile.mkdtemp(prefix=f"chromium-{name}-"))
        self.port = free_port()
        self.console: list[str] = []
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless=new", f"--remote-debugging-port={self.port}",
             f"--user-data-dir={self.profile}", "--no-first-run", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.browser = self._attach(pw)
        self.context = self.browser.contexts[0]
        cdp = self.browser.new_browser_cdp_session()
        cdp.send("Browser.setDownloadBehavior",
                 {"behavior": "allow", "downloadPath": str(self.downloads), "eventsEnabled": True})
        self.cdp = cdp
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def _attach(self, pw: Any) -> Any:
        endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                return pw.chromium.connect_over_cdp(endpoint, no_defaults=True)
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def open(self, url: str) -> None:
        self.page.goto(url)

    def status(self) -> dict[str, Any]:
        try:
            return self.page.evaluate("window.pyodideRuntime ? window.pyodideRuntime.status() : null") or {}
        except Exception as exc:  # a page being navigated or frozen
            return {"unavailable": str(exc)}

    def bundles(self) -> list[Path]:
        return sorted(p for p in self.downloads.iterdir() if p.suffix == ".zip")

    def save_evidence(self, into: Path) -> None:
        into.mkdir(parents=True, exist_ok=True)
        (into / f"{self.name}-console.log").write_text("\n".join(self.console))
        (into / f"{self.name}-status.json").write_text(json.dumps(self.status(), indent=2))
        try:
            self.page.screenshot(path=str(into / f"{self.name}.png"))
        except Exception as exc:
            (into / f"{self.name}-screenshot-error.txt").write_text(str(exc))
        for path in self.downloads.iterdir():
            shutil.copy(path, into / f"{self.name}-{path.name}")

    def close(self) -> None:
        try:
            self.browser.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command-line tool, as a subprocess."""
    return subprocess.run([sys.executable, "-m", "pyodide_runtime", *args], capture_output=True, text=True,
                          timeout=timeout)
