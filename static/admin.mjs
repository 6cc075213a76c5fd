// The researcher dashboard: asks /admin/state.json every 2 s and draws it with DOM APIs only (text goes in with
// textContent, never as HTML). Without a login the server answers 401 and the login form is shown instead.

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const shown = {}; // section -> JSON last drawn, so unchanged sections (and the focus inside them) stay as they are

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

const dash = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));
const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Replace the children of ``node`` when ``data`` differs from what was last drawn there. */
function redraw(key, node, data, build) {
  const text = JSON.stringify(data);
  if (shown[key] === text) return false;
  shown[key] = text;
  node.replaceChildren(...build(data));
  return true;
}

// ------------------------------------------------------------------------------------------------------ plot

/** An SVG plot of RTT (solid) and rollbacks (dashed) over time, one line of each per seat. */
function plot(series, label) {
  const W = 320, H = 110, L = 34, R = 34, T = 8, B = 18;
  const all = series.flatMap((s) => s.points);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img", "aria-label": label });
  const title = svg("title");
  title.textContent = label;
  root.append(title);
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  if (all.length === 0) return root;
  const t0 = Math.min(...all.map((p) => p[0]));
  const t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const rttMax = Math.max(10, ...all.map((p) => p[1] ?? 0));
  const rbMax = Math.max(1, ...all.map((p) => p[2] ?? 0));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v, max) => H - B - (v / max) * (H - T - B);
  const line = (points, index, max, cls) => {
    const xy = points.filter((p) => p[index] !== null).map((p) => [x(p[0]), y(p[index], max)]);
    if (xy.length === 1) xy.push([xy[0][0] + 2, xy[0][1]]);
    if (xy.length === 0) return;
    const coords = xy.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: coords, class: cls }));
  };
  for (const s of series) line(s.points, 2, rbMax, "rollbacks");
  for (const s of series) line(s.points, 1, rttMax, "rtt"); // on top: RTT is the line to read first
  const text = (x0, y0, value, anchor) => {
    const t = svg("text", { x: x0, y: y0, "text-anchor": anchor });
    t.textContent = value;
    root.append(t);
  };
  text(L - 3, T + 8, `${Math.round(rttMax)}`, "end");
  text(L - 3, H - B, "0", "end");
  text(W - R + 3, T + 8, `${rbMax}`, "start");
  text(W - R, H - 4, `${Math.round(t1 - t0)} s`, "end");
  return root;
}

function legend(series) {
  const last = (i) => series.map((s) => (s.points.length ? s.points[s.points.length - 1][i] : null));
  const rtt = last(1).map((v) => ms(v)).join(" / ");
  const rb = last(2).map(dash).join(" / ");
  return el("p", { class: "legend" }, el("span", { class: "rtt" }, "— RTT"), ` (ms, left axis) now ${rtt}; `,
    el("span", { class: "rollbacks" }, "- - rollbacks"), ` (right axis) now ${rb}`);
}

// ---------------------------------------------------------------------------------------------- sections

function scenes(state) {
  const items = Object.entries(state.scenes).map(([kind, n]) =>
    el("li", { class: n ? null : "zero", "data-kind": kind }, kind, el("b", {}, String(n))));
  return items;
}

function roomCard(room) {
  const rows = room.seats.map((s) => el("tr", {},
    el("th", { scope: "row" }, `seat ${s.seat}`),
    el("td", {}, s.connected ? (s.scene ? s.scene : "connected") : (s.gone ? "left" : "disconnected")),
    el("td", {}, s.episode === null ? "–" : `ep ${s.episode}`),
    el("td", { class: "frame" }, s.frame === null ? "–" : `frame ${s.frame}`),
    el("td", {}, dash(s.transport)),
    el("td", {}, ms(s.rtt_ms)),
    el("td", {}, s.rollbacks === null ? "–" : `${s.rollbacks} rb`),
    el("td", { class: s.partner_away ? "away" : null }, s.partner_away ? "partner away" : "")));
  const head = el("tr", {}, ...["Seat", "Scene", "Episode", "Frame", "Transport", "RTT", "Rollbacks", "Partner"]
    .map((h) => el("th", { scope: "col" }, h)));
  return el("article", { class: "card", "data-room": room.room, "aria-label": `room ${room.room}` },
    el("h3", {}, `Room ${room.room}`),
    el("p", { class: "meta" }, `${room.status} · ${room.seats.length}/${room.size} seats · ` +
      `${Math.round(room.age_s)} s old${room.private ? " · private link" : ""} · session ${room.session}`),
    el("table", {}, el("thead", { class: "visually-hidden" }, head), el("tbody", {}, ...rows)),
    plot(room.series, `RTT and rollbacks over time in room ${room.room}`),
    legend(room.series));
}

