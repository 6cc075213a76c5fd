// Moves peer bytes: WebRTC DataChannels negotiated through the server's signaling, with the server's WebSocket
// relay as the fallback. Runs on the main thread (RTCPeerConnection does not exist in workers).
//
// Per peer, two channels: "inputs" (unordered, no retransmits) for the session's input packets, "control"
// (reliable) for packets the Python side marks reliable. Until a channel is open, and for good when it does not
// open within `p2pTimeoutMs` or breaks, packets go through the relay: binary frames [to seat][payload] out and
// [from seat][payload] in. The server closes a resumed (previously frozen) tab's socket; the transport then
// reconnects and takes its seat back with the seat token. leave() gives the seat up for good (page unload).
//
// The p2p timeout, the close codes and the relay's broadcast seat come from Python (/study.json page_config, from
// pyodide_runtime/host/server/page_config.py); this module keeps no copy of them.

export class Transport {
  /**
   * @param {object} o
   * @param {string} o.wsURL            ws(s)://host/ws plus the page's query string
   * @param {boolean} o.forceRelay      never try WebRTC
   * @param {Array} o.iceServers        RTCPeerConnection iceServers
   * @param {string|null} o.seatToken   reclaim this seat (after a reconnect)
   * @param {object} o.params           the page's URL parameters (room, participant ids...)
   * @param {string} [o.pageId]         this page load's random id (screening.mjs newPageId), sent in join
   * @param {number} o.p2pTimeoutMs     how long WebRTC may take to open before the relay takes over
   * @param {object} o.pageConfig       /study.json page_config: close_codes, final_close_codes, relay_broadcast
   * @param {(seat:number, data:ArrayBuffer) => void} o.onData
   * @param {(msg:object) => void} o.onEvent   joined / peer-joined / peer-left / screened / error / closed / path
   */
  constructor(o) {
    Object.assign(this, o);
    this.ws = null;
    this.seat = null;
    this.joined = null;
    this.relayAll = !!o.forceRelay;
    this.peers = new Map(); // seat -> {pc, inputs, control, path: "connecting"|"p2p"|"relay", timer}
    this.closed = false;
    this.rtt = null;
    this.stats = { sent_p2p: 0, sent_relay: 0, received_p2p: 0, received_relay: 0, reconnects: 0 };
  }

