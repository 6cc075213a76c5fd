"""The whole product on one machine: a study server, two browser players, one session, two identical exports.

:func:`run_demo` starts ``pyodide-runtime serve`` with the bundled Coin Chase example, opens two headless
Chromium players on autopilot (player A behind injected latency, and away mid-episode: its game tab hidden behind
another tab, then frozen, then brought back), waits for both browsers to download their export bundles, and runs
:func:`pyodide_runtime.host.compare.compare` and :func:`pyodide_runtime.host.validate.validate` on them. With
``headed=True`` a person plays seat A in their own browser and only player B is automated.

The figures of the summary (frames, rollbacks, fast-forwards, away periods, transport) are read from the
downloaded bundles themselves, so they describe the data a researcher would get.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pyodide_runtime.host.headless import COIN_CHASE, Player, StudyServer, chromium_path

__all__ = ["DemoOptions", "DemoResult", "SideFacts", "DemoSetupError", "demo_study", "run_demo"]

STALL_SECONDS = 30.0  # no confirmed frame for this long while playing: the session is stuck
PROGRESS_SECONDS = 3.0


@dataclass
class _Study:
    """The study the demo serves: a config (dict written as JSON, or a file passed through) and its env."""

    config: dict[str, Any] | Path
    env: str | None
    episodes: int
    fps: int
    episode_frames: int

    @property
    def play_seconds(self) -> float:
        return self.episodes * self.episode_frames / self.fps


class DemoSetupError(Exception):
    """Something the demo needs is missing (Playwright, Chromium, the assets, a usable config); says the fix."""


class _Failure(Exception):
    """The session did not complete: a player did not boot, the session stalled, or time ran out."""


@dataclass
class DemoOptions:
    """What :func:`run_demo` runs. ``config`` replaces the built-in study config (it must set ``test_mode``)."""

    out: Path = Path("out/demo")
    episodes: int | None = None  # None: the study's own (2 in the built-in study)
    fps: int | None = None  # None: the study's own (30)
    episode_seconds: float | None = None  # None: the study's own (10 s)
    latency_ms: float = 80.0
    jitter_ms: float = 20.0
    loss: float = 0.0
    away: bool = True
    away_seconds: float = 3.0
    seed: int = 1
    assets: Path | None = None
    config: Path | None = None
    example: str | None = None
    timeout: float | None = None  # None: enough for the study's length (at least 180 s; 900 s when headed)
    headed: bool = False


@dataclass
class SideFacts:
    """One participant's session as its export bundle records it (plus boot time when it was automated)."""

    name: str
    bundle: str | None = None
    seat: int | None = None
    outcome: str | None = None
    confirmed_frames: int = 0
    rollbacks: int = 0
    max_rollback_depth: int = 0
    resimulated_frames: int = 0
    fast_forward_frames: int = 0
    away_periods: int = 0
    transport: str | None = None
    boot_seconds: float | None = None
    #: The scenes the participant went through, in order (from the export's participant/scenes.csv).
    scenes: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    """The verdict (``ok``: both exports identical, valid and complete) and what led to it."""

    ok: bool = False
    identical: bool | None = None
    valid: bool | None = None
    sides: list[SideFacts] = field(default_factory=list)
    compare_report: str = ""
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    evidence: str | None = None
    url: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """The closing lines of the command: the verdict and the figures behind it."""
        lines = ["", "== summary"]
        if self.error:
            lines.append(f"FAILED: {self.error}")
            if self.evidence:
                lines.append(f"consoles, status dumps, screenshots and the server log: {self.evidence}")
        if self.identical is not None:
            lines.append(f"exports        {'IDENTICAL' if self.identical else 'DIFFERENT'} (canonical data, "
                         "as `pyodide-runtime compare` decides)")
        if self.valid is not None:
            lines.append(f"validation     {'both valid' if self.valid else 'INVALID'}")
        lines += [f"  {p}" for p in self.problems]
        if self.sides:
            def each(attr: str, fmt: Callable[[Any], str] = str) -> str:
                return ", ".join(f"{s.name} {fmt(getattr(s, attr))}" for s in self.sides)

            lines += [
                f"outcome        {each('outcome')}",
                f"frames         {each('confirmed_frames')} confirmed",
                f"rollbacks      {each('rollbacks')} (max depth {each('max_rollback_depth')}; "
                f"resimulated frames {each('resimulated_frames')})",
                f"fast-forward   {each('fast_forward_frames')} frames",
                f"away periods   {each('away_periods')}",
                f"transport      {each('transport')}",
            ]
            if any(s.scenes for s in self.sides):
                lines.append(f"scenes         {each('scenes', lambda v: ' > '.join(v) or '-')}")
            lines += [f"bundle {s.name}       {s.bundle}" for s in self.sides]
        lines.append(f"{'OK' if self.ok else 'NOT OK'} in {self.seconds:.1f} s")
        return "\n".join(lines)


