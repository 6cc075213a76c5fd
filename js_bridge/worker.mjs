// The dedicated worker that runs Python: loads the runtime, builds the Python bridge once the seat is known,
// and ticks it paced by wall time. Worker timers are not throttled like a background tab's main-thread timers,
// so a hidden page keeps ticking (the session itself decides how many frames each tick simulates).
//
// Messages in:  init, start, practice, attach, conditions, probe, peer, peer-left, input, away, transport, download,
//               recover
// Messages out: progress, ready, send, frame, status, checkpoint, interim, bundle, practice-bundle, attached,
//               probe-result, resume-failed, recovered, env-error, error

import { loadRuntime, writeEnvFile } from "./loader.mjs";
import { storeBytecode } from "./bytecode.mjs";
import { Conditioner } from "./conditioner.mjs";
import { Prober } from "./screening.mjs";
import { fetchModel, loadOrt, PolicyModel } from "./policy.mjs";
import { clockResolutionMs, Meter } from "./meter.mjs";

let py = null;          // the Pyodide instance
let bridgeModule = null;
let preparedGame = null; // the game built during init (prepareGame), for the game's Bridge
let bridge = null;      // pyodide_runtime.bridge.Bridge: the practice or the game session in progress
let mode = "game";      // what `bridge` is: "practice" (solo, no peers) or "game"
let setup = null;       // the init message
let conditioner = new Conditioner(null); // set per seat by "start"

let input = 0;
let away = false;
let inbox = [];         // [seat, Uint8Array] received since the last tick
let frameMs = 0;        // the session's frame period, from the bridge's SessionConfig once it exists
let nextTick = 0;
let ticks = 0;
let ended = false;
let pendingStart = null;
let pendingLeft = [];    // peer-left notices that came before the bridge existed
let lastTransport = null; // the page's latest transport report, applied when the bridge exists
const policyModels = new Map(); // seat -> PolicyModel: the study's ONNX policies (run by the owning page)
const cost = { count: 0, total_ms: 0, max_ms: 0 }; // time spent in the Python tick, conversions included
// Its distribution: 0.05 ms buckets up to 100 ms (longer ticks land in the last one), for p50/p95/p99.
const BUCKET_MS = 0.05;
const buckets = new Uint32Array(2001);

function percentile(q) {
  const rank = Math.ceil(q * cost.count);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= rank && rank > 0) return i === buckets.length - 1 ? cost.max_ms : (i + 1) * BUCKET_MS;
  }
  return null;
}
// The worker's own parts of a tick (ms per tick, see tick_parts_ms in docs/bridge.md): the JS<->Python conversions
// (the call and toJs, minus Python's own time), posting to the main thread and transport, and building the status.
const parts = { convert: new Meter(), post: new Meter(), status: new Meter() };
const workerTick = new Meter(); // the whole tick here: the Python call, conversions, posts and status
// The status is built on a time basis (and at once on a notable event, at the end, or when asked), not per tick.
const STATUS_MS = 500;
let lastStatusAt = -Infinity;
let statusMs = 0;       // this tick's status time, for parts.status
let lastHud = {};       // the latest HUD the bridge sent (it sends one only when it changed)
let isReady = false;
let readyResolve;
const ready = new Promise((resolve) => (readyResolve = resolve));
const TO_JS = { dict_converter: Object.fromEntries, create_pyproxies: false };

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const fail = (where, err) => post({ type: "error", where, message: String((err && err.message) || err) });

async function init(msg) {
  setup = msg;
  const env = msg.study.env || {};
  const wheelAnswer = wheelSha256(msg.assetsURL); // fetched while Pyodide loads
  const { pyodide, timings, facts, packages } = await loadRuntime({
    assetsURL: msg.assetsURL,
    packages: env.packages || [],
    onProgress: (stage, detail) => post({ type: "progress", stage, message: detail && detail.message }),
    keepBytecode: true,
  });
  py = pyodide;
  await loadPolicies(msg.study.policies || [], msg.assetsURL);
  const envStart = performance.now();
  if (env.file) await writeEnvFile(py, env.file);
  post({ type: "progress", stage: "env", message: "Loading the game…" });
  bridgeModule = py.pyimport("pyodide_runtime.bridge");
  // Import the env module now so joining a room does not wait for it.
  bridgeModule.load_env_for_page(env.spec);
  timings.env_ms = performance.now() - envStart;
  prepareGame(msg.study, timings);
  // Keep this visit's bytecode for the next one now, before any session starts: the collection is synchronous
  // Python work, which must never land in a tick of play.
  if (timings.bytecode && timings.bytecode.restored === 0) {
    storeBytecode(py, msg.assetsURL).then((n) => (timings.bytecode.stored = n));
  }
  const wheel = await wheelAnswer;
  timings.assets = assetTransfers(msg.assetsURL);
  setup.page = { ...msg.page, wheel_sha256: wheel, pyodide_version: facts.pyodide, packages };
  post({ type: "ready", timings, facts, wheel_sha256: wheel });
  isReady = true;
  readyResolve();
  if (pendingStart) start(pendingStart);
}