  connect() {
    const ws = new WebSocket(this.wsURL);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const join = { type: "join", params: this.params };
      if (this.seatToken) join.seat_token = this.seatToken;
      if (this.forceRelay) join.relay = true;
      if (this.pageId) join.page_id = this.pageId;
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") this.onControl(JSON.parse(e.data));
      else if (e.data.byteLength > 1) {
        this.stats.received_relay++;
        this.onData(new Uint8Array(e.data, 0, 1)[0], e.data.slice(1));
      }
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.onEvent({ type: "closed", code: e.code });
      // Left, replaced, expired or refused (page_config.final_close_codes): nothing to come back to.
      if (!this.closed && !this.pageConfig.final_close_codes.includes(e.code) && this.seatToken) {
        this.stats.reconnects++;
        setTimeout(() => !this.closed && this.connect(), 250);
      }
    };
  }

  /** Report the measured round trip to the partners (ms; null when it could not be measured) for screening. */
  reportRtt(rttMs) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "rtt", rtt_ms: rttMs }));
  }

  onControl(msg) {
    if (msg.type === "joined") {
      this.seat = msg.seat;
      this.seatToken = msg.seat_token;
      this.joined = msg;
      if (msg.relay) this.relayAll = true;
      for (const seat of msg.peers) this.addPeer(seat, msg.reclaimed);
    } else if (msg.type === "peer-joined") {
      if (msg.relay) this.useRelayForAll();
      this.addPeer(msg.seat, msg.reclaimed);
    } else if (msg.type === "signal") {
      // One at a time: a candidate must not be added before the description it belongs to.
      this.signals = (this.signals || Promise.resolve()).then(() => this.onSignal(msg.from, msg.data));
      return;
    } else if (msg.type === "pong") {
      if (this.pathSummary() === "relay") this.rtt = performance.now() - msg.t;
      return;
    }
    this.onEvent(msg);
  }

  useRelayForAll() {
    this.relayAll = true;
    for (const seat of this.peers.keys()) this.setPath(seat, "relay");
  }

  addPeer(seat, reclaimed) {
    const known = this.peers.get(seat);
    if (known && (known.path === "p2p" || known.path === "relay")) return;
    if (known && !reclaimed) return;
    if (known) this.dropPeer(seat);
    const peer = { pc: null, inputs: null, control: null, path: "connecting", timer: null };
    this.peers.set(seat, peer);
    if (this.relayAll) return this.setPath(seat, "relay");
    peer.timer = setTimeout(() => peer.path === "connecting" && this.setPath(seat, "relay"), this.p2pTimeoutMs);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    peer.pc = pc;
    pc.onicecandidate = (e) => e.candidate && this.signal(seat, { candidate: e.candidate.toJSON() });
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState) && peer.path !== "relay") this.setPath(seat, "relay");
    };
    if (this.seat < seat) {
      this.useChannel(seat, pc.createDataChannel("inputs", { ordered: false, maxRetransmits: 0 }));
      this.useChannel(seat, pc.createDataChannel("control", { ordered: true }));
      pc.setLocalDescription().then(() => this.signal(seat, pc.localDescription.toJSON()));
    } else {
      pc.ondatachannel = (e) => this.useChannel(seat, e.channel);
    }
  }

  dropPeer(seat) {
    const peer = this.peers.get(seat);
    if (!peer) return;
    clearTimeout(peer.timer);
    if (peer.pc) peer.pc.close();
    this.peers.delete(seat);
  }

  useChannel(seat, channel) {
    const peer = this.peers.get(seat);
    channel.binaryType = "arraybuffer";
    peer[channel.label === "control" ? "control" : "inputs"] = channel;
    channel.onmessage = (e) => {
      if (typeof e.data === "string") return; // peers only ever send bytes
      this.stats.received_p2p++;
      this.onData(seat, e.data);
    };
    channel.onopen = () => {
      if (peer.inputs && peer.control && peer.inputs.readyState === "open" && peer.control.readyState === "open"
          && peer.path === "connecting") this.setPath(seat, "p2p");
    };
    channel.onclose = () => peer.path === "p2p" && this.setPath(seat, "relay");
  }

  async onSignal(from, data) {
    if (this.relayAll || !data || typeof data !== "object") return;
    let peer = this.peers.get(from);
    if (data.type === "offer" && (!peer || !peer.pc)) {
      this.addPeer(from, true);
      peer = this.peers.get(from);
    }
    if (!peer || !peer.pc) return;
    try {
      if (data.type === "offer" || data.type === "answer") {
        await peer.pc.setRemoteDescription({ type: data.type, sdp: String(data.sdp) });
        if (data.type === "offer") {
          await peer.pc.setLocalDescription();
          this.signal(from, peer.pc.localDescription.toJSON());
        }
      } else if (data.candidate) {
        await peer.pc.addIceCandidate(data.candidate);
      }
    } catch (err) {
      console.warn("signaling with seat", from, "failed:", err);
    }
  }

  signal(to, data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "signal", to, data }));
  }

  setPath(seat, path) {
    const peer = this.peers.get(seat);
    if (!peer || peer.path === path) return;
    clearTimeout(peer.timer);
    peer.path = path;
    this.onEvent({ type: "path", seat, path });
  }

  /** "p2p" when every peer is reached directly, "relay" when any goes through the server, else "connecting". */
  pathSummary() {
    const paths = [...this.peers.values()].map((p) => p.path);
    if (paths.length === 0) return "connecting";
    if (paths.includes("relay")) return "relay";
    return paths.every((p) => p === "p2p") ? "p2p" : "connecting";
  }

  send(seat, data, reliable) {
    const peer = this.peers.get(seat);
    if (peer && peer.path === "p2p") {
      const channel = reliable ? peer.control : peer.inputs;
      if (channel && channel.readyState === "open") {
        this.stats.sent_p2p++;
        return channel.send(data);
      }
    }
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const frame = new Uint8Array(data.byteLength + 1);
    frame[0] = seat === null || seat === undefined ? this.pageConfig.relay_broadcast : seat;
    frame.set(new Uint8Array(data.buffer || data, data.byteOffset || 0, data.byteLength), 1);
    this.stats.sent_relay++;
    this.ws.send(frame);
  }

  /** Measure the round trip of the path in use (RTCPeerConnection stats, or a ping through the server). */
  async measureRtt() {
    const summary = this.pathSummary();
    if (summary === "relay" || summary === "connecting") {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "ping", t: performance.now() }));
      }
      return this.rtt;
    }
    for (const peer of this.peers.values()) {
      if (!peer.pc) continue;
      const stats = await peer.pc.getStats();
      stats.forEach((s) => {
        if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
          this.rtt = s.currentRoundTripTime * 1000;
        }
      });
    }
    return this.rtt;
  }

  /** Give the seat up for good, synchronously (the page is being unloaded): the server tells the peers now. */
  leave() {
    this.closed = true;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "leave" }));
  }

  close() {
    this.closed = true;
    for (const seat of [...this.peers.keys()]) this.dropPeer(seat);
    if (this.ws) this.ws.close(this.pageConfig.close_codes.left);
  }
}