def demo_study(episodes: int = 2, fps: int = 30, episode_seconds: float = 10.0) -> dict[str, Any]:
    """The built-in study config: Coin Chase, short episodes, test mode (autopilot and URL network conditions),
    and the whole study around the game: consent, instructions, the waiting room, a countdown between episodes, a
    survey and a completion code."""
    return {
        "title": "Coin Chase (demo)",
        "test_mode": True,
        "env_config": {"max_steps": max(1, round(episode_seconds * fps)), "target_score": 1000},
        "session": {"players": 2, "fps": fps, "episodes": episodes, "seed": 7, "input_delay": 2,
                    "between_episodes_ms": 3000},
        "scenes": [
            {"kind": "consent", "text": "This demo records your key presses and your answers."},
            {"kind": "instructions", "text": "Collect the coins with the **arrow keys**; avoid the hazards."},
            {"kind": "waiting", "timeout_s": 120, "timeout_text": "No partner could be found."},
            {"kind": "game"},
            {"kind": "survey", "questions": [
                {"id": "fun", "kind": "likert", "prompt": "How much did you enjoy the game?", "scale": 5},
                {"id": "comments", "kind": "text", "prompt": "Anything to add?", "required": False},
            ]},
            {"kind": "end", "text": "Thank you!", "completion_code": "DEMO-DONE"},
        ],
    }


def resolve_study(options: DemoOptions) -> _Study:
    """The built-in study, ``options.config`` as it is, or ``options.example`` in test mode with the shaping
    options applied; :class:`DemoSetupError` when it cannot run as a two-player autopilot demo."""
    if options.config is None and options.example is None:
        fps = options.fps or 30
        seconds = options.episode_seconds or 10.0
        study = demo_study(options.episodes or 2, fps, seconds)
        return _Study(study, COIN_CHASE, study["session"]["episodes"], fps, study["env_config"]["max_steps"])
    from pyodide_runtime.host.study_config import (
        StudyConfigError,
        example_config,
        load_study_config,
    )

    try:
        path = options.config if options.config is not None else example_config(str(options.example))
    except ValueError as exc:
        raise DemoSetupError(f"--example: {exc}") from None
    try:
        loaded = load_study_config(path)
    except StudyConfigError as exc:
        raise DemoSetupError(str(exc)) from None
    page = json.loads(json.dumps(loaded.page))
    if loaded.players != 2:
        raise DemoSetupError(f"{path}: the demo needs a study with 2 players; this one has {loaded.players}")
    session, env_config = page.setdefault("session", {}), page.setdefault("env_config", {})
    if options.example is not None:
        page["test_mode"] = True  # the autopilot and the URL network conditions need it
        if options.episodes:
            session["episodes"] = options.episodes
        if options.fps:
            session["fps"] = options.fps
        if options.episode_seconds:
            env_config["max_steps"] = max(1, round(options.episode_seconds * session.get("fps", 30)))
    elif page.get("test_mode") is not True:
        raise DemoSetupError(f"{path}: the demo needs test_mode = true in the study config "
                             "(the autopilot and the network conditions come from the URL)")
    # Absolute: the server runs in a directory of its own.
    config: dict[str, Any] | Path = page if options.example is not None else Path(path).resolve()
    return _Study(config, loaded.env_spec or COIN_CHASE,  # a config without an env plays the bundled example
                  int(session.get("episodes", 1)), int(session.get("fps", 30)), int(env_config.get("max_steps", 300)))