/** Build the game (the env, its bots, the snapshot verification) before the seat is known, so that the session
 * starts as soon as the room is full. The game's Bridge takes it (see run); a study whose env cannot be built is
 * left to the Bridge, which raises the same error where it always has. */
function prepareGame(study, timings) {
  const started = performance.now();
  try {
    preparedGame = bridgeModule.prepare_game(JSON.stringify(study));
  } catch (err) {
    preparedGame = null;
    return;
  }
  timings.game_ms = performance.now() - started;
}

/** The asset files this worker fetched, and how many came from the browser's HTTP cache (no bytes transferred,
 * Resource Timing `transferSize` 0 with a body): a second visit should fetch none of them again. */
function assetTransfers(assetsURL) {
  const entries = performance.getEntriesByType("resource").filter((e) => e.name.startsWith(assetsURL));
  const cached = entries.filter((e) => e.transferSize === 0 && e.encodedBodySize > 0);
  return {
    files: entries.length,
    from_cache: cached.length,
    transferred_bytes: entries.reduce((sum, e) => sum + (e.transferSize || 0), 0),
  };
}


function dropPreparedGame() {
  if (preparedGame) preparedGame.destroy();
  preparedGame = null;
}

/** The study's ONNX models, each checked against its sha256, in onnxruntime-web (self-hosted with the assets).
 * Every page loads them: which page runs a policy's seat is only known once the server has given it its seat. */
async function loadPolicies(policies, assetsURL) {
  if (!policies.length) return;
  post({ type: "progress", stage: "policy", message: "Loading the computer partner…" });
  try {
    const ort = await loadOrt(assetsURL);
    for (const p of policies) {
      const bytes = await fetchModel(p.url, p.model_sha256);
      policyModels.set(p.seat, await PolicyModel.create(ort, bytes));
    }
  } catch (err) {
    throw new Error(`the computer partner's model could not be loaded: ${(err && err.message) || err}`);
  }
}

/** Run one inference request from the bridge; the result reaches Python between ticks. */
function infer(request) {
  const model = policyModels.get(request.seat);
  const owner = bridge;
  if (!model) {
    owner.policy_failed(request.seat, "no model loaded for this seat");
    return;
  }
  const started = performance.now();
  model.run(request.feeds).then(
    (outputs) => { if (bridge === owner) owner.policy_result(request.seat, request.id, outputs, performance.now() - started); },
    (err) => { if (bridge === owner) owner.policy_failed(request.seat, String((err && err.message) || err)); },
  );
}

async function wheelSha256(assetsURL) {
  try {
    const manifest = await (await fetch(assetsURL + "manifest.json")).json();
    return manifest.files[manifest.own_wheel].sha256;
  } catch {
    return null;
  }
}

function start(msg) {
  if (!isReady) {
    pendingStart = msg;
    return;
  }
  pendingStart = null;
  conditioner = new Conditioner(msg.conditions || null);
  try {
    run(JSON.stringify(setup.study), msg, "game");
  } catch (err) {
    if (!msg.resume) throw err;
    // The checkpoint cannot be resumed (another study, a changed env, a non-deterministic replay): the page falls
    // back to offering the recovered data.
    post({ type: "resume-failed", message: String((err && err.message) || err) });
    return;
  }
  for (const m of pendingLeft) bridge.peer_left(m.seat, m.reason);
  pendingLeft = [];
  if (lastTransport) setTransport(lastTransport);
}

