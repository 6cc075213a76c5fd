// The participant page: wires the worker (Python), the transport, input, rendering, visibility, storage and
// the download together. It makes no netcode decision: the Python session decides, this page carries bytes.
//
// window.pyodideRuntime.status() returns a read-only JSON snapshot (documented in docs/bridge.md).

import { Transport } from "./transport.mjs";
import { parseConditions } from "./conditioner.mjs";
import { Autopilot, Keyboard, keyMap } from "./input.mjs";
import { Hud, Renderer } from "./render.mjs";
import { Meter } from "./meter.mjs";
import { watchVisibility } from "./visibility.mjs";
import { appendCheckpoint, deleteCheckpoints, listCheckpoints } from "./storage.mjs";
import { offerDownload, saveFile, uploadBundle } from "./download.mjs";
import { StudyFlow } from "./flow.mjs";
import { closing, frame, message } from "./scenes.mjs";
import { prng } from "./conditioner.mjs";
import { measurePeerRtt, newPageId } from "./screening.mjs";
import { Reporter } from "./report.mjs";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ACTIVE = "pyodide_runtime:active";
const SEAT = "pyodide_runtime:seat"; // this tab's running game: {seat_token, session, filename} (rejoin, recovered data)
const FLOW = "pyodide_runtime:flow"; // this tab's place in a study with scenes (scene order, record), for a rejoin
// URL parameters worth recording in the export (room links and tokens are capabilities and stay out of it); the
// network condition keys are added from page_config.
const RECORDED_PARAMS = ["relay", "p2p_timeout_ms", "autopilot", "autopilot_seed"];
const recordedParams = () => [...RECORDED_PARAMS, ...Object.keys(pageConfig.network_conditions)];
// /study.json page_config: the runtime's defaults and constants (session defaults, p2p timeout, network condition
// keys, close codes), served from Python. Nothing below needs them before study.json arrives.
let pageConfig = null;

const page = {
  stage: "loading",
  progress: null,
  study: null,
  seat: null,
  worker: null,
  hud: null,
  path: "connecting",
  rtt_ms: null,
  peerLeft: false,
  conditions: null,
  autopilot: null,
  timings: null,
  python: {},
  downloads: [],
  upload: null,
  recovered: [],
  errors: [],
  events: { rollback: 0, fast_forward: 0, peer_away: 0, peer_back: 0, stalled: 0, episode_ended: 0 },
  filename: null,
  session: null,
  away: false,
  awayChanges: 0,
  scene: null,        // the current scene {id, kind} of a study with scenes
  joined: null,       // the server's "joined" message (seat, room, participant)
  interims: [],       // interim copies handed to the server: {label, kind, state, path}
  final: null,        // the participant export of a study with scenes: {filename, sha256, bytes}
};
let flow = null;      // the StudyFlow of a study with scenes
let workerReady = null; // resolves when the runtime and env are loaded (preloaded from the first scene)
const waiters = { joined: [], paired: [], bundle: [], practice: [], attached: new Map(), screened: [], refused: [] };
// Server refusals that end the waiting room (the study has all its sessions; this participant is already in it).
const REFUSALS = {
  "study-full": "This study has all the participants it needs. Thank you for your interest!",
  "duplicate-participant": "This study is already open in another tab or window. Please continue there.",
};
let transport = null;
let worker = null;
let renderer = null;
let hud = null;
let autopilot = null;
let keyboard = null;
let storageKey = null;

// A random id for this page load: it names the page in dashboard reports and lets the server keep apart pairs that
// failed latency screening. Reports (docs/server.md, "Admin dashboard") never hold a participant id.
const PAGE_ID = newPageId();
let reporter = null;
// The main thread's time for the game (main_thread_ms in status()): handling the worker's frame and status messages
// and painting. perFrame: each painted frame's paint plus the message handling since the previous paint.
const mainCost = { frame: new Meter(), paint: new Meter(), status: new Meter(), perFrame: new Meter(), sincePaint: 0 };

function notePaint(ms) {
  mainCost.paint.add(ms);
  mainCost.perFrame.add(ms + mainCost.sincePaint);
  mainCost.sincePaint = 0;
}

function mainThreadMs() {
  const ticks = (page.python && page.python.tick_cost_ms && page.python.tick_cost_ms.count) || 0;
  const total = mainCost.frame.total + mainCost.paint.total + mainCost.status.total;
  return {
    ticks, total_ms: Math.round(total * 1000) / 1000,
    per_tick_mean_ms: ticks ? Math.round((total / ticks) * 1e4) / 1e4 : null,
    per_frame: mainCost.perFrame.summary(),
    parts: { frame: mainCost.frame.summary(), paint: mainCost.paint.summary(), status: mainCost.status.summary() },
  };
}
const reportLabel = (v) => (v == null || v === "" ? null : String(v).replace(/[^\x20-\x7e]/g, "?").slice(0, 64));
const reportCount = (v) => (Number.isInteger(v) && v >= 0 ? v : null);

