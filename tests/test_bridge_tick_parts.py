"""Where a page's tick goes (``tick_parts_ms``), and the page's compact tick (:meth:`Bridge.tick_page`): only what
changed crosses to JavaScript, the status is never built by a tick, and the exports stay what :meth:`Bridge.tick`
makes."""

from __future__ import annotations

import json
import random
import time

import pytest

from pyodide_runtime.bridge import TICK_PARTS, Bridge
from pyodide_runtime.envs.timing import GameTimer, instrument
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.testing import LinkSpec
from pyodide_runtime.host.testing.netsim import Network
from pyodide_runtime.host.validate import validate
from pyodide_runtime.tick_parts import Histogram, TickParts

COIN_CHASE = "pyodide_runtime.examples.coin_chase:make_env"
#: The env's step busy-waits this long, so the env-step part has a known floor.
STEP_WORK_MS = 0.2

SLOW_ENV = f'''
import time
from pyodide_runtime.examples.coin_chase import CoinChaseEnv


class SlowCoinChase(CoinChaseEnv):
    def step(self, actions):
        until = time.perf_counter() + {STEP_WORK_MS} / 1000
        while time.perf_counter() < until:
            pass
        return super().step(actions)


def make_env(config=None):
    return SlowCoinChase(config)
'''


def study(spec: str = COIN_CHASE, max_steps: int = 90) -> dict:
    return {"study": "parts_test", "env": {"spec": spec, "file": None}, "players": 2,
            "config": {"env_config": {"max_steps": max_steps},
                       "session": {"players": 2, "fps": 30, "episodes": 1, "seed": 5}}}


def run_pair(desc: dict, *, compact: bool, link: LinkSpec = LinkSpec(latency_ms=70, jitter_ms=15)):
    """Two bridges ticking at 30 Hz through ``tick_page`` (``compact``) or ``tick``; returns them and their outputs."""
    bridges = [Bridge(json.dumps(desc), s, room="parts", participant=f"p{s}") for s in range(2)]
    net = Network(seed=3, default=link)
    rng = random.Random(11)
    inputs = [0, 0]
    outs: dict[int, list] = {0: [], 1: []}
    now = 0.0
    while now < 60_000 and not all(b.session.ended for b in bridges):
        for seat, b in enumerate(bridges):
            t = now + 7.0 * seat
            if rng.random() < 0.3:
                inputs[seat] = rng.randrange(5)
            if compact:
                out = b.tick_page(t, inputs[seat], net.deliver(t, seat) or None, False)
                sent = out[2] or []
            else:
                out = b.tick(t, inputs[seat], net.deliver(t, seat), False)
                sent = out["messages"]
            outs[seat].append(out)
            for to, data, _ in sent:
                net.send(t, seat, to, data)
        now += 1000 / 30
    return bridges, outs


@pytest.fixture(scope="module")
def compact_run():
    return run_pair(study(), compact=True)


def _bundle(outs: list, compact: bool) -> bytes:
    if compact:
        return next(o[7]["bundle"] for o in outs if o[7] and o[7].get("bundle"))
    return next(o["bundle"] for o in outs if o["bundle"] is not None)


def test_the_compact_tick_makes_the_same_exports_as_the_full_one(compact_run, tmp_path):
    bridges, outs = compact_run
    full_bridges, full_outs = run_pair(study(), compact=False)
    assert sum(b.session.stats["rollbacks"] for b in bridges) > 0, "the latency must have caused rollbacks"
    assert [b.session.stats["rollbacks"] for b in bridges] == [b.session.stats["rollbacks"] for b in full_bridges]
    paths = {}
    for kind, bs, os_ in (("compact", bridges, outs), ("full", full_bridges, full_outs)):
        for seat in range(2):
            path = tmp_path / f"{kind}{seat}.zip"
            path.write_bytes(_bundle(os_[seat], kind == "compact"))
            assert validate(str(path)).ok
            paths[kind, seat] = path
    assert compare(str(paths["compact", 0]), str(paths["compact", 1])).identical
    assert compare(str(paths["compact", 0]), str(paths["full", 0])).identical, "the same canonical data either way"