def check_prerequisites(assets: Path | None) -> Path:
    """Raise :class:`DemoSetupError` naming the fix for a missing Playwright, Chromium, aiohttp or assets."""
    from pyodide_runtime.host.assets import AssetError, open_assets

    for module in ("playwright.sync_api", "aiohttp"):
        try:
            __import__(module)
        except ImportError:
            package = module.split(".")[0]
            raise DemoSetupError(f"the demo needs {package}: pip install 'pyodide-runtime[demo]'") from None
    try:
        chromium = chromium_path()
    except RuntimeError as exc:
        raise DemoSetupError(str(exc)) from None
    if not os.access(chromium, os.X_OK) or not Path(chromium).is_file():
        raise DemoSetupError(f"Chromium is not at {chromium} (Debian: apt-get install chromium; or set CHROMIUM=/path)")
    try:
        return open_assets(assets).root
    except AssetError as exc:
        hint = "" if assets is not None else " Or pass --assets DIR."
        raise DemoSetupError(f"{exc}{hint}") from None


def run_demo(options: DemoOptions, say: Callable[[str], None] = print,
             on_url: Callable[[str], None] | None = None) -> DemoResult:
    """Run one demo session; progress lines go to ``say``. Raises :class:`DemoSetupError` before starting anything.

    ``on_url`` is called with seat A's link when ``options.headed`` (a person plays seat A).
    """
    study = resolve_study(options)
    assets = check_prerequisites(options.assets)
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    timeout = options.timeout or max(900.0 if options.headed else 180.0, 90.0 + 2 * study.play_seconds)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pyodide-runtime-demo-"))
    result = DemoResult()
    try:
        with ExitStack() as stack:
            try:
                server = stack.enter_context(StudyServer(work / "server", study.config, assets=assets, env=study.env))
            except RuntimeError as exc:
                raise DemoSetupError(f"the study server did not start: {str(exc).strip().splitlines()[-1]}") from None
            result.url = server.url
            say(f"server up at {server.url}: {study.episodes} episode(s) of "
                f"{study.episode_frames} frames at {study.fps} fps")
            pw = stack.enter_context(sync_playwright())
            session = _Session(options, server, study, work, say, started + timeout, timeout)
            stack.callback(session.close)
            try:
                session.play(pw, on_url)
                result.sides = session.facts()
                _judge(result, session.bundles)
            except (_Failure, TimeoutError) as exc:
                result.error = str(exc)
                result.evidence = str(session.save_evidence(out))
                say(f"failed: {exc}; evidence saved in {result.evidence}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.seconds = time.monotonic() - started
    return result


def _judge(result: DemoResult, bundles: list[Path]) -> None:
    from pyodide_runtime.host.compare import CompareError, compare
    from pyodide_runtime.host.validate import validate

    try:
        compared = compare(bundles[0], bundles[1])
    except CompareError as exc:
        raise _Failure(f"the bundles cannot be compared: {exc}") from None
    result.identical = compared.identical
    result.compare_report = compared.report()
    checks = [validate(b) for b in bundles]
    result.valid = all(c.ok for c in checks)
    result.problems = [f"{Path(c.source).name}: {p}" for c in checks for p in c.problems]
    result.ok = bool(result.identical and result.valid and all(s.outcome == "complete" for s in result.sides))


class _Session:
    """The two players of one session: boot, play (with A's away period), collect the downloads."""

    def __init__(self, options: DemoOptions, server: StudyServer, study: _Study, work: Path,
                 say: Callable[[str], None], deadline: float, timeout: float) -> None:
        self.o, self.server, self.study, self.work, self.say = options, server, study, work, say
        self.deadline, self.timeout = deadline, timeout
        self.players: dict[str, Player] = {}
        self.boot: dict[str, float] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.bundles: list[Path] = []
        self.away_done = not options.away or options.headed

    # -- lifecycle --------------------------------------------------------------------------------------------
    def play(self, pw: Any, on_url: Callable[[str], None] | None) -> None:
        o = self.o
        conditions = {"latency_ms": o.latency_ms, "jitter_ms": o.jitter_ms, "seed": o.seed}
        if o.loss:
            conditions["loss"] = o.loss
        queries = {"A": {"participant": "A", "autopilot": "random", **conditions},
                   "B": {"participant": "B", "autopilot": "random", "seed": o.seed + 1}}
        if o.headed:
            person = f"{self.server.url}/?{urlencode({'participant': 'A', **conditions})}"
            self.say(f"open this link in your browser to play seat A: {person}")
            if on_url:
                on_url(person)
            del queries["A"]
        opened = time.monotonic()
        for name, query in queries.items():
            try:
                player = Player(pw, name, self.work / name)
            except Exception as exc:
                raise _Failure(f"player {name}'s Chromium did not start: {exc}") from None
            self.players[name] = player
            player.open(f"{self.server.url}/?{urlencode(query)}")
        self._wait_booted(opened)
        self._wait_ended()
        self._collect(self.o.out)

    def close(self) -> None:
        for player in self.players.values():
            player.close()

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Failure(f"timed out after {self.timeout:.0f} s (--timeout)")
        return left

    def statuses(self) -> dict[str, dict[str, Any]]:
        for name, player in self.players.items():
            status = player.status()
            if "unavailable" not in status:
                self.last[name] = status
            if status.get("errors"):
                first = status["errors"][0]
                last_line = (str(first.get("message", "")).strip().splitlines() or [""])[-1]
                raise _Failure(f"player {name}'s page reported an error ({first.get('where')}): {last_line}")
        return self.last

    # -- phases -----------------------------------------------------------------------------------------------
    def _wait_booted(self, opened: float) -> None:
        while len(self.boot) < len(self.players):
            self._remaining()
            for name, status in self.statuses().items():
                if name not in self.boot and status.get("timings"):
                    self.boot[name] = time.monotonic() - opened
                    t = status["timings"]
                    self.say(f"player {name} booted in {self.boot[name]:.1f} s (Pyodide "
                             f"{t.get('pyodide_ms', 0) / 1000:.1f} s, packages {t.get('packages_ms', 0) / 1000:.1f} s)")
            time.sleep(0.25)

    def _wait_ended(self) -> None:
        running = False
        progress_at = stall_since = time.monotonic()
        best = -1
        while True:
            self._remaining()
            statuses = self.statuses()
            phases = {n: s.get("phase") for n, s in statuses.items()}
            if not running and all(p in ("running", "finishing", "ended") for p in phases.values()):
                running = True
                stall_since = time.monotonic()
                self.say(f"session running: {'the person joined' if self.o.headed else 'both players paired'}")
            if all(_settled(s) for s in statuses.values()):
                break
            confirmed = min(int(s.get("confirmed_frames") or 0) for s in statuses.values())
            now = time.monotonic()
            if confirmed > best:
                best, stall_since = confirmed, now
            elif running and now - stall_since > STALL_SECONDS:
                raise _Failure(f"the session stalled: no frame confirmed for {STALL_SECONDS:.0f} s "
                               f"(at {confirmed} confirmed frames)")
            if running and now - progress_at >= PROGRESS_SECONDS:
                progress_at = now
                self.say("frame " + " | ".join(
                    f"{n}: {s.get('frame')} ({s.get('confirmed_frames')} confirmed, ep {s.get('episode')}/"
                    f"{s.get('episodes')}, {s.get('rollbacks')} rollbacks, {s.get('transport')})"
                    for n, s in statuses.items()))
            if not self.away_done and int(statuses.get("A", {}).get("frame") or 0) >= self.study.episode_frames // 3:
                self._away()
            time.sleep(0.25)
        for name, s in self.statuses().items():
            self.say(f"session ended for {name}: {s.get('outcome')} ({s.get('end_reason')}), "
                     f"{s.get('confirmed_frames')} frames confirmed")

    def _away(self) -> None:
        """Player A tabs away: another tab hides the game tab, which is then frozen, resumed and shown again."""
        self.away_done = True
        a = self.players["A"]
        t0 = time.monotonic()
        other = a.context.new_page()
        try:
            hidden = _wait(lambda: (s := a.status()).get("away") and s, 10, "player A's tab to count as hidden")
            frame = hidden.get("frame")
            self.say(f"player A away: game tab hidden behind another tab at frame {frame}")
            time.sleep(1.0)
            cdp = a.context.new_cdp_session(a.page)
            cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
            self.say(f"player A's tab frozen for {self.o.away_seconds:.0f} s")
            time.sleep(self.o.away_seconds)
            cdp.send("Page.setWebLifecycleState", {"state": "active"})
        finally:
            a.page.bring_to_front()
            other.close()
        status = _wait(lambda: (s := a.status()) and s.get("away") is False and s, 15, "player A to come back")
        self.say(f"player A back at frame {status.get('frame')} after {time.monotonic() - t0:.1f} s away "
                 f"({status.get('fast_forward_frames')} frames fast-forwarded)")

    def _collect(self, out: Path) -> None:
        """Copy into ``out`` each automated player's downloaded bundle (once its sha256 matches the page's) and,
        in headed mode, the person's bundle as their browser uploaded it to the server."""
        for name in ("A", "B"):
            if name in self.players:
                path = self._downloaded(name)
                target = out / path.name
            else:
                path = self._uploaded(seat=1 - int(self.last["B"].get("seat") or 0))
                target = out / f"person-{path.name}"
            shutil.copy2(path, target)
            self.bundles.append(target)
            self.say(f"download {name}: {target} ({target.stat().st_size} bytes)")

    def _downloaded(self, name: str) -> Path:
        status = self.last[name]
        # A study with scenes downloads one participant export at its end (the game's tables plus the
        # participant's own); without scenes, the game's bundle.
        final = status.get("final") or {}
        filename = final.get("filename") or status.get("filename")
        sha256 = final.get("sha256") or status.get("bundle_sha256")
        path = self.players[name].downloads / str(filename)

        def complete() -> bool:
            return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256

        _wait(complete, max(1.0, min(30.0, self._remaining())), f"player {name}'s download {path.name}")
        return path

    def _uploaded(self, seat: int) -> Path:
        def stored() -> Path | None:
            return next(iter(self.server.data_dir.rglob(f"seat{seat}/final-*.zip")), None)

        return _wait(stored, max(1.0, min(60.0, self._remaining())), "the person's uploaded bundle")

    # -- results ----------------------------------------------------------------------------------------------
    def facts(self) -> list[SideFacts]:
        sides = []
        for name, bundle in zip(("A", "B"), self.bundles, strict=True):
            side = _bundle_facts(name, bundle)
            side.boot_seconds = round(self.boot[name], 2) if name in self.boot else None
            sides.append(side)
        return sides

    def save_evidence(self, out: Path) -> Path:
        into = out / time.strftime("evidence-%Y%m%d-%H%M%S")
        for player in self.players.values():
            player.save_evidence(into)
        into.mkdir(parents=True, exist_ok=True)
        if self.server.log_path.is_file():
            shutil.copy(self.server.log_path, into / "server.log")
        return into


def _settled(status: dict[str, Any]) -> bool:
    upload = status.get("upload") or {}
    if status.get("scene") is not None and not status.get("final"):
        return False  # a study with scenes: its export is saved at the end of the last scene
    return (status.get("phase") == "ended" and str(status.get("download", "")).startswith("saved")
            and upload.get("state") != "uploading")


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    from pyodide_runtime.host.headless import wait_for

    try:
        return wait_for(predicate, timeout, what)
    except TimeoutError as exc:
        raise _Failure(str(exc)) from None


def _bundle_facts(name: str, bundle: Path) -> SideFacts:
    """What a bundle says about its participant's session (participant-local metadata and diagnostics)."""
    import csv
    import io

    from pyodide_runtime.export.bundle import open_bundle

    files = open_bundle(bundle)
    local = json.loads(files["metadata.json"])["participant_local"]
    stats = local.get("stats") or {}
    seat = local.get("seat")
    away_rows = list(csv.DictReader(io.StringIO(files.get("diagnostics/away.csv", b"").decode())))
    network = json.loads(files.get("diagnostics/network.json", b"{}"))
    transport = (network.get("network") or {}).get("transport") or {}
    kinds = transport.get("kinds") or ([transport["kind"]] if transport.get("kind") else [])
    return SideFacts(
        name=name, bundle=str(bundle), seat=seat, outcome=local.get("session_outcome"),
        confirmed_frames=int(stats.get("confirmed_frames", 0)), rollbacks=int(stats.get("rollbacks", 0)),
        max_rollback_depth=int(stats.get("max_rollback_depth", 0)),
        resimulated_frames=int(stats.get("resimulated_frames", 0)),
        fast_forward_frames=int(stats.get("fast_forward_frames", 0)),
        away_periods=sum(1 for r in away_rows if str(r.get("seat")) == str(seat)),
        transport="+".join(kinds) or None,
        scenes=[r["kind"] for r in csv.DictReader(io.StringIO(files.get("participant/scenes.csv", b"").decode()))],
    )
