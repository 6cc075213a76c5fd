"""An env that raises mid-session: that side ends ``error``, its partner ``partial``, and no confirmed frame is lost.

The fixture env (``tests/env_fixtures/raises_mid_session.py``) is Coin Chase with a fault injected on one seat at
a chosen frame: in ``step``, ``reset``, ``render`` or a bot policy, in a fresh step or only while a rollback
resimulates. Both sides' exports must hold exactly the frames each confirmed before the end, equal to a fault-free
replay of their inputs, with the unconfirmed tail flagged apart, and both must validate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyodide_runtime.bridge import Bridge
from pyodide_runtime.canonical import canonical_bytes
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.host.data import load
from pyodide_runtime.envs.loading import load_game
from pyodide_runtime.export import Diagnostics, ExportContext, Exporter
from pyodide_runtime.protocol.codec import decode
from pyodide_runtime.protocol.messages import Goodbye, GoodbyeReason
from pyodide_runtime.session import Session, SessionEnded
from pyodide_runtime.host.testing import LinkSpec, random_policy, replay, run_peers
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate

FIXTURE_FILE = Path(__file__).parent / "env_fixtures" / "raises_mid_session.py"
FIXTURE = f"{FIXTURE_FILE}:make_env"
BOT = f"{FIXTURE_FILE}:FaultyBot"
ENV = {"max_steps": 300, "target_score": 1_000}
LINK = LinkSpec(latency_ms=60, jitter_ms=15)  # enough latency for rollbacks and a predicted tail
SEED = 3
TICK_MS = 1000 / 30
#: The line of the fixture that raises, as an error report must name it.
RAISE_LINE = next(i for i, line in enumerate(FIXTURE_FILE.read_text().splitlines(), 1)
                  if line.strip() == "raise error(message)")


def game_factory(fault: dict[str, Any] | None = None, *, players: int = 2, bot: bool = False):
    config = {**ENV, **(fault or {})}
    if bot:
        config["players"] = players + 1

    def make(seat: int = 0):
        return load_game(FIXTURE, config, bots={f"player_{players}": BOT} if bot else None)

    return make


def rows(records) -> list[bytes]:
    return [canonical_bytes(r.canonical()) for r in records]


def run(fault: dict[str, Any], config: SessionConfig | None = None, **kw: Any):
    """A pair over LINK with ``fault``; returns the run and, per seat, its confirmed count after each tick."""
    config = config or SessionConfig(episodes=1)
    history: dict[int, list[tuple[bool, int]]] = {0: [], 1: []}

    def on_tick(seat: int, now_ms: float, session: Session) -> None:
        history[seat].append((session.ended, session.confirmed_frames))

    result = run_peers(game_factory(fault, **kw), config, link=LINK, seed=SEED, policy=random_policy(SEED),
                       on_tick=on_tick)
    return result, history


def confirmed_before_end(history: list[tuple[bool, int]]) -> int:
    """The confirmed count after the last tick before the one that ended the session."""
    ended_at = next(i for i, (ended, _) in enumerate(history) if ended)
    return history[ended_at - 1][1]


def export(peer, tmp_path: Path) -> tuple[Path, Any]:
    session = peer.session
    context = ExportContext.from_session(session, study="errors", session_id="s", participant=f"p{peer.seat}")
    diagnostics = Diagnostics.from_events(peer.events, stats=session.diagnostics())
    path = tmp_path / f"seat{peer.seat}.zip"
    path.write_bytes(Exporter(context).bundle(session.log, diagnostics))
    report = validate(str(path))
    assert report.ok, report
    return path, load(path, backend="python")


def check_side(peer, history, bundle, outcome: str, make_game, config: SessionConfig) -> None:
    """The side ended ``outcome`` with every frame it confirmed before the end exported, equal to a replay."""
    session = peer.session
    confirmed = session.log.confirmed
    assert session.outcome == outcome
    assert len(confirmed) == session.confirmed_frames > 30, "the pair played for a while first"
    assert rows(confirmed) == rows(replay(make_game(), config, confirmed).confirmed)
    meta = bundle.metadata
    assert meta["canonical"]["status"] == "partial"
    assert meta["canonical"]["confirmed_frames"] == len(confirmed)
    assert {r["global_frame"] for r in bundle.frames} == set(range(len(confirmed)))
    assert meta["participant_local"]["session_outcome"] == outcome
    assert meta["participant_local"]["end_reason"] == session.end_reason
    tail = session.unconfirmed_tail()
    flagged = bundle.tail or []
    assert all(r["confirmed"] is False for r in flagged)
    assert {r["global_frame"] for r in flagged} == {r.global_frame for r in tail}
    assert all(r.global_frame >= len(confirmed) for r in tail)
    if outcome == "error":
        # Nothing was promoted after the env raised: exactly what was confirmed before that tick.
        assert len(confirmed) == confirmed_before_end(history) == session.error["confirmed_frames"]


def check_error(peer, *, kind: str, where: str, resimulating: bool = False) -> dict[str, Any]:
    error = peer.session.error
    assert error["kind"] == kind and error["where"] == where and error["resimulating"] is resimulating
    assert error["location"] == f"{FIXTURE_FILE}:{RAISE_LINE}" or error["location"].endswith(
        f"raises_mid_session.py:{RAISE_LINE}")
    assert peer.session.end_reason == error["reason"] == f"the env raised {kind} in {where} at frame {error['frame']}"
    assert error["traceback"].startswith("Traceback") and kind in error["traceback"]
    ended = [e for e in peer.events if isinstance(e, SessionEnded)]
    assert [(e.outcome, e.reason) for e in ended] == [("error", error["reason"])]
    return error


def check_partner(peer, failed_seat: int) -> None:
    assert peer.session.error is None
    assert peer.session.end_reason == f"seat {failed_seat} stopped: its env raised an error"
    assert peer.session.peers[failed_seat].goodbye == GoodbyeReason.ERROR


# -- in a fresh step ------------------------------------------------------------------------------------------
def test_a_step_error_ends_that_side_error_and_the_partner_partial_keeping_every_confirmed_frame(tmp_path):
    config = SessionConfig(episodes=1)
    make_game = game_factory()
    result, history = run({"fault_at": 88, "fault_seat": 0}, config)
    failed, partner = result.peers
    error = check_error(failed, kind="ZeroDivisionError", where="step")
    assert error["frame"] == 88 and error["episode"] == 0
    check_partner(partner, 0)
    for peer, outcome in ((failed, "error"), (partner, "partial")):
        _, bundle = export(peer, tmp_path)
        check_side(peer, history[peer.seat], bundle, outcome, make_game, config)
    # The run without the fault, frame for frame, as far as each side confirmed.
    clean = run_peers(make_game, config, link=LINK, seed=SEED, policy=random_policy(SEED))
    assert all(p.outcome == "complete" for p in clean.peers)
    for peer in (failed, partner):
        assert peer.rows == clean.peers[peer.seat].rows[: len(peer.rows)]
    # The traceback is in the diagnostics, the reason (and the error's kind) in the metadata.
    path, bundle = export(failed, tmp_path)
    network = json.loads(bundle.files["diagnostics/network.json"])
    assert network["stats"]["error"]["traceback"] == error["traceback"]
    local = bundle.metadata["participant_local"]
    assert local["stats"]["error"]["kind"] == "ZeroDivisionError" and local["stats"]["error"]["frame"] == 88


def test_both_sides_raising_both_end_error_with_equal_rows_where_both_confirmed(tmp_path):
    config = SessionConfig(episodes=1)
    result, history = run({"fault_at": 88}, config)
    for peer in result.peers:
        check_error(peer, kind="ZeroDivisionError", where="step")
        _, bundle = export(peer, tmp_path)
        check_side(peer, history[peer.seat], bundle, "error", game_factory(), config)
    assert result.common_prefix_identical()


# -- while a rollback resimulates -----------------------------------------------------------------------------
def test_an_error_inside_a_rollback_resimulation_is_handled_like_one_in_a_fresh_step(tmp_path):
    config = SessionConfig(episodes=1)
    result, history = run({"fault_at": 60, "fault_seat": 1, "fault_when": "resimulating"}, config)
    partner, failed = result.peers
    error = check_error(failed, kind="ZeroDivisionError", where="step", resimulating=True)
    assert error["frame"] >= 60
    check_partner(partner, 1)
    for peer, outcome in ((failed, "error"), (partner, "partial")):
        _, bundle = export(peer, tmp_path)
        check_side(peer, history[peer.seat], bundle, outcome, game_factory(), config)
    assert result.common_prefix_identical()


def test_an_error_in_the_final_rollback_after_a_goodbye_ends_that_side_error():
    """The partner says goodbye while a rollback is pending; resimulating it then raises: outcome ``error``."""
    config = SessionConfig(episodes=1)
    make_game = game_factory()
    sessions = [Session(make_game(s), config, s) for s in range(2)]
    failed = sessions[1]
    net = Network(seed=SEED, default=LINK)
    policy = random_policy(SEED)
    now, pending = 0.0, False
    while not pending:
        for s, session in enumerate(sessions):
            incoming = net.deliver(now, s)
            if session is failed:  # take the packets in first, to catch the moment a rollback is pending
                for src, data in incoming:
                    failed.receive(now, data, src)
                incoming = []
                pending = failed.confirmed_frames > 40 and failed.timeline.pending_rollback is not None
                if pending:
                    break
            for to, data in session.tick(now, policy(s, session.frame, 5), incoming).messages:
                net.send(now, s, to, data)
        now += TICK_MS
    failed.game.env.fault = {"fault_at": 0, "fault_when": "resimulating"}
    confirmed = failed.confirmed_frames
    for _, data in sessions[0].close(now):
        failed.receive(now, data, 0)
    assert failed.outcome == "error" and failed.error["resimulating"]
    assert failed.end_reason == f"the env raised ZeroDivisionError in step at frame {failed.error['frame']}"
    assert failed.confirmed_frames == confirmed
    assert rows(failed.log.confirmed) == rows(replay(make_game(), config, failed.log.confirmed).confirmed)
    out = failed.tick(now + 1.0, 0)
    assert [type(e) for e in out.events][-1] is SessionEnded and out.events[-1].outcome == "error"
    assert not out.messages, "the partner is gone: nobody to say goodbye to"


# -- reset, bots, render --------------------------------------------------------------------------------------
def test_a_reset_error_at_an_episode_start_ends_error_with_the_finished_episode_kept(tmp_path):
    config = SessionConfig(episodes=2)
    env = {"max_steps": 60}
    result, history = run({"fault_in": "reset", "fault_at": 60, "fault_seat": 0, **env}, config)
    failed, partner = result.peers
    error = check_error(failed, kind="RuntimeError", where="reset")
    assert error["frame"] == 60
    check_partner(partner, 0)
    make_game = game_factory(env)
    for peer, outcome in ((failed, "error"), (partner, "partial")):
        _, bundle = export(peer, tmp_path)
        check_side(peer, history[peer.seat], bundle, outcome, make_game, config)


def test_a_raising_bot_policy_ends_that_side_error(tmp_path):
    config = SessionConfig(episodes=1)
    result, history = run({"fault_in": "bot", "fault_at": 70, "fault_seat": 1}, config, bot=True)
    partner, failed = result.peers
    error = check_error(failed, kind="IndexError", where="bot policy")
    assert error["frame"] == 70
    check_partner(partner, 1)
    for peer, outcome in ((failed, "error"), (partner, "partial")):
        _, bundle = export(peer, tmp_path)
        check_side(peer, history[peer.seat], bundle, outcome, game_factory(bot=True), config)


def test_a_raising_render_ends_the_session_and_the_env_is_never_called_again():
    config = SessionConfig(episodes=1)
    session = Session(game_factory({"fault_in": "render", "fault_at": 0})(), config, 0)
    other = Session(game_factory()(), config, 1)
    now = 0.0
    while not session.started:
        for a, b in ((session, other), (other, session)):
            for _, data in a.tick(now, 0).messages:
                b.receive(now, data, a.seat)
        now += TICK_MS
    calls = []
    session.game.env.step = lambda *a: calls.append(a)  # the broken env must not be stepped again
    assert session.render() is None
    assert session.outcome == "error" and session.error["where"] == "render"
    assert session.render() is None
    out = session.tick(now, 0)
    assert [e.outcome for e in out.events if isinstance(e, SessionEnded)] == ["error"]
    (seat, data), _copy = out.messages
    assert seat == 1 and decode(data) == Goodbye(0, GoodbyeReason.ERROR, 0)
    session.tick(now + 100.0, 0)
    assert not calls


# -- the page's bridge ----------------------------------------------------------------------------------------
def study(fault: dict[str, Any]) -> str:
    return json.dumps({
        "study": "env_errors",
        "env": {"spec": FIXTURE, "function": "make_env", "file": None},
        "players": 2,
        "config": {"env_config": {**ENV, **fault},
                   "session": {"players": 2, "fps": 30, "episodes": 1, "seed": 5}},
    })


def bridge_pair(fault: dict[str, Any], max_ms: float = 30_000.0):
    """Two bridges over a seeded network until both sessions end; every tick's output per seat."""
    bridges = [Bridge(study(fault), s, room="room", participant=f"p{s}") for s in range(2)]
    net = Network(seed=4, default=LinkSpec(latency_ms=50, jitter_ms=10))
    outs: dict[int, list[dict]] = {0: [], 1: []}
    now = 0.0
    while now < max_ms and not all(b.session.ended for b in bridges):
        for seat, b in enumerate(bridges):
            out = b.tick(now, (int(now) // 300 + seat) % 5, net.deliver(now, seat), False)
            outs[seat].append(out)
            for to, data, _ in out["messages"]:
                net.send(now, seat, to, data)
        now += TICK_MS
    return bridges, outs


def bridge_bundle(outs: list[dict], tmp_path: Path, name: str) -> Any:
    final = [o for o in outs if o["bundle"] is not None]
    assert len(final) == 1, "the bundle is handed over exactly once"
    path = tmp_path / name
    path.write_bytes(final[0]["bundle"])
    report = validate(str(path))
    assert report.ok, report
    return load(path, backend="python")


@pytest.mark.parametrize("where, kind", [("step", "ZeroDivisionError"), ("render", "ValueError")])
def test_bridges_hand_over_both_bundles_and_tell_each_page_what_happened(tmp_path, where, kind):
    failed_seat = 1
    bridges, outs = bridge_pair({"fault_in": where, "fault_at": 75, "fault_seat": failed_seat})
    failed, partner = bridges[failed_seat], bridges[1 - failed_seat]
    status = failed.status()
    assert status["phase"] == "ended" and status["outcome"] == "error"
    frame = status["error"]["frame"]
    assert frame == 75 if where == "step" else 75 <= frame <= 77
    assert status["end_reason"] == f"the env raised {kind} in {where} at frame {frame}"
    assert status["error"]["kind"] == kind and "traceback" not in status["error"]
    assert failed.hud()["stopped"] == "error" and partner.hud()["stopped"] == "partner_error"
    assert partner.status()["outcome"] == "partial"
    assert partner.status()["end_reason"] == f"seat {failed_seat} stopped: its env raised an error"
    # The tick the env raised on says goodbye (reliably) and carries the traceback for the console, once.
    errors = [o["error"] for o in outs[failed_seat] if o["error"] is not None]
    assert len(errors) == 1 and errors[0]["traceback"].startswith("Traceback")
    last = next(o for o in outs[failed_seat] if o["error"] is not None)
    assert last["ended"] and last["bundle"] is not None and last["error"] is not None
    goodbyes = [(data, reliable) for _, data, reliable in last["messages"] if isinstance(decode(data), Goodbye)]
    assert goodbyes and all(decode(d) == Goodbye(failed_seat, GoodbyeReason.ERROR, 0) and r for d, r in goodbyes)
    assert [e for e in last["events"] if e["type"] == "ended"] == [
        {"type": "ended", "outcome": "error", "reason": status["end_reason"], "cause": "env_error"}]
    assert status["end_cause"] == "env_error"
    assert not any(o["error"] for o in outs[1 - failed_seat])
    for bridge, outcome in ((failed, "error"), (partner, "partial")):
        bundle = bridge_bundle(outs[bridge.seat], tmp_path, f"seat{bridge.seat}.zip")
        local = bundle.metadata["participant_local"]
        assert local["session_outcome"] == outcome
        assert bundle.metadata["canonical"]["confirmed_frames"] == bridge.session.confirmed_frames > 60
    both = min(b.session.confirmed_frames for b in bridges)
    assert both > 60
    failed_rows = load(tmp_path / f"seat{failed_seat}.zip", backend="python").frames
    partner_rows = load(tmp_path / f"seat{1 - failed_seat}.zip", backend="python").frames
    assert ([r for r in failed_rows if r["global_frame"] < both]
            == [r for r in partner_rows if r["global_frame"] < both])


def test_no_exception_escapes_bridge_tick_even_from_the_bridge_itself(tmp_path):
    bridges, outs = bridge_pair({}, max_ms=2_000.0)
    bridge = bridges[0]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("encoder broke")

    bridge.exporter.update = broken  # type: ignore[method-assign]
    out = bridge.tick(2_100.0, 0, [], False)
    assert out["ended"] and out["bundle"] is not None and out["error"]["kind"] == "RuntimeError"
    assert out["messages"], "the partner is told"
    assert bridge.status()["outcome"] == "error"
    assert bridge.status()["end_reason"] == f"the session raised RuntimeError at frame {bridge.session.frame}"
    path = tmp_path / "crash.zip"
    path.write_bytes(out["bundle"])
    assert validate(str(path)).ok
    again = bridge.tick(2_200.0, 0, [], False)  # later ticks keep answering
    assert again["bundle"] is None and again["ended"]
