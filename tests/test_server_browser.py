"""Two real Chromium processes use the server's signaling to open a WebRTC DataChannel, and its relay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pyodide_runtime.host.headless import CHROMIUM_FLAGS, chromium_path
from server_support import ServerProcess

pytestmark = pytest.mark.browser

#: What a participant page does with the protocol: join, exchange offer/answer/ICE through `signal`, open a
#: DataChannel, then send one relay frame to everyone else.
PEER_JS = """async () => {
  const ws = new WebSocket(`ws://${location.host}/ws${location.search}`);
  ws.binaryType = "arraybuffer";
  const inbox = []; let wake = [];
  ws.onmessage = (e) => { inbox.push(e.data); wake.forEach((w) => w()); wake = []; };
  const next = async (pred) => {
    for (;;) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise((r) => wake.push(r));
    }
  };
  const control = async (type) =>
    JSON.parse(await next((d) => typeof d === "string" && JSON.parse(d).type === type));
  await new Promise((r) => (ws.onopen = r));
  ws.send(JSON.stringify({ type: "join" }));
  const joined = await control("joined");
  if (joined.peers.length === 0) await control("peer-joined");
  const other = 1 - joined.seat;
  const signal = (data) => ws.send(JSON.stringify({ type: "signal", to: other, data }));
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.onicecandidate = (e) => e.candidate && signal({ candidate: e.candidate.toJSON() });
  let channel;
  const opened = new Promise((resolve) => {
    // The answerer's channel can already be open when the datachannel event arrives.
    const use = (ch) => { channel = ch; if (ch.readyState === "open") resolve(); else ch.onopen = resolve; };
    if (joined.seat === 0) use(pc.createDataChannel("inputs", { ordered: false, maxRetransmits: 0 }));
    else pc.ondatachannel = (e) => use(e.channel);
  });
  (async () => {
    for (;;) {
      const m = await control("signal");
      if (m.data.sdp) {
        await pc.setRemoteDescription(m.data);
        if (m.data.type === "offer") { await pc.setLocalDescription(); signal(pc.localDescription.toJSON()); }
      } else if (m.data.candidate) await pc.addIceCandidate(m.data.candidate);
    }
  })();
  if (joined.seat === 0) { await pc.setLocalDescription(); signal(pc.localDescription.toJSON()); }
  await opened;
  const received = new Promise((r) => (channel.onmessage = (e) => r(e.data)));
  // The channel is unreliable (maxRetransmits 0), like the page's input channel, so one datagram can be lost:
  // say hello until this page is done, which is after the partner has heard it.
  const hello = () => channel.readyState === "open" && channel.send("hello from " + joined.seat);
  hello();
  const resend = setInterval(hello, 100);
  try {
    const direct = await received;
    ws.send(new Uint8Array([255, 42, joined.seat]));
    const relayed = Array.from(new Uint8Array(await next((d) => typeof d !== "string")));
    return { seat: joined.seat, participant: joined.participant, direct, relayed };
  } finally {
    clearInterval(resend);
  }
}"""


def chromium() -> str:
    try:
        return chromium_path()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_webrtc_datachannel_and_relay_between_two_browsers(tmp_path: Path):
    from playwright.async_api import async_playwright

    async def scenario(url: str):
        async with async_playwright() as pw:
            browsers = [
                # Without the no-background-networking flags, Chromium's calls home on this closed network can
                # stall the page's start-up.
                await pw.chromium.launch(executable_path=chromium(),
                                         args=[f for f in CHROMIUM_FLAGS if not f.startswith("--headless")])
                for _ in range(2)
            ]
            try:
                pages = [await b.new_page() for b in browsers]
                await pages[0].goto(url + "/healthz?PROLIFIC_PID=abc123")
                await pages[1].goto(url + "/healthz?workerId=W9")
                return await asyncio.wait_for(asyncio.gather(*(p.evaluate(PEER_JS) for p in pages)), 90)
            finally:
                for b in browsers:
                    await b.close()

    with ServerProcess(tmp_path, []) as server:
        first, second = asyncio.run(scenario(server.url))
    assert {first["seat"], second["seat"]} == {0, 1}
    assert (first["participant"], second["participant"]) == ("abc123", "W9")
    assert first["direct"] == f"hello from {second['seat']}" and second["direct"] == f"hello from {first['seat']}"
    assert first["relayed"] == [second["seat"], 42, second["seat"]]
    assert second["relayed"] == [first["seat"], 42, first["seat"]]