/** A practice session: the study's env played alone (bots for the other agents), with no peers and no server. */
async function practice(msg) {
  await ready;
  dropPreparedGame(); // the game session builds its game after the practice, as it would without preparation
  const studyJson = bridgeModule.practice_study_json(JSON.stringify(setup.study), JSON.stringify(msg.scene));
  run(studyJson, { seat: 0, room: `practice-${msg.scene.id}`, participant: msg.participant || null }, "practice");
}

/** Build the bridge for `studyJson` and start ticking it. */
function run(studyJson, msg, kind) {
  const page = py.toPy({ ...setup.page, conditioner: msg.conditions || null });
  const resume = msg.resume ? py.toPy(msg.resume) : null; // the stored checkpoints of this participant's last page
  try {
    const kwargs = { room: msg.room, participant: msg.participant, page };
    if (resume) kwargs.resume = resume;
    if (kind === "game" && preparedGame) kwargs.game = preparedGame;
    bridge = bridgeModule.Bridge.callKwargs(studyJson, msg.seat, kwargs);
  } finally {
    page.destroy();
    if (resume) resume.destroy();
    if (kind === "game") dropPreparedGame(); // used once at most, even when the Bridge refused to start
  }
  mode = kind;
  ended = false;
  ticks = 0;
  Object.assign(cost, { count: 0, total_ms: 0, max_ms: 0 }); // each session's own tick costs
  buckets.fill(0);
  for (const m of Object.values(parts)) m.reset();
  workerTick.reset();
  lastStatusAt = -Infinity;
  lastHud = {};
  inbox = [];
  const info = JSON.parse(bridge.status_json());
  post({ type: "started", mode, filename: info.filename, session: info.session, action_names: info.action_names,
         input_count: info.input_count });
  const config = bridge.config;
  frameMs = 1000 / config.fps;
  config.destroy();
  nextTick = performance.now();
  loop();
}

/** The participant export: the game bundle (if any) with the participant tables and practice bundles added. */
function attach(msg) {
  const game = msg.bundle || null; // a Uint8Array reaches Python as a JsProxy (to_bytes)
  const practiceBundles = py.toPy(msg.practice || []);
  try {
    const res = bridgeModule.attach_participant(game, msg.record, practiceBundles);
    const [data, filename, sha256] = res.toJs(TO_JS);
    res.destroy();
    post({ type: "attached", id: msg.id, data, filename, sha256 }, [data.buffer]);
  } finally {
    practiceBundles.destroy();
  }
}

function loop() {
  if (ended) return;
  const now = performance.now();
  let catchingUp = false;
  try {
    catchingUp = tick(now);
  } catch (err) {
    fail("tick", err);
    return;
  }
  if (ended) return;
  // Drift-free pacing; after a long pause (frozen tab) start again from now instead of bursting.
  nextTick = Math.max(nextTick + frameMs, now - frameMs);
  setTimeout(loop, catchingUp ? 0 : Math.max(0, nextTick - performance.now()));
}

function tick(now) {
  const incoming = inbox;
  inbox = [];
  // Only what changed crosses: [python_ms, frame, messages, render, w, h, hud JSON, extra] (Bridge.tick_page).
  const res = bridge.tick_page(now, input, incoming.length ? incoming : null, away);
  const out = res.toJs(TO_JS);
  res.destroy();
  const called = performance.now();
  const spent = called - now;
  const [pyMs, frame, messages, render, w, h, hudJson, extra] = out;
  cost.count++;
  cost.total_ms += spent;
  cost.max_ms = Math.max(cost.max_ms, spent);
  buckets[Math.min(buckets.length - 1, Math.floor(spent / BUCKET_MS))]++;
  parts.convert.add(spent - pyMs);
  statusMs = 0;
  if (messages) for (const [seat, data, reliable] of messages) send(seat, data, reliable);
  const x = extra || {};
  if (x.inference) for (const request of x.inference) infer(request);
  const hud = hudJson ? JSON.parse(hudJson) : null;
  if (hud) lastHud = hud;
  if (render !== undefined && render !== null || hud || x.events) {
    // One message per tick at most: the new render payload, the HUD when it changed, this tick's events.
    const msg = { type: "frame", frame };
    const rgba = render instanceof Uint8Array;
    if (render !== undefined && render !== null) Object.assign(msg, { kind: rgba ? "rgba" : "draw", render, w, h });
    if (hud) msg.hud = hud;
    if (x.events) msg.events = x.events;
    post(msg, rgba ? [render.buffer] : []);
  }
  // The env raised: the session ended with outcome "error"; the traceback is for the console, not the page.
  if (x.error) post({ type: "env-error", reason: x.error.reason, traceback: x.error.traceback });
  if (x.urgent || x.ended || now - lastStatusAt >= STATUS_MS) postStatus();
  if (x.checkpoint && mode === "game") post({ type: "checkpoint", data: x.checkpoint }, [x.checkpoint.buffer]);
  if (x.interim && mode === "game") {
    post({ type: "interim", data: x.interim, label: x.interim_label, sha256: x.interim_sha256 }, [x.interim.buffer]);
  }
  if (x.bundle) {
    ended = true;
    const type = mode === "practice" ? "practice-bundle" : "bundle";
    post({ type, data: x.bundle, filename: x.filename, sha256: x.sha256 }, [x.bundle.buffer]);
    postStatus();
  }
  const done = performance.now();
  parts.post.add(done - called - statusMs);
  parts.status.add(statusMs);
  workerTick.add(done - now);
  return !!x.events && x.events.some((e) => e.type === "fast_forward");
}