function finishedCard(f) {
  const seats = f.seats.map((s) => el("li", {}, `seat ${s.seat}: `,
    el("span", { class: `outcome-${s.outcome}` }, dash(s.outcome)), ` (${dash(s.end_cause)})`));
  return el("article", { class: "card", "data-session": f.session || "", "aria-label": `session ${dash(f.session)}` },
    el("h3", {}, `Session ${dash(f.session)}`),
    el("p", { class: "meta" }, `room ${dash(f.room)} · ended ${Math.round(f.ended_s_ago)} s ago · outcome `,
      el("span", { class: `outcome-${f.outcome}` }, dash(f.outcome))),
    el("ul", {}, ...seats),
    plot(f.series, `RTT and rollbacks over time in session ${dash(f.session)}`),
    legend(f.series));
}

function fileRow(f) {
  const name = f.path.split("/").slice(1).join("/");
  return el("tr", {},
    el("td", {}, el("a", { href: f.url, download: f.path.split("/").pop() }, name)),
    el("td", {}, dash(f.session)),
    el("td", {}, dash(f.seat)),
    el("td", {}, f.label ? `${dash(f.kind)} (${f.label})` : dash(f.kind)),
    el("td", {}, bytes(f.bytes)),
    el("td", {}, dash(f.time_utc)));
}

function draw(state) {
  $("study").textContent = state.study;
  $("updated").textContent = `Updated ${state.time_utc}`;
  $("totals").textContent = `${state.pages.live} page(s) open · ${state.connections} connection(s) · ` +
    `reports: ${state.reports.accepted} accepted, ${state.reports.rejected} refused, ` +
    `${state.reports.rate_limited} over the rate limit`;
  redraw("scenes", $("scenes"), state.scenes, () => scenes(state));
  const rooms = state.rooms.filter((r) => r.status !== "ended");
  $("rooms-empty").hidden = rooms.length > 0;
  redraw("rooms", $("rooms"), rooms, (list) => list.map(roomCard));
  $("finished-empty").hidden = state.finished.length > 0;
  const finished = state.finished.map((f) => ({ ...f, ended_s_ago: Math.round(f.ended_s_ago / 10) * 10 }));
  redraw("finished", $("finished"), finished, (list) => list.map(finishedCard));
  const files = state.files;
  $("files-empty").hidden = files.count > 0;
  $("files").hidden = files.count === 0;
  $("data-zip").hidden = !files.data_zip;
  $("files-total").textContent = files.count
    ? `${files.count} file(s), ${bytes(files.bytes)}${files.truncated ? " (the newest are listed)" : ""}` : "";
  redraw("files", $("files").tBodies[0], files.items.map(({ mtime, ...f }) => f), (items) => items.map(fileRow));
}

// ------------------------------------------------------------------------------------------------ refresh

async function refresh() {
  let response;
  try {
    response = await fetch("/admin/state.json", { cache: "no-store", credentials: "same-origin" });
  } catch (err) {
    problem(`The server cannot be reached (${err.message}); retrying.`);
    return true;
  }
  if (response.status === 401 || response.status === 403) {
    $("dashboard").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    problem(null);
    if (!$("login").dataset.focused) {
      $("login").dataset.focused = "1";
      $("token").focus();
    }
    return false;
  }
  if (!response.ok) {
    problem(`The server answered ${response.status}; retrying.`);
    return true;
  }
  const state = await response.json();
  problem(null);
  $("login").hidden = true;
  $("logout").hidden = false;
  $("dashboard").hidden = false;
  draw(state);
  return true;
}

function problem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text || "";
}

async function loop() {
  const again = await refresh().catch((err) => {
    problem(`The dashboard failed to draw: ${err.message}`);
    return true;
  });
  if (again) setTimeout(loop, REFRESH_MS);
}

if (new URLSearchParams(location.search).get("login") === "failed") {
  $("login-failed").hidden = false;
  history.replaceState(null, "", "/admin");
}
loop();