function reportState() {
  const playing = page.stage === "playing";
  const py = page.python || {};
  const h = page.hud || {};
  const joined = transport && transport.joined;
  const rtt = py.rtt_ms ?? page.rtt_ms;
  return {
    page: PAGE_ID,
    scene: reportLabel(page.scene ? page.scene.id : playing ? "game" : page.stage) || "unknown",
    scene_kind: reportLabel(page.scene ? page.scene.kind : playing ? "game" : page.stage) || "unknown",
    room: joined ? joined.room : null,
    seat: reportCount(page.seat),
    session: reportLabel(page.session),
    game: playing && Number.isInteger(py.frame) ? {
      episode: reportCount(py.episode ?? h.episode),
      frame: reportCount(py.frame),
      transport: reportLabel(py.transport || page.path),
      rtt_ms: Number.isFinite(rtt) && rtt >= 0 ? Math.min(rtt, 600000) : null,
      rollbacks: reportCount(py.rollbacks),
      partner_away: typeof py.partner_away === "boolean" ? py.partner_away : null,
    } : null,
    ended: py.outcome || py.end_cause
      ? { outcome: reportLabel(py.outcome), end_cause: reportLabel(py.end_cause) } : null,
  };
}

// The status is built by the Python bridge (the worker's "status" messages) and shown as is. The page adds the
// facts only it holds, and stands in for phase, seat, transport and download until Python has built one.
function status() {
  return JSON.parse(JSON.stringify({
    phase: page.stage === "playing" ? "waiting" : page.stage,
    seat: page.seat,
    transport: page.path,
    rtt_ms: page.rtt_ms,
    download: downloadState(),
    ...page.python,
    stage: page.stage,
    progress: page.progress,
    transport_stats: transport ? transport.stats : null,
    relay_forced: transport ? transport.relayAll : null,
    partner_connected: !page.peerLeft,
    conditions: page.conditions,
    autopilot: page.autopilot,
    timings: page.timings,
    away_page: page.away,
    away_changes: page.awayChanges,
    events_seen: page.events,
    downloads: page.downloads,
    upload: page.upload,
    recovered: page.recovered,
    completion_link: completionLink(),
    scene: page.scene,
    record: flow ? flow.record : null,
    interims: page.interims,
    final: page.final,
    rendered_frames: renderer ? renderer.drawn : 0,
    main_thread_ms: mainThreadMs(),
    errors: page.errors,
  }));
}
window.pyodideRuntime = Object.freeze({ status });

function completionLink() {
  if (!$("complete").hidden) return $("complete-link").href;
  const link = document.querySelector("[data-completion-link]");
  return link ? link.href : null;
}

function downloadState() {
  if (page.downloads.length === 0) return "pending";
  return page.upload && page.upload.state === "uploaded" ? "saved+uploaded" : "saved";
}

// What the page says when a session ended because an env raised (the details go to the console and the export).
const STOPPED = {
  error: "The game stopped because of an error. Your data has been saved.",
  partner_error: "Your partner's game stopped because of an error. Your data has been saved.",
};

/** One line for the page: a Python traceback's last line (the exception), else the message's first line. */
function plain(message) {
  const lines = String(message).split("\n").map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return "";
  return lines[0].startsWith("Traceback") ? lines[lines.length - 1] : lines[0];
}

function error(where, message) {
  page.errors.push({ where, message: String(message) });
  console.error(`[pyodide_runtime] ${where}: ${message}`);
  $("notice").textContent = `Something went wrong (${where}). Please contact the researcher. ${plain(message)}`;
  $("notice").hidden = false;
}

function setProgress(stage, message) {
  page.progress = stage;
  $("progress-text").textContent = message || stage;
}

/** Conditions from the study (for everyone, or per seat), overridden by URL parameters in test mode. */
function conditionsFor(config, seat) {
  try {
    const net = config.network || null;
    const spec = pageConfig.network_conditions;
    let conditions = net && net.seats ? parseConditions(net.seats[String(seat)], spec) : parseConditions(net, spec);
    if (config.test_mode === true) conditions = parseConditions(params, spec) || conditions;
    return conditions;
  } catch (err) {
    error("network conditions", err.message);
    return null;
  }
}

/** How long WebRTC may take to open before the relay takes over (study config, or URL in test mode). */
function p2pTimeout(config) {
  const fromUrl = config.test_mode === true ? params.get("p2p_timeout_ms") : null;
  const value = Number(fromUrl ?? config.p2p_timeout_ms ?? pageConfig.p2p_timeout_ms);
  return Number.isFinite(value) && value >= 0 ? value : pageConfig.p2p_timeout_ms;
}

