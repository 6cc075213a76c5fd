"""The documentation builds as a site with no warnings, every relative link in it and in the README resolves, and
the benchmark figures it quotes are the ones in the result files they come from."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def _anchors(path: Path) -> set[str]:
    """Heading anchors as GitHub and mkdocs' toc make them (lower case, punctuation dropped, spaces to dashes)."""
    anchors = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: {linked} does not exist")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"broken links in {path.name}:\n" + "\n".join(broken)


def test_every_page_is_in_the_site_navigation() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if p.name not in nav]
    assert not missing, f"docs pages missing from mkdocs.yml nav: {missing}"


def test_the_site_builds_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "quickstart" / "index.html").is_file()
    assert "Bring your own env" in (tmp_path / "bring-your-own-env" / "index.html").read_text(encoding="utf-8")


RESULTS = REPO / "benchmarks" / "results"
MIB = 2**20


def _result(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def _span(values, fmt: str = "{:.1f}", unit: str = "") -> str:
    """``low–high`` as the docs write a range of figures (one figure when they are equal)."""
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return (lo if lo == hi else f"{lo}–{hi}") + unit


_AI_PARTNERS = {"python-bot": "Python bot (`human_ai`)", "onnx-example": "ONNX, example model",
                "onnx-large": "ONNX, 10× larger model"}


def _ai_partner_row(name: str, fps: int) -> str:
    """One row of docs/performance.md's AI partners table, from benchmarks/results/ai-partners/<name>-<fps>.json."""
    data = json.loads((RESULTS / "ai-partners" / f"{name}-{fps}.json").read_text(encoding="utf-8"))
    run = data["runs"][0]
    (seat,) = run["seats"]
    tick = seat["tick_ms"]
    policy = (seat.get("policies") or [None])[0]
    inference = "–" if policy is None else " / ".join(f"{policy['inference_ms'][k]:.1f}" for k in ("p50", "p95", "p99"))
    model = "–" if policy is None else f"{policy['model_bytes'] / 1000:.0f} kB"
    decisions = "–" if policy is None else f"{policy['decisions']:,}"
    assert all(run["valid"]) and seat["outcome"] == "complete"  # the section says every export validated
    assert policy is None or policy["skipped"] == 0  # and that no decision point was skipped
    return (f"| {_AI_PARTNERS[name]} | {model} | {fps} | {seat['fps_held']:.2f} | {tick['p50']:.2f} / {tick['p95']:.2f} / "
            f"{tick['p99']:.2f} | {seat['steady_tick_ms_per_frame']:.2f} | {inference} | {decisions} | "
            f"{run['load_1min_before']:.1f} |")


def _quoted_figures() -> list[tuple[str, str, str]]:
    """(doc file, the text it must contain, where in the result files that text comes from)."""
    load, mug, browser, boot, scale = (_result(n) for n in ("load", "mug", "browser", "browser-boot", "scale"))
    slime = mug["ours_in_process"]
    rss = load["server_rss_bytes"]
    signal = load["signaling_round_ms"]
    mem, before = browser["memory"], browser["memory_before_release"]
    play = [x for run in browser["play"][:1] + [browser["loss"]] for x in run["bytes_per_s"]]
    side = mug["side_by_side"]
    big_obs = next(o for o in scale["obs"] if o["obs"] == "100KB")
    fuzz, soak = _result("fuzz"), _result("soak")
    heavy, adaptive = _result("browser-heavy"), _result("browser-heavy-adaptive")
    preload = _result("browser-preload")
    assert all(preload["preloaded"]["loaded_before_pairing"])  # the figure is for pages that had loaded
    both = heavy["runs"] + adaptive["runs"]
    heavy_fps = [seat["fps_held"] for run in both for seat in run["seats"]]
    assert all(run["identical"] and all(run["valid"]) for run in both)  # the README says identical and valid
    assert not any(seat["stalls"]["count"] for run in both for seat in run["seats"])  # "no stall over 100 ms"
    rollbacks = [[seat["rollbacks"] for run in data["runs"] for seat in run["seats"]] for data in (heavy, adaptive)]
    delays = [d for run in adaptive["runs"] for seat in run["seats"] for d in map(int, seat["input_delay"]["frames_at"])
              if seat["input_delay"]["frames_at"][str(d)] > 100]  # the delays it settled on, not passed through
    p99 = [seat["tick_ms"]["p99"] for run in adaptive["runs"] for seat in run["seats"]]
    per_frame = [seat["tick_parts_ms"]["env_step_per_frame_ms"] for run in both for seat in run["seats"]]
    return [
        ("README.md", f"{fuzz['hostile_sent']:,} hostile packets", "fuzz.json hostile_sent"),
        ("docs/reliability.md", f"{fuzz['hostile_sent']:,} hostile packets into {fuzz['runs']} live two-peer sessions",
         "fuzz.json"),
        ("docs/reliability.md", f"{load['messages_sent']:,} relay messages", "load.json messages_sent"),
        ("README.md", f"1 hour at 30 fps ({soak['confirmed_frames'][0]:,} frames)", "soak.json confirmed_frames"),
        ("docs/reliability.md", f"{soak['memory']['bytes_per_frame']:,.0f} bytes per confirmed frame for both peers",
         "soak.json memory.bytes_per_frame"),
        ("docs/reliability.md", f"p50 {signal['p50']:.0f} ms, p95 {signal['p95']:.0f} ms, max {signal['max']:.0f} ms",
         "load.json signaling_round_ms"),
        ("docs/reliability.md", f"{rss['start'] / MIB:.0f} MiB at the start, {rss['peak'] / MIB:.0f} MiB peak",
         "load.json server_rss_bytes"),
        ("docs/reliability.md", f"about {(rss['peak'] - rss['start']) / load['clients'] / 1024:.0f} KiB per connection",
         "load.json server_rss_bytes over clients"),
        ("docs/reliability.md", f"server {load['server_cpu_percent_of_one_core']:.0f} % of one core, {rss['peak'] / MIB:.0f} MiB peak RSS", "load.json"),
        ("README.md", f"{rss['peak'] / MIB:.0f} MiB peak RSS", "load.json server_rss_bytes.peak"),
        ("README.md", f"| {slime['bare_step_us']:.0f} µs | {slime['engine_frame_us']:,.0f} µs | "
                      f"{slime['engine_ratio']:.2f}× |", "mug.json ours_in_process"),
        ("README.md", f"load {mug['machine']['load_1min']:.1f}", "mug.json machine.load_1min"),
        ("docs/performance.md", f"stepped in {slime['bare_step_us']:.0f} µs bare and {slime['engine_frame_us']:,.0f} µs "
                                f"per frame", "mug.json ours_in_process"),
        ("docs/performance.md", f"**{slime['engine_ratio']:.2f}× bare**", "mug.json ours_in_process.engine_ratio"),
        ("docs/performance.md", f"slimevb {slime['engine_ratio']:.2f}× (CPython, load {mug['machine']['load_1min']:.1f}",
         "mug.json"),
        ("docs/performance.md",
         f"{_span([r['mug_first_frame_s'] for r in side], unit=' s')} against our "
         f"{_span([r['ours_first_frame_s'] for r in side], unit=' s')}", "mug.json side_by_side first frame"),
        ("README.md", f"first frame {_span([r['mug_first_frame_s'] for r in side], '{:.0f}')} s vs "
                      f"{_span([r['ours_first_frame_s'] for r in side], '{:.0f}')} s for ours "
                      f"({_span([r['ratio_first_frame_s'] for r in side])}×)", "mug.json side_by_side first frame"),
        ("README.md", f"{boot['play'][0]['first_frame_s']:.2f} s with two players booting at once, "
                      f"{boot['first_frame_vs_floor_pair']:.2f}×", "browser-boot.json"),
        ("README.md", f"({boot['floor_pair']['boot_ms'] / 1000:.2f} s; target 1.3×", "browser-boot.json floor_pair"),
        ("docs/performance.md", f"{boot['floor_pair']['boot_ms'] / 1000:.2f} s; first frame "
                                f"{boot['play'][0]['first_frame_s']:.2f} s, **{boot['first_frame_vs_floor_pair']:.2f}×**",
         "browser-boot.json"),
        ("README.md", f"{_span(play, '{:,.0f}')} bytes/s", "browser.json bytes_per_s at 30 fps, 0 and 20 % loss"),
        ("docs/online-study.md", f"{_span(play, '{:,.0f}')} bytes/s", "browser.json bytes_per_s"),
        ("README.md", f"({mem['frames']:,} frames, run under load {mem['machine']['load_1min_start']:.1f}–"
                      f"{mem['machine']['load_1min_end']:.1f})", "browser.json memory.machine"),
        ("docs/performance.md", f"memory run (load {mem['machine']['load_1min_start']:.1f}–"
                                f"{mem['machine']['load_1min_end']:.1f}, noted in `browser.json`)", "browser.json"),
        ("README.md", f"wasm memory stayed at {mem['memory'][0]['wasm_mb'][0]} MB", "browser.json memory"),
        ("README.md", f"rose to {mem['memory'][-1]['wasm_mb'][0]} MB at the end", "browser.json memory"),
        ("README.md", f"and to {before['memory'][-1]['wasm_mb'][0]} MB at the end", "browser.json memory_before_release"),
        ("docs/performance.md", f"+{mem['growth']['wasm_mb'][0]} MB, which the file reports as "
                                f"{mem['growth']['wasm_bytes_per_confirmed_frame'][0]:,} bytes per confirmed frame",
         "browser.json memory.growth"),
        ("docs/performance.md", f"({before['growth']['wasm_bytes_per_confirmed_frame'][0]:,} bytes per frame counting",
         "browser.json memory_before_release.growth"),
        ("README.md", f"cost {big_obs['engine_frame_us'] / 1000:.2f} ms per frame", "scale.json obs 100KB"),
        *[("docs/performance.md", (f"| {o['obs_bytes'] // 1024} KiB ({o['obs_bytes']:,} B) " if o["obs_bytes"] >= 1024
                                   else f"| {o['obs_bytes']} B ")
           + f"| {o['bare_step_us']:.1f} µs | "
           + (f"{o['engine_frame_us']:.1f} µs | {o['engine_ratio']:.1f}× |" if o["engine_ratio"] < 10
              else f"{o['engine_frame_us']:.{0 if o['engine_frame_us'] >= 100 else 1}f} µs | {o['engine_ratio']:.0f}× |"),
           f"scale.json obs {o['obs']}") for o in scale["obs"]],
        ("docs/performance.md", f"costs {big_obs['engine_frame_us'] / 1000:.2f} ms per frame", "scale.json obs 100KB"),
        ("README.md", f"({_span(per_frame, '{:.0f}')} ms per frame in the players' workers)",
         "browser-heavy*.json tick_parts_ms.env_step_per_frame_ms"),
        ("README.md", f"held {_span(heavy_fps, '{:.2f}')} fps on both seats at {heavy['fps']} fps with "
                      + ", ".join(f"{r['rtt_ms']:.0f}" for r in heavy["runs"][:-1])
                      + f" and {heavy['runs'][-1]['rtt_ms']:.0f} ms RTT", "browser-heavy*.json runs[].seats[].fps_held"),
        ("README.md", f"({_span(delays, '{}')} frames chosen) rollbacks fell from {_span(rollbacks[0], '{}')} to "
                      f"{_span(rollbacks[1], '{}')} per seat; tick p99 was {_span(p99, '{:.1f}')} ms",
         "browser-heavy*.json"),
        ("docs/performance.md", f"the first frame came {_span(preload['preloaded']['pairing_to_first_frame_ms'], '{:.0f}')} "
                                "ms after the pairing", "browser-preload.json preloaded.pairing_to_first_frame_ms"),
        ("README.md", f"(`benchmarks/results/browser-preload.json`): "
                      f"{_span(preload['preloaded']['pairing_to_first_frame_ms'], '{:.0f}')} ms (target 1 s)",
         "browser-preload.json preloaded"),
        *[("docs/performance.md", _ai_partner_row(name, fps), f"ai-partners/{name}-{fps}.json")
          for fps in (30, 60) for name in _AI_PARTNERS],
        ("docs/performance.md", f"was {preload['play'][0]['first_frame_s']:.2f} s; this run was made on a loaded machine "
                                f"(load {preload['machine']['load_1min']:.1f} at the start)", "browser-preload.json play"),
    ]


@pytest.mark.parametrize("doc, text, source", _quoted_figures(), ids=lambda v: v if "/" in v or v.endswith(".md") else None)
def test_quoted_figures_match_their_result_files(doc: str, text: str, source: str) -> None:
    content = " ".join((REPO / doc).read_text(encoding="utf-8").split())  # line breaks inside a sentence do not count
    text = " ".join(text.split())
    assert text in content, f"{doc} should quote {text!r} ({source}); the figure and its result file disagree"


def test_every_result_file_the_docs_name_exists() -> None:
    named = set()
    for path in _markdown_files():
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"benchmarks/results/([\w.-]+\.json)", text))  # a path to a result file
        named |= set(re.findall(r"`([a-z-]+\.json)`", text)) - {"metadata.json", "codebook.json", "manifest.json",
                                                                 "pyodide-lock.json", "package.json"}
    named -= {"SUITE.json"}  # the placeholder in `bench SUITE --json benchmarks/results/SUITE.json`
    missing = sorted(n for n in named if not (RESULTS / n).is_file())
    assert "load.json" in named and not missing, f"result files named in the docs but absent: {missing}"
