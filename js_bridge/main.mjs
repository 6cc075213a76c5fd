// The participant page: wires the worker (Python), the transport, input, rendering, visibility, storage and
// the download together. It makes no netcode decision: the Python session decides, this page carries bytes.
//
// window.pyodideRuntime.status() returns a read-only JSON snapshot (documented in docs/bridge.md).

import { Transport } from "./transport.mjs";
import { parseConditions } from "./conditioner.mjs";
import { Autopilot, Keyboard, keyMap } from "./input.mjs";
import { Hud, Renderer } from "./render.mjs";
import { watchVisibility } from "./visibility.mjs";
import { appendCheckpoint, deleteCheckpoints, listCheckpoints } from "./storage.mjs";
import { offerDownload, saveFile, uploadBundle } from "./download.mjs";
import { Reporter } from "./report.mjs";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ACTIVE = "pyodide_runtime:active";
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
};
let transport = null;
let worker = null;
let renderer = null;
let hud = null;
let autopilot = null;
let keyboard = null;
let storageKey = null;

// Reports for the researcher dashboard (docs/server.md, "Admin dashboard"): a random id for this page load and
// what the page is doing. No participant id is ever part of a report.
const PAGE_ID = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
let reporter = null;
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
    scene: reportLabel(playing ? page.scene || "game" : page.stage) || "unknown",
    scene_kind: reportLabel(page.sceneKind || (playing ? "game" : page.stage)) || "unknown",
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
    completion_link: $("complete").hidden ? null : $("complete-link").href,
    rendered_frames: renderer ? renderer.drawn : 0,
    errors: page.errors,
  }));
}
window.pyodideRuntime = Object.freeze({ status });

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
  page.players = study.players;
  const config = study.config || {};
  document.title = config.title || "Study";
  $("title").textContent = config.title || "";
  $("instructions").textContent = config.instructions || "";
  renderer = new Renderer($("stage"));
  hud = new Hud($("hud"));

  if (await offerRecovery(study)) return;

  worker = new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
  worker.onmessage = (e) => onWorker(e.data, study);
  worker.onerror = (e) => error("worker", e.message);
  const urlParams = Object.fromEntries(params);
  worker.postMessage({
    type: "init",
    study,
    assetsURL: new URL(study.assets_url, location.href).href,
    page: {
      user_agent: navigator.userAgent,
      url_params: Object.fromEntries(recordedParams().filter((k) => params.has(k)).map((k) => [k, params.get(k)])),
    },
  });

  const wsURL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${study.ws_url}${location.search}`;
  transport = new Transport({
    wsURL,
    forceRelay: !!(study.relay && study.relay.forced) || params.get("relay") === "1" || config.relay === true,
    iceServers: study.ice_servers || [],
    p2pTimeoutMs: p2pTimeout(config),
    pageConfig,
    seatToken: null,
    params: urlParams,
    onData: (seat, data) => worker.postMessage({ type: "peer", seat, data }, [data]),
    onEvent: (msg) => onTransport(msg, study),
  });
  transport.connect();
  setInterval(measure, 2000);
  watchVisibility((away) => {
    page.away = away;
    page.awayChanges++;
    worker.postMessage({ type: "away", away });
  });
  // Closed, reloaded or navigated away (not hidden, frozen, or kept in the back/forward cache, which may come
  // back): the worker cannot say goodbye in time, so tell the server, which ends the partner's session at once.
  window.addEventListener("pagehide", (e) => !e.persisted && transport.leave());
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
    if (page.stage !== "playing") {
      page.stage = "playing";
      const config = study.config || {};
      page.conditions = conditionsFor(config, msg.seat);
      const participant = msg.participant || null;
      sessionStorage.setItem(ACTIVE, study.study);
      worker.postMessage({ type: "start", seat: msg.seat, room: msg.room, participant, conditions: page.conditions });
      page.path = pathSummary();
      worker.postMessage({ type: "transport", kind: page.path, rtt_ms: page.rtt_ms });
    }
  } else if (msg.type === "peer-joined") {
    page.peerLeft = false;
  } else if (msg.type === "peer-left") {
    page.peerLeft = true;
    // Python decides what the notice means (only "left" and "expired" end the session).
    worker.postMessage({ type: "peer-left", seat: msg.seat, reason: msg.reason });
  } else if (msg.type === "path") {
    page.path = pathSummary();
    if (worker) worker.postMessage({ type: "transport", kind: page.path, rtt_ms: page.rtt_ms });
  } else if (msg.type === "error") {
    error("server", `${msg.code}: ${msg.message}`);
  }
  hud.update(page.hud, page);
}

function onWorker(msg, study) {
  switch (msg.type) {
    case "progress":
      setProgress(msg.stage, msg.message);
      break;
    case "ready":
      page.timings = msg.timings;
      setProgress("joined", "Waiting for your partner…");
      break;
    case "started":
      page.filename = msg.filename;
      page.session = msg.session;
      storageKey = `${study.study}/${msg.filename}`;
      startInput(study, msg);
      break;
    case "send":
      transport.send(msg.seat, msg.data, msg.reliable);
      break;
    case "frame":
      $("loading").hidden = true;
      renderer.submit(msg);
      break;
    case "status":
      onStatus(msg);
      break;
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
      onRecovered(msg);
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
  keyboard = new Keyboard(window, send);
  keyboard.map = keyMap(config.controls, started.action_names);
  if (config.test_mode === true && params.get("autopilot") === "random") {
    const seed = Number(params.get("autopilot_seed") || params.get("seed") || 0) + 7919 * (page.seat + 1);
    autopilot = new Autopilot({ seed, frameMs, onChange: send });
    autopilot.start(started.input_count);
    page.autopilot = { mode: "random", seed };
  }
}

function onStatus(msg) {
  page.python = msg.status;
  page.hud = msg.hud && Object.keys(msg.hud).length ? msg.hud : page.hud;
  for (const e of msg.events || []) if (e.type in page.events) page.events[e.type]++;
  const h = page.hud || {};
  $("overlay").hidden = !h.fast_forwarding;
  if (h.fast_forwarding) $("overlay-text").textContent = `Catching up… frame ${msg.status.frame}`;
  showStopped();
  if (h.phase === "ended" && autopilot) autopilot.stop();
  hud.update(page.hud, page);
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
  if (reporter) reporter.now(); // the session ended: the dashboard hears its outcome at once
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

function onRecovered(msg) {
  page.recovered.push({ filename: msg.filename, bytes: msg.data.byteLength });
  saveFile(msg.data, msg.filename);
  offerDownload($("recover"), msg.data, msg.filename, "Download the recovered data again");
  if (msg.key) deleteCheckpoints(msg.key).catch((err) => error("storage", err));
  sessionStorage.removeItem(ACTIVE);
}

main().catch((err) => error("start", err && err.stack ? err.stack : err));