def test_only_what_changed_crosses(compact_run):
    bridges, outs = compact_run
    ticks = outs[0]
    assert all(isinstance(o, list) and len(o) == 8 for o in ticks)
    huds = [o[6] for o in ticks if o[6] is not None]
    assert ticks[0][6] is not None, "the first tick sends the HUD"
    assert 1 < len(huds) < len(ticks) / 2, "the HUD crosses only when it changed"
    decoded = [json.loads(h) for h in huds]
    assert all(a != b for a, b in zip(decoded, decoded[1:])), "never the same HUD twice in a row"
    assert decoded[-1] == bridges[0].hud()
    renders = [o[3] for o in ticks if o[3] is not None]
    assert renders and all(a != b for a, b in zip(renders, renders[1:])), "an unchanged payload is not sent again"
    assert json.loads(renders[-1])[0]["type"] == "canvas"
    assert any(o[2] is None for o in ticks) and any(o[2] for o in ticks), "no message list when nothing is sent"
    extras = [o[7] for o in ticks if o[7] is not None]
    assert len(extras) < len(ticks) / 2, "nothing extra on most ticks"
    with_events = [x for x in extras if "events" in x]
    assert with_events and all(x["events"] for x in with_events), "events only when there are some"
    assert any(e["type"] == "rollback" for x in with_events for e in x["events"])
    assert all(x["urgent"] == any(e["type"] not in ("rollback", "fast_forward", "stalled") for e in x["events"])
               for x in with_events)
    assert [o[1] for o in ticks][-1] == bridges[0].session.frame
    assert all(o[0] >= 0 for o in ticks)


def test_ticks_never_build_the_status(monkeypatch):
    built = []
    real = Bridge.status
    monkeypatch.setattr(Bridge, "status", lambda self, *a, **k: built.append(1) or real(self, *a, **k))
    bridges, outs = run_pair(study(max_steps=30), compact=True)
    assert bridges[0].session.ended and not built, "a tick builds no status; the page asks for it"
    assert json.loads(bridges[0].status_json())["phase"] == "ended" and built


def test_tick_parts_account_for_the_python_tick(compact_run):
    bridges, outs = compact_run
    b = bridges[0]
    parts = b.status()["tick_parts_ms"]
    assert parts["ticks"] == len(outs[0])
    assert set(parts["parts"]) == set(TICK_PARTS)
    for name, p in parts["parts"].items():
        assert p["count"] == len(outs[0]), name
        assert p["total_ms"] >= 0 and p["max_ms"] >= 0 and 0 <= p["p50"] <= p["p95"] <= p["p99"] <= p["max_ms"], name
    assert parts["parts"]["env_step"]["total_ms"] > 0 and parts["parts"]["render"]["total_ms"] > 0
    assert parts["parts"]["snapshot"]["total_ms"] > 0, "predicted frames were snapshotted"
    assert parts["frames_stepped"] == b.session.timeline.simulated > len(outs[0]) - 30, "every step was timed"
    assert parts["env_step_per_frame_ms"] > 0
    python_total = sum(o[0] for o in outs[0])
    parts_total = sum(p["total_ms"] for p in parts["parts"].values())
    assert parts_total <= python_total + 0.01 * len(outs[0]), "the parts are parts of the Python tick"


def test_the_env_step_part_holds_the_envs_work(tmp_path):
    env = tmp_path / "slow_env.py"
    env.write_text(SLOW_ENV)
    bridges, outs = run_pair(study(f"{env}:make_env", max_steps=30), compact=True,
                             link=LinkSpec(latency_ms=5))
    parts = bridges[0].tick_parts_ms()
    frames = parts["frames_stepped"]
    assert frames == bridges[0].session.timeline.simulated >= 30
    assert parts["parts"]["env_step"]["total_ms"] >= STEP_WORK_MS * frames, "the env's step time is in env_step"
    assert parts["env_step_per_frame_ms"] >= STEP_WORK_MS
    assert parts["parts"]["session"]["total_ms"] >= 0, "the session's own part is its tick minus the env's"


