// Latency screening: the round trip to a partner, measured through the same path as game packets.
//
// The worker sends probe packets to the partner through its network conditioner (so test latency counts) and the
// page's transport; the partner's worker echoes them back the same way. Session packets start with the protocol's
// magic byte; probes start with PROBE, so the worker takes them out before they reach Python. A partner page
// without this module hands probes to Python, which rejects and counts them; nothing comes back, and the
// measurement ends after its timeout with rtt_ms null.
//
// Probe packet: [PROBE][kind: PING or ECHO][id: uint32 little-endian].
//
// On the main thread: measurePeerRtt(worker, seat, options) and newPageId(). In the worker: a Prober.

export const PROBE = 0x50;
const PING = 0;
const ECHO = 1;
const SIZE = 6;

let nextRequest = 1;

/** A fresh random page id for the `join` message: 22 url-safe characters (128 bits). */
export function newPageId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The round trip to `seat`, measured by the worker (main thread side).
 * @param {Worker} worker   the page's worker (js_bridge/worker.mjs)
 * @param {number} seat     the partner's seat
 * @param {object} [o]
 * @param {number} [o.samples]      probes to send
 * @param {number} [o.intervalMs]   time between two probes
 * @param {number} [o.timeoutMs]    the whole measurement ends by then; unanswered probes are not samples
 * @param {object|null} [o.conditions]  the study's test network conditions, applied to probes before the game starts
 * @returns {Promise<{rtt_ms: number|null, samples: number[]}>}  the median round trip (null: no probe came back)
 */
export function measurePeerRtt(worker, seat, o = {}) {
  const { samples = 10, intervalMs = 100, timeoutMs = 8000, conditions = null } = o;
  const id = nextRequest++;
  return new Promise((resolve) => {
    const onMessage = (event) => {
      const m = event.data;
      if (!m || m.type !== "probe-result" || m.id !== id) return;
      worker.removeEventListener("message", onMessage);
      resolve({ rtt_ms: m.rtt_ms, samples: m.samples });
    };
    worker.addEventListener("message", onMessage);
    worker.postMessage({ type: "probe", id, seat, samples, intervalMs, timeoutMs, conditions });
  });
}

/** The median of a non-empty list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Sends probes, echoes the partner's, and times the echoes (worker side). */
export class Prober {
  /**
   * @param {(seat:number, data:Uint8Array) => void} send  the worker's conditioned send path
   * @param {() => number} [now]
   */
  constructor(send, now = () => performance.now()) {
    this.send = send;
    this.now = now;
    this.nextId = 1;
    this.pending = new Map(); // probe id -> {sent, done(rtt)}
  }

  /** Handle a packet from `seat` if it is a probe (echo a ping, time an echo); false for anything else. */
  handle(seat, bytes) {
    if (bytes.length !== SIZE || bytes[0] !== PROBE) return false;
    if (bytes[1] === PING) {
      const echo = bytes.slice();
      echo[1] = ECHO;
      this.send(seat, echo);
    } else if (bytes[1] === ECHO) {
      const id = new DataView(bytes.buffer, bytes.byteOffset, SIZE).getUint32(2, true);
      const probe = this.pending.get(id);
      if (probe) {
        this.pending.delete(id);
        probe.done(this.now() - probe.sent);
      }
    }
    return true;
  }

  /** Send `samples` probes to `seat`, one every `intervalMs`; resolve with the median of those answered. */
  measure(seat, { samples = 10, intervalMs = 100, timeoutMs = 8000 } = {}) {
    return new Promise((resolve) => {
      const times = [];
      const ids = [];
      let sent = 0;
      let timer = null;
      const finish = () => {
        clearTimeout(deadline);
        clearTimeout(timer);
        for (const id of ids) this.pending.delete(id);
        resolve({ rtt_ms: times.length ? median(times) : null, samples: times });
      };
      const deadline = setTimeout(finish, timeoutMs);
      const ping = () => {
        const id = this.nextId;
        this.nextId = (this.nextId + 1) >>> 0 || 1;
        const packet = new Uint8Array(SIZE);
        packet[0] = PROBE;
        packet[1] = PING;
        new DataView(packet.buffer).setUint32(2, id, true);
        ids.push(id);
        this.pending.set(id, {
          sent: this.now(),
          done: (rtt) => {
            times.push(rtt);
            if (times.length === samples) finish();
          },
        });
        this.send(seat, packet);
        if (++sent < samples) timer = setTimeout(ping, intervalMs);
      };
      ping();
    });
  }
}
