"""Run peers in one process over a seeded simulated network and write each peer's export bundle.

Every peer's export goes to its own bundle zip, in exactly the format a participant's browser downloads (canonical
tables, metadata, diagnostics, the flagged unconfirmed tail of a partial session, codebook). ``summary.json``
holds the configuration, outcomes, stats, the bundle names and whether the peers' canonical data is identical,
as `pyodide-runtime compare` decides it. Exit status 0 when it is and every peer completed, 1 otherwise.

When a peer's env raises (in reset, step, a bot policy), that peer's session ends with outcome ``error`` and its
partners' ``partial``; every bundle is still written, one line per error names what raised, where in the env's
code and at which frame (the traceback is in the bundle's diagnostics), and the exit status is 1.

Example::

    pyodide-runtime simulate --episodes 2 --seed 7 --latency-ms 80 --jitter-ms 20 --loss 0.05 \\
        --away 1:3000-6000:frozen --out runs/sim1
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_ENV = "pyodide_runtime.examples.coin_chase:make_env"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the example's line breaks
    parser.add_argument("--env", default=DEFAULT_ENV, help="env factory, 'module:function' or 'file.py:function' "
                        "(default: the bundled Coin Chase example)")
    parser.add_argument("--env-config", default=None, help="JSON object passed to the env factory")
    parser.add_argument("--players", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="session seed (episode seeds, network, inputs)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--input-delay", type=int, default=2, help="frames between sampling and executing an input")
    parser.add_argument("--max-prediction", type=int, default=8, help="frames the simulation may run unconfirmed")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way delay")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="packet loss probability")
    parser.add_argument("--duplicate", type=float, default=0.0, help="packet duplication probability")
    parser.add_argument("--reorder", type=float, default=0.0, help="probability of an extra reordering delay")
    parser.add_argument("--away", action="append", default=[], metavar="SEAT:START-END[:MODE]",
                        help="seat away from START to END ms (mode hidden, worker or frozen); repeatable")
    parser.add_argument("--policy", choices=("random", "idle"), default="random", help="participants' inputs")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="virtual time limit")
    parser.add_argument("--study", default="simulate", help="study name used in the bundles' names and metadata")
    parser.add_argument("--out", required=True, help="output directory")


def _parse_away(items: list[str]) -> list[Any]:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.testing import AwaySpan

    spans = []
    for item in items:
        try:
            seat, rest = item.split(":", 1)
            window, _, mode = rest.partition(":")
            start, end = window.split("-")
            spans.append(AwaySpan(int(seat), float(start), float(end), mode or "hidden"))
        except ValueError as exc:
            raise CommandError(f"--away {item!r}: expected SEAT:START-END[:MODE] ({exc})") from None
    return spans


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import time

    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.compare import compare
    from pyodide_runtime.config import ConfigError, SessionConfig
    from pyodide_runtime.envs.loading import load_game
    from pyodide_runtime.snapshot import SnapshotError
    from pyodide_runtime.host.testing import LinkSpec, constant_policy, random_policy, run_peers

    try:
        config = SessionConfig(
            players=args.players, fps=args.fps, input_delay=args.input_delay, max_prediction=args.max_prediction,
            episodes=args.episodes, seed=args.seed,
        )
        link = LinkSpec(args.latency_ms, args.jitter_ms, args.loss, args.duplicate, args.reorder)
    except (ConfigError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    away = _parse_away(args.away)
    for span in away:
        if not 0 <= span.seat < args.players:
            raise CommandError(f"--away seat {span.seat} is not one of the {args.players} seats")
    env_config: dict[str, Any] | None = None
    if args.env_config is not None:
        try:
            env_config = json.loads(args.env_config)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--env-config is not valid JSON: {exc}") from None
        if not isinstance(env_config, dict):
            raise CommandError("--env-config must be a JSON object")
    elif args.env == DEFAULT_ENV:
        env_config = {"players": args.players}

    def make_game(seat: int) -> Any:
        try:
            return load_game(args.env, env_config)
        except (ImportError, TypeError, ValueError, SnapshotError) as exc:
            raise CommandError(f"cannot load env {args.env!r}: {exc}") from None

    os.makedirs(args.out, exist_ok=True)
    policy = random_policy(args.seed) if args.policy == "random" else constant_policy(0)
    progress = {"next": 10_000.0}

    def on_tick(seat: int, now_ms: float, session: Any) -> None:
        if seat == 0 and now_ms >= progress["next"]:
            progress["next"] += 10_000.0
            print(f"  t={now_ms / 1000:6.1f}s  frame {session.frame}  confirmed {session.confirmed_frames}", flush=True)

    print(f"simulating {args.players} peers, {args.episodes} episode(s), env {args.env}", flush=True)
    started = time.perf_counter()
    try:
        result = run_peers(
            make_game, config, link=link, seed=args.seed, policy=policy, away=away,
            max_ms=args.max_seconds * 1000.0, on_tick=on_tick,
        )
    except CommandError:
        raise
    except Exception as exc:  # noqa: BLE001 - the env failed before any session started (its first reset)
        raise CommandError(f"cannot start a session with env {args.env!r}: {_one_line(exc)}") from None
    elapsed = time.perf_counter() - started
    peers = []
    bundles = []
    for peer in result.peers:
        name, data = _export(peer, args.study, f"seed{args.seed}", result.network)
        path = os.path.join(args.out, name)
        with open(path, "wb") as handle:
            handle.write(data)
        bundles.append(data)
        peers.append({"bundle": name, **_peer_summary(peer)})
    identical = all(compare(bundles[0], other).identical for other in bundles[1:])
    complete = all(p["outcome"] == "complete" for p in peers)
    summary = {
        "config": config.to_dict(), "env": args.env, "env_config": env_config,
        "link": {"latency_ms": link.latency_ms, "jitter_ms": link.jitter_ms, "loss": link.loss,
                 "duplicate": link.duplicate, "reorder": link.reorder},
        "away": [{"seat": a.seat, "start_ms": a.start_ms, "end_ms": a.end_ms, "mode": a.mode} for a in away],
        "identical": identical, "complete": complete, "virtual_seconds": result.end_ms / 1000.0,
        "wall_seconds": round(elapsed, 3), "network": result.network,
        "peers": peers,
    }
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    for p in summary["peers"]:
        print(f"peer {p['seat']}: {p['outcome']} ({p['end_reason']}), {p['confirmed_frames']} confirmed frames, "
              f"{p['rollbacks']} rollbacks, {p['fast_forward_frames']} fast-forward frames, "
              f"{p['rejected_total']} rejected packets")
    print(f"{'identical' if identical else 'DIFFERENT'} canonical data; {result.end_ms / 1000:.1f}s simulated in "
          f"{elapsed:.1f}s; bundles written to {args.out}")
    for peer in result.peers:
        error = peer.session.error
        if error is not None:
            print(f"error: peer {peer.seat}: {error['reason']} ({error['location']}): "
                  f"{_first_line(error['message'])}", file=sys.stderr)
    return 0 if identical and complete else 1


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _one_line(exc: BaseException) -> str:
    """``Kind: message (file:line)``, the line in the env's code when the traceback shows it."""
    from pyodide_runtime.session import describe_error

    error = describe_error(exc, None, frame=0)
    return f"{error['kind']}: {_first_line(error['message'])} ({error['location']})"


