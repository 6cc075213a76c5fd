"""Automated participants: the study server as a process, and one headless Chromium per player.

Used by ``pyodide-runtime demo``, the end-to-end tests and the browser benchmarks. Each player's Chromium is
started by hand and attached with Playwright over CDP (``no_defaults=True``), so a background tab really is
hidden and downloads land as files in the player's own directory (``Browser.setDownloadBehavior``).
Playwright is imported by the caller (``pip install pyodide-runtime[demo]``); this module does not need it.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["free_port", "chromium_path", "launch_server", "StudyServer", "Player", "wait_for", "run_cli",
           "CHROMIUM_FLAGS"]

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"

#: Flags for a headless Chromium on a machine with a closed network: no background calls home, no GPU.
CHROMIUM_FLAGS = ("--headless=new", "--no-first-run", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    """The Chromium executable: ``$CHROMIUM``, else ``chromium`` on the PATH; raise ``RuntimeError`` with the fix."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium; or set CHROMIUM=/path)")
    return path


def launch_server(argv: Sequence[str], workdir: Path, log: Any, log_path: Path,
                  timeout: float = 30.0) -> tuple[subprocess.Popen[str], str]:
    """Start a study server process (stderr to ``log``) and wait for its ``Study URL:`` line; return both."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=workdir)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            proc.wait(5)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        if line.startswith("Study URL: "):
            return proc, line.split(": ", 1)[1].strip().rstrip("/")
    proc.kill()
    raise RuntimeError(f"the server did not print its URL within {timeout:.0f} s; its log is {log_path}")


class StudyServer:
    """``python -m pyodide_runtime serve`` with a study config, on a free port, logging to a file.

    ``config`` is either a dict (written as JSON into ``workdir``) or the path of an existing config file.
    ``start_timeout`` is how long the server may take to print its URL (preparing ``[env] packages`` takes longer).
    """

    def __init__(self, workdir: Path, config: dict[str, Any] | Path, *, assets: Path | None, env: str | None = COIN_CHASE,
                 extra: Sequence[str] = (), start_timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.start_timeout = start_timeout
        workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(config, dict):
            self.config_path = workdir / "study.json"
            self.config_path.write_text(json.dumps(config))
        else:
            self.config_path = Path(config)
        self.data_dir = workdir / "data"
        self.log_path = workdir / "server.log"
        self.argv = [sys.executable, "-m", "pyodide_runtime", "serve", "--config", str(self.config_path),
                     "--port", "0", "--data-dir", str(self.data_dir), *extra]
        if env is not None:
            self.argv += ["--env", env]
        if assets is not None:
            self.argv += ["--assets", str(assets)]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> StudyServer:
        self._log = self.log_path.open("w")
        try:
            self.proc, self.url = launch_server(self.argv, self.workdir, self._log, self.log_path, timeout=self.start_timeout)
        except BaseException:
            self._log.close()
            raise
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

    def __init__(self, pw: Any, name: str, workdir: Path, *, headless: bool = True) -> None:
        self.name = name
        self.workdir = workdir
        self.downloads = workdir / "downloads"
        self.downloads.mkdir(parents=True, exist_ok=True)
        self.profile = Path(tempfile.mkdtemp(prefix=f"chromium-{name}-"))
        self.port = free_port()
        self.console: list[str] = []
        flags = [f for f in CHROMIUM_FLAGS if headless or f != "--headless=new"]
        self.proc = subprocess.Popen(
            [chromium_path(), *flags, f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self.browser = self._attach(pw)
        except BaseException:
            self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.context = self.browser.contexts[0]
        self.cdp = self.browser.new_browser_cdp_session()
        self.set_download_dir(self.downloads)
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

    def set_download_dir(self, directory: Path) -> None:
        """Send this player's downloads to ``directory`` from now on."""
        directory.mkdir(parents=True, exist_ok=True)
        self.downloads = directory
        self.cdp.send("Browser.setDownloadBehavior",
                      {"behavior": "allow", "downloadPath": str(directory), "eventsEnabled": True})

    def open(self, url: str) -> None:
        self.page.goto(url)

    def status(self) -> dict[str, Any]:
        """The page's ``window.pyodideRuntime.status()``, or ``{"unavailable": why}``."""
        try:
            return self.page.evaluate("window.pyodideRuntime ? window.pyodideRuntime.status() : null") or {}
        except Exception as exc:  # a page being navigated or frozen
            return {"unavailable": str(exc)}

    def bundles(self) -> list[Path]:
        """Completely downloaded export bundles (``.zip``), oldest name first."""
        return sorted(p for p in self.downloads.iterdir() if p.suffix == ".zip" and p.stat().st_size > 0)

    def save_evidence(self, into: Path) -> None:
        """Console, status, a screenshot and the downloads, for a failure report."""
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


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
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