def test_the_worker_measurements_join_the_parts():
    b = Bridge(json.dumps(study(max_steps=30)), 0, room="r")
    b.tick_page(0.0, 0)
    js = {"parts": {"convert": {"count": 1, "total_ms": 0.2, "mean_ms": 0.2, "max_ms": 0.2, "p50": 0.2,
                                "p95": 0.2, "p99": 0.2},
                    "env_step": {"count": 1, "total_ms": 99.0}},
          "worker_tick": {"count": 1, "p50": 1.0}, "clock_resolution_ms": 0.1}
    status = json.loads(b.status_json(json.dumps({"tick_parts_js": js})))
    parts = status["tick_parts_ms"]
    assert parts["parts"]["convert"]["total_ms"] == 0.2
    assert parts["parts"]["env_step"]["total_ms"] != 99.0, "the worker cannot overwrite a Python part"
    assert parts["worker_tick"] == {"count": 1, "p50": 1.0} and parts["clock_resolution_ms"] == 0.1
    assert "tick_parts_js" not in status


def test_histogram_percentiles_and_zero_bucket():
    h = Histogram()
    assert h.percentile(0.5) is None and h.summary()["mean_ms"] is None
    for v in [0.0] * 6 + [0.013, 0.5, 1.234, 25.0]:
        h.add(v)
    s = h.summary()
    assert s["count"] == 10 and s["p50"] == 0.0, "most samples were exactly zero"
    assert s["p95"] == 25.0 and s["max_ms"] == 25.0, "beyond the last bucket: the max"
    assert h.percentile(0.7) == 0.02 and h.percentile(0.9) == 1.24
    assert h.percentiles((0.5, 0.7, 0.9, 1.0)) == [0.0, 0.02, 1.24, 25.0]
    small = Histogram()
    small.add(0.077)
    assert small.percentile(0.99) == 0.077, "a bucket bound above the max is reported as the max"
    assert s["total_ms"] == pytest.approx(26.747)
    h.add(-0.01)
    assert h.count == 11 and h.total == pytest.approx(26.747), "clock jitter below zero counts as zero"
    parts = TickParts(["a", "b"])
    parts.record({"a": 1.0})
    assert parts.ticks == 1 and parts.summary()["b"]["p50"] == 0.0


def test_instrument_times_a_game_once():
    class Game:
        def step(self, inputs):
            time.sleep(0.001)
            return inputs

        def get_state(self):
            return 1

        def set_state(self, state):
            pass

    g = Game()
    timer = instrument(g)
    assert isinstance(timer, GameTimer)
    assert g.step([3]) == [3] and g.get_state() == 1
    g.set_state(1)
    assert timer.steps == 1 and timer.snapshots == 2 and timer.step_ms >= 1.0
    with pytest.raises(ValueError):
        instrument(g)
    assert type(g).step is not g.step, "the class is left alone"


def test_the_page_reports_its_frame_cost_to_the_adaptive_delay(tmp_path):
    """With adaptive_delay the bridge tells its session the median measured cost of a simulated frame (step and
    snapshot), which the delay controller weighs (how the cost moves the delay: tests/test_adaptive_delay.py).
    Without adaptive_delay nothing is noted."""
    heavy_env, light_env = tmp_path / "heavy_env.py", tmp_path / "light_env.py"
    heavy_env.write_text(SLOW_ENV.replace(f"{STEP_WORK_MS} / 1000", "20.0 / 1000"))
    light_env.write_text(SLOW_ENV.replace(f"{STEP_WORK_MS} / 1000", "0.0"))

    def sessions(env, adaptive: bool = True) -> list:
        desc = study(f"{env}:make_env", max_steps=60)
        if adaptive:
            desc["config"]["session"].update(adaptive_delay=True, input_delay=1, min_input_delay=1,
                                             max_input_delay=6)
        bridges, _ = run_pair(desc, compact=True, link=LinkSpec(latency_ms=40, jitter_ms=20))
        return [b.session for b in bridges]

    for heavy, light in zip(sessions(heavy_env), sessions(light_env)):
        assert heavy.stats["frame_cost_ms"] >= 20.0, "the heavy env's measured frame cost reached the session"
        assert heavy._delay.frame_cost_ms == heavy.stats["frame_cost_ms"]
        assert light.stats["frame_cost_ms"] < 20.0
    assert all("frame_cost_ms" not in s.stats for s in sessions(light_env, adaptive=False))