async function main() {
  const study = await (await fetch("/study.json", { cache: "no-store" })).json();
  pageConfig = study.page_config;
  reporter = new Reporter("/report", reportState).start();
  page.study = study.study;
  page.players = study.pages ?? study.players; // participant pages in a session (policy seats have none)
  const config = study.config || {};
  const scenes = Array.isArray(config.scenes) && config.scenes.length ? config.scenes : null;
  document.title = config.title || "Study";
  $("title").textContent = config.title || "";
  $("instructions").textContent = scenes ? "" : config.instructions || "";
  $("instructions").hidden = !!scenes;
  renderer = new Renderer($("stage"));
  hud = new Hud($("hud"));

  // The worker starts loading the runtime at once; the checks of this tab's stored checkpoints overlap it (a page
  // that offers recovered data needs the runtime too, to rebuild the data).
  startWorker(study);
  const resume = await resumable(study);
  if (!resume && await offerRecovery(study)) return;

  setInterval(measure, 2000);
  watchVisibility((away) => {
    page.away = away;
    page.awayChanges++;
    worker.postMessage({ type: "away", away });
  });
  // Closed, reloaded or navigated away (not hidden, frozen, or kept in the back/forward cache, which may come
  // back): the worker cannot say goodbye in time, so tell the server, which ends the partner's session at once.
  // When the study allows rejoining, a running game's page keeps its seat instead: the server reports it
  // disconnected, the partner waits up to session.rejoin_grace_ms, and a reload of this tab comes back.
  window.addEventListener("pagehide", (e) => {
    if (e.persisted || !transport) return;
    if (rejoinOn(study) && page.stage === "playing" && !page.gameEnded) return;
    transport.leave();
  });
  if (resume) {
    page.resume = resume;
    storageKey = resume.key;
    connect(study, resume.seat.seat_token);
  }
  if (scenes) await runScenes(study, scenes, resume ? resume.flow : null);
  else if (!resume) connect(study);
}

const rejoinOn = (study) => Number(((study.config || {}).session || {}).rejoin_grace_ms || 0) > 0;

/** A game this tab was playing before a reload, that it may rejoin: its seat token, its checkpoints, its flow. */
async function resumable(study) {
  if (!rejoinOn(study) || sessionStorage.getItem(ACTIVE) === null) return null;
  const seat = JSON.parse(sessionStorage.getItem(SEAT) || "null");
  if (!seat || !seat.filename || seat.ended) return null;
  const key = `${study.study}/${seat.filename}`;
  let records = [];
  try {
    records = (await listCheckpoints()).filter((r) => r.key === key);
  } catch (err) {
    error("storage", err);
  }
  if (records.length === 0) return null;
  const flowState = JSON.parse(sessionStorage.getItem(FLOW) || "null");
  return { seat, key, chunks: records[0].chunks, flow: flowState };
}

/** The worker loads Pyodide, the packages and the env right away, whatever scene the participant is reading. */
function startWorker(study) {
  worker = new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
  worker.onmessage = (e) => onWorker(e.data, study);
  worker.onerror = (e) => error("worker", e.message);
  let resolveReady;
  workerReady = new Promise((resolve) => (resolveReady = resolve));
  workerReady.resolve = resolveReady;
  worker.postMessage({
    type: "init",
    study,
    assetsURL: new URL(study.assets_url, location.href).href,
    page: {
      user_agent: navigator.userAgent,
      url_params: Object.fromEntries(recordedParams().filter((k) => params.has(k)).map((k) => [k, params.get(k)])),
    },
  });
}