def _export(peer: Any, study: str, session_id: str, network: dict[str, Any]) -> tuple[str, bytes]:
    """One peer's bundle, as its browser would write it: (file name, zip bytes)."""
    from pyodide_runtime.export import Diagnostics, ExportContext, Exporter

    session = peer.session
    context = ExportContext.from_session(session, study=study, session_id=session_id, participant=f"peer{peer.seat}")
    diagnostics = Diagnostics.from_events(
        peer.events, user_agent="pyodide-runtime simulate", network={"simulated": network}, stats=session.diagnostics(),
    )
    exporter = Exporter(context)
    return exporter.filename, exporter.bundle(session.log, diagnostics)


def _peer_summary(peer: Any) -> dict[str, Any]:
    stats = peer.stats
    return {
        "seat": peer.seat, "outcome": stats["outcome"], "end_reason": stats["end_reason"],
        "confirmed_frames": stats["confirmed_frames"], "unconfirmed_tail": stats["unconfirmed_tail"],
        "rollbacks": stats["rollbacks"], "max_rollback_depth": stats["max_rollback_depth"],
        "resimulated_frames": stats["resimulated_frames"], "fast_forward_frames": stats["fast_forward_frames"],
        "stalls": stats["stalls"], "time_sync_skips": stats["time_sync_skips"], "desyncs": stats["desyncs"],
        "desynced_frames": stats["desynced_frames"], "packets_sent": stats["packets_sent"],
        "bytes_sent": stats["bytes_sent"], "rejected": stats["rejected"],
        "rejected_total": sum(stats["rejected"].values()),
        "error": {k: v for k, v in stats["error"].items() if k != "traceback"} if stats["error"] else None,
    }
