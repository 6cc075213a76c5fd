// The replay page: drives the replay worker (Python re-simulates the bundle) and shows its frames with the
// participant page's renderer. Everything from the bundle is drawn on canvases or set as textContent.
//
// window.pyodideReplay.status() returns a JSON snapshot (stage, info, the shown frame and its observations);
// window.pyodideReplay.seek(frame) shows a global frame.

import { Renderer } from "/js_bridge/render.mjs";

const $ = (id) => document.getElementById(id);
const COLOURS = { rollback: "#e0452b", away: "#8e44ad", fast_forward: "#2a9d4b", stall: "#d99a1e", desync: "#000000" };

const state = {
  stage: "loading", info: null, view: null, error: null, views: 0,
  target: 0, busy: false, playing: false, playhead: 0, speed: 1, last: 0,
};
let worker = null;
let renderer = null;

function status() {
  const v = state.view;
  return JSON.parse(JSON.stringify({
    stage: state.stage, error: state.error, info: state.info, playing: state.playing, speed: state.speed,
    frame: v ? v.frame : null, episode: v ? v.episode : null, episode_frame: v ? v.episode_frame : null,
    inputs: v ? v.inputs : null, away: v ? v.away : null, observations: v ? v.observations : null,
    observation_digest: v ? v.observation_digest : null, recorded_digest: v ? v.recorded_digest : null,
    match: v ? v.match : null, views: state.views, rendered_frames: renderer ? renderer.drawn : 0,
    pending: state.busy || (v !== null && state.target !== v.frame),
  }));
}

function seek(frame) {
  if (!state.info) return;
  const last = state.info.frames - 1;
  state.target = Math.max(0, Math.min(last, Math.floor(Number(frame) || 0)));
  if (!state.busy) {
    state.busy = true;
    worker.postMessage({ type: "seek", frame: state.target });
  }
}

window.pyodideReplay = Object.freeze({ status, seek });

function fail(message) {
  state.stage = "error";
  state.error = message;
  state.playing = false;
  $("loading").hidden = true;
  $("notice").textContent = message;
  $("notice").hidden = false;
}

function episodeOf(frame) {
  const eps = state.info.episodes;
  let found = eps[0];
  for (const e of eps) if (e.start_frame <= frame) found = e;
  return found;
}

function option(select, value, text) {
  const el = document.createElement("option");
  el.value = String(value);
  el.textContent = text;
  select.append(el);
}

function setup(info) {
  state.info = info;
  state.stage = "ready";
  $("loading").hidden = true;
  $("viewer").hidden = false;
  $("title").textContent = `Replay: ${info.env_id || "session"}`;
  const seat = info.participant_seat === null || info.participant_seat === undefined ? "" :
    `, downloaded by seat ${info.participant_seat}`;
  $("subtitle").textContent = `${info.study || ""} session ${info.session || ""}${seat}: ${info.frames} confirmed ` +
    `frames in ${info.episodes.length} episode(s), ${info.status}.` +
    (info.source_matches === false ? " Warning: the env's source differs from the recorded one." : "");
  for (const e of info.episodes) option($("episode"), e.start_frame, `${e.episode} (${e.frames} frames)`);
  for (const a of info.agents) option($("agent"), a, a);
  $("goto").max = String(info.frames - 1);
  $("marker-count").textContent = String(info.markers.length);
  const list = $("marker-list");
  for (const m of info.markers.slice(0, 2000)) {
    const li = document.createElement("li");
    const go = document.createElement("button");
    go.type = "button";
    go.textContent = m.start === m.end ? `frame ${m.start}` : `frames ${m.start}–${m.end}`;
    go.addEventListener("click", () => { pause(); seek(m.start); });
    li.append(go, ` ${m.kind}: ${m.label}`);
    list.append(li);
  }
  drawMarkers();
  seek(0);
}

function drawMarkers() {
  const canvas = $("markers");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = state.info.frames;
  const rows = { rollback: 0, away: 1, fast_forward: 1, stall: 2, desync: 2 };
  for (const m of state.info.markers) {
    ctx.fillStyle = COLOURS[m.kind] || "#555";
    const x = (m.start / n) * w;
    const width = Math.max(1, ((m.end - m.start + 1) / n) * w);
    ctx.fillRect(x, rows[m.kind] * 6, width, 6);
  }
  for (const e of state.info.episodes.slice(1)) {
    ctx.fillStyle = "#333";
    ctx.fillRect((e.start_frame / n) * w, 0, 1, h);
  }
  if (state.view) {
    ctx.fillStyle = "#2f6fdf";
    ctx.fillRect((state.view.frame / n) * w - 1, 0, 2, h);
  }
}