/** Join the study server (pairing happens there): at once without scenes, at the waiting scene with them. */
function connect(study, seatToken = null) {
  const config = study.config || {};
  const wsURL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${study.ws_url}${location.search}`;
  transport = new Transport({
    wsURL,
    forceRelay: !!(study.relay && study.relay.forced) || params.get("relay") === "1" || config.relay === true,
    iceServers: study.ice_servers || [],
    p2pTimeoutMs: p2pTimeout(config),
    pageConfig,
    seatToken,
    pageId: PAGE_ID,
    params: Object.fromEntries(params),
    onData: (seat, data) => worker.postMessage({ type: "peer", seat, data }, [data]),
    onEvent: (msg) => onTransport(msg, study),
  });
  transport.connect();
  return transport;
}

// -- the study's scenes ------------------------------------------------------------------------------------------


const once = (list) => new Promise((resolve) => list.push(resolve));
const settle = (list, value) => list.splice(0).forEach((resolve) => resolve(value));

const PREPARING = "Preparing the game in the background…";

function activity(text) {
  $("activity").textContent = text || "";
  $("activity").hidden = !text;
}

async function runScenes(study, scenes, saved = null) {
  const config = study.config || {};
  const testMode = config.test_mode === true && params.get("autopilot") === "random";
  const seed = Number(params.get("autopilot_seed") || params.get("seed") || 0);
  const auto = testMode ? { random: prng(seed + 104729), delayMs: 300 } : null;
  $("game").hidden = true;
  $("loading").hidden = true;
  if (!page.timings) activity(PREPARING);
  flow = new StudyFlow({
    scenes,
    study: study.study,
    participant: participantId(),
    root: $("scene"),
    auto,
    random: testMode ? prng(seed + 15485863) : undefined,
    saved,
    handlers: {
      practice: (scene) => playPractice(scene, study),
      waiting: (scene, f) => waitForPartner(scene, study, f),
      game: (scene) => playGame(scene, study),
    },
    onScene: (scene, result) => (scene ? enterScene(scene, study) : finishFlow(study, result)),
  });
  await flow.run();
}

function enterScene(scene, study) {
  page.scene = { id: scene.id, kind: scene.kind };
  sessionStorage.setItem(FLOW, JSON.stringify(flow.saved()));
  const playing = scene.kind === "practice" || scene.kind === "game";
  $("game").hidden = !playing;
  if (!playing) $("overlay").hidden = true;
  if (reporter) reporter.now();
  saveInterim(study, `scene-${scene.id}`);
}

/** The runtime is still loading: say so, and resolve once it is ready. */
async function loaded() {
  if (!page.timings) activity("Loading the game…");
  await workerReady;
  activity(null);
}

async function playPractice(scene, study) {
  message($("scene"), scene.title || "Practice", scene.text || "Practice on your own before the real game.");
  await loaded();
  const done = once(waiters.practice);
  page.path = "practice";
  worker.postMessage({ type: "practice", scene });
  $("stage").focus();
  const bundle = await done;
  page.path = "connecting";
  page.practice = (page.practice || []).concat([bundle]);
  return { outcome: "completed" };
}

async function waitForPartner(scene, study, f) {
  const status = message($("scene"), scene.title || "Finding a partner", scene.text ||
    "Please wait while we find a partner for you. This page will start the game by itself.");
  // With latency screening, queue only once this page has loaded the game: the screening then measures two idle
  // workers (a worker still loading answers probes late). Without it, join at once: pairing and the WebRTC set-up
  // overlap the loading, and the game starts once both pages have loaded it.
  const screening = !!(study.screening && study.screening.max_rtt_ms);
  if (screening) await loaded();
  const started = performance.now();
  const limitMs = Number(scene.timeout_s) * 1000;
  const tick = setInterval(() => {
    const s = Math.floor((performance.now() - started) / 1000);
    status.textContent = `Waiting for a partner… ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }, 1000);
  try {
    for (let attempt = 0; ; attempt++) {
      f.waitingEvent(attempt, "queued");
      const paired = once(waiters.paired);
      if (!transport) connect(study);
      const left = limitMs - (performance.now() - started);
      const timedOut = new Promise((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, left)));
      const got = await Promise.race([paired, timedOut, once(waiters.refused)]);
      if (got && got.code in REFUSALS) {
        f.waitingEvent(attempt, got.code);
        transport.close();
        transport = null;
        return { outcome: got.code, stop: true, closing: {
          title: "Thank you", text: REFUSALS[got.code], code: null, url: scene.timeout_url } };
      }
      if (got === "timeout") {
        f.waitingEvent(attempt, "timeout");
        transport.leave();
        transport.close();
        transport = null;
        return { outcome: "timeout", stop: true, closing: {
          title: "No partner available", text: scene.timeout_text, code: scene.timeout_code, url: scene.timeout_url } };
      }
      f.waitingEvent(attempt, "paired");
      // The server's limit (the scene's max_rtt_ms, or serve --max-rtt-ms, whichever is smaller) decides.
      if (!screening) return { outcome: "paired" };
      const screened = await screen(study, attempt, f);
      if (screened.ok) return { outcome: "paired" };
      transport.close();
      transport = null;
      page.joined = null;
      if (attempt >= Number(scene.max_requeues ?? 2)) {
        f.waitingEvent(attempt, "gave-up", screened.rtt_ms);
        return { outcome: "latency", stop: true, closing: {
          title: "No suitable partner", text: scene.timeout_text, code: scene.timeout_code, url: scene.timeout_url } };
      }
      status.textContent = "Your connection to that partner was too slow; finding another partner…";
    }
  } finally {
    clearInterval(tick);
  }
}

