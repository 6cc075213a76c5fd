// The replay page's worker: loads the runtime and the study's env, opens the bundle's replay in Python
// (pyodide_runtime.host.replay), and answers one "seek" with one "view". All re-simulation happens in Python.
//
// Messages in:  init {assetsURL, bundleURL, env: {spec, file, packages}, bots, snapshotEvery}, seek {frame}
// Messages out: progress, ready {info}, view {view}, error

import { loadRuntime, writeEnvFile } from "./loader.mjs";

let py = null;
let replay = null;
const TO_JS = { dict_converter: Object.fromEntries, create_pyproxies: false };
const post = (msg, transfer = []) => self.postMessage(msg, transfer);

async function init(msg) {
  const env = msg.env || {};
  const { pyodide } = await loadRuntime({
    assetsURL: msg.assetsURL,
    packages: env.packages || [],
    onProgress: (stage, detail) => post({ type: "progress", stage, message: detail && detail.message }),
  });
  py = pyodide;
  if (env.file) await writeEnvFile(py, env.file);
  post({ type: "progress", stage: "bundle", message: "Re-simulating the session…" });
  const response = await fetch(msg.bundleURL);
  if (!response.ok) throw new Error(`cannot fetch the bundle: ${response.status}`);
  const data = new Uint8Array(await response.arrayBuffer());
  const page = py.pyimport("pyodide_runtime.host.replay.page");
  const options = JSON.stringify({ spec: env.spec, bots: msg.bots || {}, snapshot_every: msg.snapshotEvery });
  replay = page.open_replay(data, options);
  post({ type: "ready", info: JSON.parse(page.replay_info(replay)) });
}


function seek(msg) {
  const started = performance.now();
  const res = replay.view(msg.frame | 0);
  const view = res.toJs(TO_JS);
  res.destroy();
  view.cost_ms = performance.now() - started;
  post({ type: "view", view }, view.render_kind === "rgba" ? [view.render.buffer] : []);
}

const handlers = { init, seek };

self.onmessage = async (event) => {
  const msg = event.data;
  const handler = handlers[msg && msg.type];
  if (!handler) return;
  try {
    await handler(msg);
  } catch (err) {
    post({ type: "error", where: msg.type, message: String((err && err.message) || err) });
  }
};