function show(view) {
  state.view = view;
  state.views++;
  if (view.render_kind) {
    renderer.submit({ kind: view.render_kind, render: view.render, w: view.render_w, h: view.render_h });
  }
  const info = state.info;
  const ep = episodeOf(view.frame);
  $("episode").value = String(ep.start_frame);
  const scrub = $("scrubber");
  scrub.max = String(ep.frames - 1);
  scrub.value = String(view.episode_frame);
  if (document.activeElement !== $("goto")) $("goto").value = String(view.frame);
  $("position").textContent = `episode ${view.episode}, frame ${view.episode_frame} of ${ep.frames} ` +
    `(global ${view.frame} of ${info.frames})`;
  const match = $("match");
  match.className = view.match ? "match ok" : "match bad";
  match.textContent = view.match ? `Re-simulated observations equal the recording (${view.observation_digest}).`
    : `Re-simulated observations differ from the recording (${view.observation_digest} vs ${view.recorded_digest}).`;
  const names = info.action_names || [];
  const body = $("seats");
  body.replaceChildren();
  const cell = (row, text, cls) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
  };
  info.seats.forEach((agent, seat) => {
    const row = document.createElement("tr");
    const value = view.inputs[seat];
    cell(row, String(seat));
    cell(row, agent);
    cell(row, names[value] !== undefined ? `${value} ${names[value]}` : String(value));
    cell(row, view.away[seat] ? "away" : "", view.away[seat] ? "away" : "");
    cell(row, String(view.rewards[agent] ?? ""));
    body.append(row);
  });
  for (const [agent, bot] of Object.entries(info.bots || {})) {
    const row = document.createElement("tr");
    cell(row, "bot");
    cell(row, `${agent} (${bot})`);
    cell(row, String(view.actions[agent] ?? ""));
    cell(row, "");
    cell(row, String(view.rewards[agent] ?? ""));
    body.append(row);
  }
  const agent = $("agent").value || info.agents[0];
  $("observation").textContent = view.observations[agent] ?? "(absent)";
  $("play").textContent = state.playing ? "Pause" : "Play";
  drawMarkers();
}

function play() {
  if (!state.view) return;
  if (state.view.frame >= state.info.frames - 1) seek(0);
  state.playing = true;
  state.playhead = state.target;
  state.last = performance.now();
  $("play").textContent = "Pause";
  requestAnimationFrame(animate);
}

function pause() {
  state.playing = false;
  $("play").textContent = "Play";
}

function animate(now) {
  if (!state.playing) return;
  const dt = Math.min(250, now - state.last);
  state.last = now;
  state.playhead += (dt / 1000) * state.info.fps * state.speed;
  const last = state.info.frames - 1;
  if (state.playhead >= last) {
    seek(last);
    pause();
    return;
  }
  if (Math.floor(state.playhead) !== state.target) seek(state.playhead);
  requestAnimationFrame(animate);
}

function step(delta) {
  pause();
  seek((state.view ? state.target : 0) + delta);
}

function wire() {
  $("play").addEventListener("click", () => (state.playing ? pause() : play()));
  $("back").addEventListener("click", () => step(-1));
  $("forward").addEventListener("click", () => step(1));
  $("speed").addEventListener("change", () => { state.speed = Number($("speed").value) || 1; });
  $("episode").addEventListener("change", () => { pause(); seek(Number($("episode").value)); });
  $("scrubber").addEventListener("input", () => {
    pause();
    seek(episodeOf(state.target).start_frame + Number($("scrubber").value));
  });
  const go = () => { pause(); seek($("goto").value); };
  $("goto").addEventListener("change", go);
  $("goto").addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  $("agent").addEventListener("change", () => state.view && show(state.view));
  $("markers").addEventListener("click", (e) => {
    const rect = e.currentTarget.getBoundingClientRect();
    pause();
    seek(((e.clientX - rect.left) / rect.width) * state.info.frames);
  });
  document.addEventListener("keydown", (e) => {
    if (!state.info || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(e.target.tagName)) return;
    if (e.key === "ArrowRight") step(1);
    else if (e.key === "ArrowLeft") step(-1);
    else if (e.key === " ") state.playing ? pause() : play();
    else return;
    e.preventDefault();
  });
}

async function main() {
  renderer = new Renderer($("stage"));
  wire();
  const config = await (await fetch("/replay.json", { cache: "no-store" })).json();
  worker = new Worker(new URL("/js_bridge/replay_worker.mjs", location.href), { type: "module" });
  worker.onmessage = (event) => {
    const msg = event.data;
    if (msg.type === "progress") $("progress-text").textContent = msg.message || msg.stage;
    else if (msg.type === "ready") setup(msg.info);
    else if (msg.type === "view") {
      state.busy = false;
      show(msg.view);
      if (state.target !== msg.view.frame) seek(state.target);
    } else if (msg.type === "error") {
      state.busy = false;
      fail(`Cannot replay (${msg.where}): ${msg.message}`);
    }
  };
  worker.onerror = (e) => fail(`The replay worker failed: ${e.message || e}`);
  worker.postMessage({
    type: "init", assetsURL: new URL(config.assets_url, location.href).href, bundleURL: config.bundle_url,
    env: config.env, bots: config.bots, snapshotEvery: config.snapshot_every,
  });
}

main().catch((err) => fail(String((err && err.message) || err)));