/** Latency screening: measure the round trip to the partner through the game's own path, let the server decide. */
async function screen(study, attempt, f) {
  activity("Checking the connection to your partner…");
  const partners = [...Array(page.players).keys()].filter((s) => s !== page.joined.seat);
  // The partner's echoes go through its own conditioner: set ours before any probe can arrive.
  worker.postMessage({ type: "conditions", conditions: conditionsFor(study.config || {}, page.joined.seat) });
  const decided = once(waiters.screened);
  const conditions = conditionsFor(study.config || {}, page.joined.seat);
  // The slowest partner decides (a partner whose page cannot answer gives null: the server treats it as unmeasured).
  let measured = { rtt_ms: null, samples: [] };
  for (const partner of partners) {
    const m = await measurePeerRtt(worker, partner, { conditions });
    if (m.rtt_ms !== null && (measured.rtt_ms === null || m.rtt_ms > measured.rtt_ms)) measured = m;
  }
  f.waitingEvent(attempt, "measured", measured.rtt_ms, { samples: measured.samples });
  transport.reportRtt(measured.rtt_ms);
  const verdict = await decided;
  f.waitingEvent(attempt, verdict.ok ? "screened-ok" : "screened-out", verdict.rtt_ms, { max_rtt_ms: verdict.max_rtt_ms });
  activity(null);
  return verdict;
}

async function playGame(scene, study) {
  message($("scene"), scene.title || "", scene.text || "");
  if (!transport) connect(study);
  if (!page.joined) await once(waiters.joined);
  await loaded();
  const bundle = once(waiters.bundle);
  startGame(study);
  $("stage").focus();
  const done = await bundle;
  return { outcome: (page.python && page.python.outcome) || "ended", filename: done.filename };
}

/** Build the participant export in the worker (game bundle + participant tables + practice bundles). */
function attach(kind) {
  const id = `${kind}-${performance.now()}`;
  const answer = new Promise((resolve) => waiters.attached.set(id, resolve));
  worker.postMessage({ type: "attach", id, bundle: page.gameBundle || null,
    record: JSON.stringify(flow.record), practice: page.practice || [] });
  return answer;
}

/** An interim copy on the server (only once a seat exists: before pairing there is no game data to keep). */
async function saveInterim(study, label) {
  if (!flow || !study.upload || !study.upload.enabled || !transport || !transport.seatToken) return;
  if (!page.timings) return;
  const bundle = await attach("interim");
  upload(study, bundle.data, bundle.sha256, "interim", label);
}

async function upload(study, data, sha256, kind, label) {
  const entry = { kind, label, state: "uploading" };
  if (kind !== "final") page.interims.push(entry);
  try {
    const answer = await uploadBundle(study.upload.url, data, {
      sha256, seatToken: transport.seatToken, session: page.session, kind, label,
    });
    Object.assign(entry, { state: "uploaded", path: answer.path, duplicate: answer.duplicate });
  } catch (err) {
    Object.assign(entry, { state: "failed", message: String(err.message || err) });
  }
  return entry;
}

/** The end of the flow: save the participant export (download, and upload), then show the closing message. */
async function finishFlow(study, result) {
  page.scene = { id: "end", kind: "end" };
  if (reporter) reporter.now();
  $("game").hidden = true;
  $("overlay").hidden = true;
  activity("Saving your data…");
  await loaded();
  const bundle = await attach("final");
  page.final = { filename: bundle.filename, sha256: bundle.sha256, bytes: bundle.data.byteLength };
  page.downloads.push({ filename: bundle.filename, bytes: bundle.data.byteLength, sha256: bundle.sha256, saved: true });
  saveFile(bundle.data, bundle.filename);
  offerDownload($("download"), bundle.data, bundle.filename);
  if (study.upload && study.upload.enabled && transport && transport.seatToken) {
    page.upload = { state: "uploading" };
    const entry = await upload(study, bundle.data, bundle.sha256, "final", null);
    page.upload = entry;
  }
  if (storageKey) deleteCheckpoints(storageKey).catch((err) => error("storage", err));
  sessionStorage.removeItem(ACTIVE);
  sessionStorage.removeItem(SEAT);
  sessionStorage.removeItem(FLOW);
  activity(null);
  const c = (result && result.closing) || {};
  closing($("scene"), { ...c, text: c.text || "Thank you! You have finished the study." });
  if (transport) setTimeout(() => transport && transport.close(), 1000);
}

/** The connection the HUD shows; a room of one (a participant with bots) has no partner to connect to. */
const pathSummary = () => (page.players === 1 ? "solo" : transport.pathSummary());

async function measure() {
  if (!transport) return;
  page.path = pathSummary();
  page.rtt_ms = await transport.measureRtt();
  if (worker) worker.postMessage({ type: "transport", kind: page.path, rtt_ms: page.rtt_ms });
  hud.update(page.hud, page);
}