function send(seat, data, reliable) {
  conditioner.send(data, reliable, (payload) =>
    post({ type: "send", seat, data: payload, reliable }, [payload.buffer]));
}

// The status is built by the Python bridge; the worker only hands it its own measurements. Events reach the page
// with the tick's "frame" message, the HUD there too when it changes; the status repeats the latest HUD.
function postStatus() {
  const started = performance.now();
  const measured = {
    conditioner: conditioner.stats,
    tick_cost_ms: { count: cost.count, mean: cost.count ? cost.total_ms / cost.count : 0, max: cost.max_ms,
                    p50: percentile(0.5), p95: percentile(0.95), p99: percentile(0.99) },
    wasm_memory_bytes: py._module && py._module.HEAP8 ? py._module.HEAP8.buffer.byteLength : null,
    tick_parts_js: { parts: Object.fromEntries(Object.entries(parts).map(([k, m]) => [k, m.summary()])),
                     worker_tick: workerTick.summary(), clock_resolution_ms: clockResolutionMs() },
  };
  post({ type: "status", status: JSON.parse(bridge.status_json(JSON.stringify(measured))), hud: lastHud, events: [] });
  lastStatusAt = started;
  statusMs += performance.now() - started;
}

function setTransport(m) {
  lastTransport = m;
  if (!bridge) return;
  bridge.set_transport(m.kind, m.rtt_ms ?? null, performance.now());
  if (ended) postStatus(); // no more ticks post it
}

async function recover(chunks, key) {
  await ready;
  const proxy = py.toPy(chunks);
  try {
    const res = bridgeModule.recover_bundle(proxy);
    const [data, filename] = res.toJs(TO_JS);
    res.destroy();
    post({ type: "recovered", data, filename, key }, [data.buffer]);
  } finally {
    proxy.destroy();
  }
}

// Latency probes (screening.mjs): "probe" in, "probe-result" out. Probes go out through send() like game packets,
// and the partner's are taken out of the peer bytes (and echoed) before Python sees them.
const prober = new Prober((seat, data) => send(seat, data, false));

function probe(m) {
  if (m.conditions && !bridge && !conditioner.conditions) conditioner = new Conditioner(m.conditions);
  return prober.measure(m.seat, m).then((r) => post({ type: "probe-result", id: m.id, ...r }));
}

const handlers = {
  init: (m) => init(m),
  start: (m) => start(m),
  practice: (m) => practice(m),
  attach: async (m) => { await ready; attach(m); },
  peer: (m) => {
    const bytes = new Uint8Array(m.data);
    if (!prober.handle(m.seat, bytes)) inbox.push([m.seat, bytes]);
  },
  probe: (m) => probe(m),
  "peer-left": (m) => (bridge ? bridge.peer_left(m.seat, m.reason) : pendingLeft.push(m)),
  input: (m) => { input = m.value | 0; },
  away: (m) => { away = !!m.away; },
  transport: (m) => setTransport(m),
  download: (m) => {
    if (!bridge) return;
    bridge.set_download(m.state);
    postStatus();
  },
  recover: (m) => recover(m.chunks, m.key),
};

self.onmessage = async (event) => {
  const msg = event.data;
  const handler = handlers[msg && msg.type];
  if (!handler) return;
  try {
    await handler(msg);
  } catch (err) {
    fail(msg.type, err);
  }
};
