"""The page's defaults and constants come from Python: served in ``/study.json`` ``page_config``, never copied in JS.

Checks that the served values are the Python sources' (``SessionConfig``, the study config's network conditions and
p2p timeout, the server's close codes and broadcast seat), that the bridge's JavaScript uses what is served (the
transport under Node with a stand-in WebSocket), that the literal copies are gone from the page's modules, and that
the worker asks the Python bridge, not the env loader, to load the env.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from dataclasses import fields

import aiohttp
import pytest

from pyodide_runtime import bridge
from pyodide_runtime.config import SessionConfig, session_defaults
from pyodide_runtime.envs.loading import EnvLoadError
from pyodide_runtime.host.server import signaling
from pyodide_runtime.host.server.page_config import BROADCAST, CLOSE_CODES, page_config
from pyodide_runtime.host.study_config import (
    CONDITION_KEYS, NETWORK_CONDITIONS, P2P_TIMEOUT_MAX_MS, P2P_TIMEOUT_MS, SESSION_FIELDS, parse_study_config,
)
from pyodide_runtime.host.testing.netsim import LinkSpec
from server_support import COIN_CHASE, REPO, ServerProcess

#: The page's modules that used to repeat Python's values.
PAGE_MODULES = ("js_bridge/main.mjs", "js_bridge/transport.mjs", "js_bridge/conditioner.mjs")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("page_config")
    (work / "study.json").write_text(json.dumps({"session": {"players": 2, "fps": 20}}))

    async def fetch(url: str) -> dict:
        async with aiohttp.ClientSession() as s, s.get(url + "/study.json") as r:
            assert r.status == 200
            return await r.json()

    with ServerProcess(work, ["--config", "study.json"], env_spec=COIN_CHASE) as server:
        return asyncio.run(asyncio.wait_for(fetch(server.url), 30))


def test_study_json_serves_the_page_config(served):
    assert served["page_config"] == json.loads(json.dumps(page_config()))
    # The study's own settings stay where they were; the defaults come alongside, not merged into them.
    assert served["config"]["session"] == {"players": 2, "fps": 20}


def test_session_defaults_are_session_configs(served):
    defaults = served["page_config"]["session_defaults"]
    assert defaults == {f.name: f.default for f in fields(SessionConfig)} == session_defaults() == SESSION_FIELDS
    assert defaults["fps"] == SessionConfig().fps
    assert SessionConfig(**defaults) == SessionConfig()


def test_p2p_timeout_is_the_study_configs_default(served):
    assert served["page_config"]["p2p_timeout_ms"] == P2P_TIMEOUT_MS
    assert 0 <= P2P_TIMEOUT_MS <= P2P_TIMEOUT_MAX_MS
    page = parse_study_config({"relay": {"p2p_timeout_ms": P2P_TIMEOUT_MAX_MS}}).page
    assert page["p2p_timeout_ms"] == P2P_TIMEOUT_MAX_MS


def test_network_conditions_are_one_table(served):
    conditions = served["page_config"]["network_conditions"]
    assert tuple(conditions) == CONDITION_KEYS == tuple(NETWORK_CONDITIONS)
    for key, c in NETWORK_CONDITIONS.items():
        assert conditions[key] == {"default": c.default, "max": c.high, "probability": c.probability,
                                   "integer": c.integer, "modifier": c.modifier}
    # The simulated network's link defaults are the page conditioner's.
    link = LinkSpec()
    for key in ("latency_ms", "jitter_ms", "loss", "duplicate", "reorder", "reorder_ms"):
        assert getattr(link, key) == conditions[key]["default"], key
    assert {k for k, c in conditions.items() if c["probability"]} == {"loss", "reorder", "duplicate"}
    with pytest.raises(ValueError, match="probability"):
        LinkSpec(loss=1.5)
    # The study config check uses the same limits.
    with pytest.raises(ValueError, match="network.loss"):
        parse_study_config({"test_mode": True, "network": {"loss": conditions["loss"]["max"] + 0.5}})
    page = parse_study_config({"test_mode": True, "network": {"seed": conditions["seed"]["max"]}}).page
    assert page["network"] == {"seed": conditions["seed"]["max"]}


def test_close_codes_are_the_servers(served):
    pc = served["page_config"]
    assert pc["close_codes"] == {name: c.code for name, c in CLOSE_CODES.items()}
    assert (signaling.CLOSE_LEFT, signaling.CLOSE_REPLACED, signaling.CLOSE_EXPIRED, signaling.CLOSE_REFUSED) == (
        pc["close_codes"]["left"], pc["close_codes"]["replaced"], pc["close_codes"]["expired"],
        pc["close_codes"]["refused"])
    assert (signaling.CLOSE_GOING_AWAY, signaling.CLOSE_POLICY, signaling.CLOSE_TOO_BIG) == (1001, 1008, 1009)
    assert sorted(pc["final_close_codes"]) == [1000, 4000, 4001, 4003, 4004]
    assert pc["relay_broadcast"] == BROADCAST == signaling.BROADCAST == 0xFF


def test_the_page_modules_keep_no_copies():
    pc = page_config()
    distinctive = {str(pc["p2p_timeout_ms"]), str(pc["relay_broadcast"]),
                   *(str(code) for code in pc["close_codes"].values() if code >= 4000)}
    for name in PAGE_MODULES:
        text = (REPO / name).read_text(encoding="utf-8")
        numbers = set(re.findall(r"(?<![\w.])\d[\d_]*(?![\w.])", text))
        assert not numbers & distinctive, f"{name} repeats {sorted(numbers & distinctive)}"
        # No fps fallback number, no condition default, no list of condition keys, no close(1000).
        assert not re.search(r"fps\)*\s*(\|\||\?\?)\s*\d", text), name
        assert not re.search(r"reorder_ms\s*:\s*\d", text), name
        assert not re.search(r"""["'](latency_ms|jitter_ms|reorder_ms|duplicate)["']""", text), name
        assert not re.search(r"\.close\(\s*\d", text), name
        assert "CONDITION_KEYS" not in text, name


TRANSPORT_SCRIPT = """
import { Transport } from "./js_bridge/transport.mjs";
const pageConfig = JSON.parse(process.argv[1]);
class FakeSocket {
  static OPEN = 1;
  constructor(url) { this.url = url; this.readyState = 1; this.sent = []; FakeSocket.last = this; }
  send(data) { this.sent.push(data); }
  close(code) { this.closedWith = code; }
}
globalThis.WebSocket = FakeSocket;
function transport() {
  return new Transport({ wsURL: "ws://host/ws", forceRelay: true, iceServers: [], p2pTimeoutMs: 0, seatToken: "t",
                         params: {}, pageConfig, onData: () => {}, onEvent: () => {} });
}
const reconnects = {};
for (const code of [1000, 1001, 1006, 1008, 4000, 4001, 4003, 4004]) {
  const t = transport();
  t.connect();
  FakeSocket.last.onclose({ code });
  reconnects[code] = t.stats.reconnects > 0;
  t.closed = true;  // the scheduled reconnect does nothing
}
const t = transport();
t.connect();
const ws = FakeSocket.last;
t.send(null, new Uint8Array([7]), false);
t.close();
console.log(JSON.stringify({ reconnects, broadcast: ws.sent[ws.sent.length - 1][0], closed: ws.closedWith }));
"""


def test_the_transport_uses_the_served_close_codes_and_broadcast_seat():
    node = shutil.which("node")
    if not node:
        pytest.fail("node is not installed; the bridge's JavaScript tests need it")
    pc = page_config()
    proc = subprocess.run([node, "--input-type=module", "-e", TRANSPORT_SCRIPT, json.dumps(pc)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    final = set(pc["final_close_codes"])
    codes = (1000, 1001, 1006, 1008, 4000, 4001, 4003, 4004)
    assert out["reconnects"] == {str(code): code not in final for code in codes}
    assert out["broadcast"] == BROADCAST and out["closed"] == pc["close_codes"]["left"]


def test_the_worker_loads_the_env_through_the_bridge():
    worker = (REPO / "js_bridge" / "worker.mjs").read_text(encoding="utf-8")
    assert "bridgeModule.load_env_for_page(env.spec)" in worker
    assert "envs.loading" not in worker and "load_factory" not in worker
    for name in ("js_bridge/replay_worker.mjs", "js_bridge/loader.mjs", "js_bridge/main.mjs"):
        assert "envs.loading" not in (REPO / name).read_text(encoding="utf-8"), name
    assert "load_env_for_page" in bridge.__all__


def test_load_env_for_page_imports_the_env_module():
    sys.modules.pop("pyodide_runtime.examples.pong", None)
    assert bridge.load_env_for_page("pyodide_runtime.examples.pong:make_env") is None
    assert "pyodide_runtime.examples.pong" in sys.modules
    with pytest.raises(EnvLoadError, match="no attribute"):
        bridge.load_env_for_page("pyodide_runtime.examples.pong:no_such_factory")
    with pytest.raises(ValueError, match="must look like"):
        bridge.load_env_for_page("no colon")