function onTransport(msg, study) {
  if (msg.type === "joined") {
    page.seat = msg.seat;
    if (!page.joined) {
      page.joined = msg;
      settle(waiters.joined, msg);
      if (!flow) startGame(study);
    }
    if ((msg.peers || []).length + 1 >= page.players) paired();
  } else if (msg.type === "peer-joined") {
    page.peerLeft = false;
    paired();
  } else if (msg.type === "screened") {
    settle(waiters.screened, msg);
  } else if (msg.type === "peer-left") {
    page.peerLeft = true;
    // Python decides what the notice means (only "left" and "expired" end the session).
    worker.postMessage({ type: "peer-left", seat: msg.seat, reason: msg.reason });
  } else if (msg.type === "path") {
    page.path = pathSummary();
    if (worker) worker.postMessage({ type: "transport", kind: page.path, rtt_ms: page.rtt_ms });
  } else if (msg.type === "error" && page.resume && !page.joined) {
    resumeFailed(study, `${msg.code}: ${msg.message}`); // the seat is gone (expired, or the room ended)
  } else if (msg.type === "error" && flow && msg.code in REFUSALS) {
    settle(waiters.refused, msg);
  } else if (msg.type === "error") {
    error("server", `${msg.code}: ${msg.message}`);
  }
  hud.update(page.hud, page);
}

/** The room is full: the waiting scene may end (the page's own seat is counted in "joined"). */
function paired() {
  if (page.timings) page.timings.paired_ms = page.timings.paired_ms ?? performance.now();
  else page.pairedAt = performance.now();
  settle(waiters.paired, true);
}

/** The participant id from the URL, as the server reads it (the first of the recruitment platforms' keys). */
function participantId() {
  for (const key of pageConfig.participant_keys || []) if (params.get(key)) return params.get(key);
  return null;
}

/** Start the game session in the worker for the seat the server gave us. */
function startGame(study) {
  if (page.stage === "playing") return;
  const msg = page.joined;
  page.stage = "playing";
  const config = study.config || {};
  page.conditions = conditionsFor(config, msg.seat);
  const participant = msg.participant || null;
  sessionStorage.setItem(ACTIVE, study.study);
  const resume = page.resume ? page.resume.chunks : null;
  worker.postMessage({ type: "start", seat: msg.seat, room: msg.room, participant, conditions: page.conditions,
                       resume });
  page.path = pathSummary();
  worker.postMessage({ type: "transport", kind: page.path, rtt_ms: page.rtt_ms });
}

function onWorker(msg, study) {
  switch (msg.type) {
    case "progress":
      setProgress(msg.stage, msg.message);
      break;
    case "ready":
      page.timings = msg.timings;
      page.timings.loaded_ms = performance.now(); // since the page opened (first_frame_ms and paired_ms too)
      if (page.pairedAt) page.timings.paired_ms = page.pairedAt;
      setProgress("joined", "Waiting for your partner…");
      if (workerReady) workerReady.resolve();
      if ($("activity").textContent === PREPARING) activity(null);
      break;
    case "started":
      if (msg.mode !== "practice") {
        page.filename = msg.filename;
        page.session = msg.session;
        storageKey = `${study.study}/${msg.filename}`;
        if (transport && transport.seatToken) {
          sessionStorage.setItem(SEAT, JSON.stringify({ seat_token: transport.seatToken, session: msg.session,
                                                        filename: msg.filename }));
        }
      }
      startInput(study, msg);
      break;
    case "interim":
      onInterim(msg, study);
      break;
    case "resume-failed":
      resumeFailed(study, msg.message);
      break;
    case "practice-bundle":
      if (autopilot) autopilot.stop();
      settle(waiters.practice, msg.data);
      break;
    case "attached": {
      const resolve = waiters.attached.get(msg.id);
      waiters.attached.delete(msg.id);
      if (resolve) resolve(msg);
      break;
    }
    case "send":
      transport.send(msg.seat, msg.data, msg.reliable);
      break;
    case "frame":
      onFrame(msg);
      break;
    case "status": {
      const started = performance.now();
      onStatus(msg);
      const spent = performance.now() - started;
      mainCost.status.add(spent);
      mainCost.sincePaint += spent;
      break;
    }
    case "checkpoint":
      if (storageKey) {
        appendCheckpoint(storageKey, { study: study.study, filename: page.filename }, msg.data)
          .catch((err) => error("storage", err));
      }
      break;
    case "bundle":
      onBundle(msg, study);
      break;
    case "recovered":
      onRecovered(msg, study);
      break;
    case "env-error":
      console.error(`[pyodide_runtime] ${msg.reason}\n${msg.traceback}`);
      break;
    case "error":
      error(msg.where, msg.message);
      break;
    default:
      break;
  }
}

function startInput(study, started) {
  const config = study.config || {};
  const frameMs = 1000 / ((config.session && config.session.fps) || pageConfig.session_defaults.fps);
  const send = (value) => worker.postMessage({ type: "input", value });
  if (!keyboard) keyboard = new Keyboard(window, send);
  keyboard.map = keyMap(config.controls, started.action_names);
  if (autopilot) autopilot.stop();
  if (config.test_mode === true && params.get("autopilot") === "random") {
    const practice = started.mode === "practice" ? 31 : 0;
    const seed = Number(params.get("autopilot_seed") || params.get("seed") || 0) + 7919 * ((page.seat ?? 0) + 1) + practice;
    autopilot = new Autopilot({ seed, frameMs, onChange: send });
    autopilot.start(started.input_count);
    page.autopilot = { mode: "random", seed };
  }
}

/** A tick's news from the worker: its new render payload, its events, and the HUD when it changed. */
function onFrame(msg) {
  const started = performance.now();
  if (msg.render !== undefined) {
    const loading = $("loading");
    if (!loading.hidden) loading.hidden = true; // no DOM write on every frame
    if (page.timings && page.stage === "playing" && page.timings.first_frame_ms === undefined) {
      page.timings.first_frame_ms = performance.now();
    }
    if (!renderer.onPaint) renderer.onPaint = notePaint;
    renderer.submit(msg);
  }
  page.frame = msg.frame;
  for (const e of msg.events || []) if (e.type in page.events) page.events[e.type]++;
  if (msg.hud) onHud(msg.hud);
  else if (page.hud && page.hud.fast_forwarding) showOverlay(page.hud);
  const spent = performance.now() - started;
  mainCost.frame.add(spent);
  mainCost.sincePaint += spent;
}

function onStatus(msg) {
  page.python = msg.status;
  for (const e of msg.events || []) if (e.type in page.events) page.events[e.type]++;
  onHud(msg.hud && Object.keys(msg.hud).length ? msg.hud : page.hud);
}

function onHud(h) {
  page.hud = h;
  showOverlay(h || {});
  showStopped();
  if (h && h.phase === "ended" && autopilot) autopilot.stop();
  hud.update(page.hud, page);
}

function showOverlay(h) {
  const hidden = !h.fast_forwarding && !h.between;
  if ($("overlay").hidden !== hidden) $("overlay").hidden = hidden;
  const frame = page.frame ?? (page.python || {}).frame;
  if (h.fast_forwarding) $("overlay-text").textContent = `Catching up… frame ${frame}`;
  else if (h.between) $("overlay-text").textContent = betweenText(h);
}

/** The between-episode screen: the last score and a countdown to the next episode. */
function betweenText(h) {
  const b = h.between;
  const seconds = Math.max(0, Math.ceil(Number(b.remaining_ms || 0) / 1000));
  const score = b.scores ?? h.score;
  const scoreText = score === undefined || score === null ? "" : `Score: ${score}. `;
  return `Episode ${b.episode} of ${h.episodes} is over. ${scoreText}The next one starts in ${seconds} s.`;
}

/** An interim copy of the confirmed game data (each episode end): kept for the final export and uploaded. */
function onInterim(msg, study) {
  if (!flow) {
    if (study.upload && study.upload.enabled && transport && transport.seatToken) {
      upload(study, msg.data, msg.sha256, "interim", msg.label);
    }
    return;
  }
  if (study.upload && study.upload.enabled && transport && transport.seatToken) {
    upload(study, msg.data, msg.sha256, "interim", msg.label);
  }
}

/** After an env error, the plain message over the game and below it, once the data is saved. */
function showStopped() {
  const text = STOPPED[(page.hud || {}).stopped];
  if (!text || page.downloads.length === 0) return;
  $("overlay-text").textContent = text;
  $("overlay").hidden = false;
  $("done").textContent = text;
  $("done").classList.add("stopped");
}

async function onBundle(msg, study) {
  page.gameEnded = true;
  const seat = JSON.parse(sessionStorage.getItem(SEAT) || "null");
  if (seat) sessionStorage.setItem(SEAT, JSON.stringify({ ...seat, ended: true })); // nothing left to rejoin
  if (reporter) reporter.now(); // the session ended: the dashboard hears its outcome at once
  if (flow) {
    page.gameBundle = msg.data;
    page.gameFile = { filename: msg.filename, sha256: msg.sha256, bytes: msg.data.byteLength };
    worker.postMessage({ type: "download", state: "saved" });
    if (study.upload && study.upload.enabled && transport && transport.seatToken) {
      upload(study, msg.data, msg.sha256, "interim", "game");
    }
    settle(waiters.bundle, msg);
    return;
  }
  const entry = { filename: msg.filename, bytes: msg.data.byteLength, sha256: msg.sha256, saved: false };
  page.downloads.push(entry);
  saveFile(msg.data, msg.filename);
  entry.saved = true;
  offerDownload($("download"), msg.data, msg.filename);
  worker.postMessage({ type: "download", state: "saved" });
  $("loading").hidden = true;
  $("done").hidden = false;
  showStopped();
  sessionStorage.removeItem(ACTIVE);
  sessionStorage.removeItem(SEAT);
  if (storageKey) deleteCheckpoints(storageKey).catch((err) => error("storage", err));
  setTimeout(() => transport && transport.close(), 3000);
  if (study.upload && study.upload.enabled && transport && transport.seatToken) {
    page.upload = { state: "uploading" };
    try {
      const answer = await uploadBundle(study.upload.url, msg.data, {
        sha256: msg.sha256, seatToken: transport.seatToken, session: page.session,
      });
      page.upload = { state: "uploaded", path: answer.path, duplicate: answer.duplicate };
      worker.postMessage({ type: "download", state: "saved+uploaded" });
    } catch (err) {
      page.upload = { state: "failed", message: String(err.message || err) };
    }
  }
  showCompletion((study.config || {}).completion_url);
}

/** The study's completion link (back to the recruitment platform), shown once the data is saved. */
function showCompletion(url) {
  if (typeof url !== "string" || !/^https?:\/\//.test(url)) return; // the server checked it; never a script URL
  $("complete-link").href = url;
  $("complete").hidden = false;
}

/** The game could not be rejoined: give the seat up (the partner's session ends) and offer the recovered data. */
function resumeFailed(study, why) {
  console.warn(`[pyodide_runtime] rejoin failed: ${why}`);
  const resume = page.resume;
  page.resume = null;
  page.stage = "interrupted";
  if (transport) {
    transport.leave();
    transport.close();
  }
  $("scene").hidden = true;
  $("game").hidden = true;
  $("loading").hidden = true;
  activity(null);
  $("notice").textContent = "This session was interrupted and could not be resumed. Download its data below.";
  $("notice").hidden = false;
  const button = $("recover");
  button.hidden = false;
  button.textContent = "Download the data of your interrupted session";
  button.onclick = () => recoverRecord(study, { key: resume.key, chunks: resume.chunks });
}

/** Checkpoints left by an interrupted session: offer their data. True when this tab was reloaded mid-session. */
async function offerRecovery(study) {
  let records = [];
  try {
    records = (await listCheckpoints()).filter((r) => r.info && r.info.study === study.study);
  } catch (err) {
    error("storage", err);
  }
  const reloaded = sessionStorage.getItem(ACTIVE) !== null;
  if (records.length === 0) {
    sessionStorage.removeItem(ACTIVE);
    sessionStorage.removeItem(SEAT);
    return false;
  }
  const latest = records.sort((a, b) => b.updated - a.updated)[0];
  const button = $("recover");
  button.hidden = false;
  button.textContent = "Download the data of your interrupted session";
  button.onclick = () => recoverRecord(study, latest);
  if (reloaded) {
    $("notice").textContent = "This session was interrupted. Download its data below; it cannot be resumed.";
    $("notice").hidden = false;
    $("loading").hidden = true;
    page.stage = "interrupted";
    return true;
  }
  return false;
}

function recoverRecord(study, record) {
  if (!worker) {
    worker = new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
    worker.onmessage = (e) => onWorker(e.data, study);
    worker.postMessage({ type: "init", study, assetsURL: new URL(study.assets_url, location.href).href, page: {} });
  }
  page.recovering = record.key;
  worker.postMessage({ type: "recover", chunks: record.chunks, key: record.key });
}

async function onRecovered(msg, study) {
  const entry = { filename: msg.filename, bytes: msg.data.byteLength, upload: null };
  page.recovered.push(entry);
  saveFile(msg.data, msg.filename);
  offerDownload($("recover"), msg.data, msg.filename, "Download the recovered data again");
  if (msg.key) deleteCheckpoints(msg.key).catch((err) => error("storage", err));
  sessionStorage.removeItem(ACTIVE);
  // The interrupted page's seat token (kept for this tab) still authorises an upload of what was recovered.
  const seat = JSON.parse(sessionStorage.getItem(SEAT) || "null");
  sessionStorage.removeItem(SEAT);
  if (!seat || !study.upload || !study.upload.enabled) return;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", msg.data));
  const sha256 = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  try {
    const answer = await uploadBundle(study.upload.url, msg.data, {
      sha256, seatToken: seat.seat_token, session: seat.session, kind: "recovered",
    });
    entry.upload = { state: "uploaded", path: answer.path };
  } catch (err) {
    entry.upload = { state: "failed", message: String(err.message || err) };
  }
}

main().catch((err) => error("start", err && err.stack ? err.stack : err));
