// Load the self-hosted Pyodide, our wheel and its dependencies, then prepare the interpreter.
//
// Everything comes from one asset directory made by `pyodide-runtime assets fetch`: the Pyodide core and a
// pyodide-lock.json that lists our wheel, the study's packages and every dependency with its sha256, so one
// loadPackage call installs them all and Pyodide checks each file's hash. PYTHONHASHSEED=0 makes set iteration
// order the same in every participant's tab.

import { restoreBytecode } from "./bytecode.mjs";

/**
 * @param {object} options
 * @param {string} options.assetsURL  base URL of the asset directory, ending in "/"
 * @param {string[]} [options.packages]  the study's packages (lock names), loaded with the runtime
 * @param {(stage: string, detail?: object) => void} [options.onProgress]
 * @param {boolean} [options.keepBytecode]  write back the bytecode a previous visit stored (bytecode.mjs) and let
 *   the imports write theirs; `timings.bytecode` then says how many files were restored
 * @returns {Promise<{pyodide: any, timings: object, facts: object, packages: object[]}>}
 *   `packages`: every package loaded, as {name, version, sha256} from the lock Pyodide checked them against
 */
export async function loadRuntime({ assetsURL, packages = [], onProgress = () => {}, keepBytecode = false }) {
  const timings = {};
  const t0 = performance.now();
  onProgress("pyodide", { message: "Loading Python…" });
  // The lock (to report what was loaded) is read while Pyodide loads.
  const lockAnswer = fetch(assetsURL + "pyodide-lock.json").then((r) => r.json());
  const { loadPyodide } = await import(assetsURL + "pyodide.mjs");
  const pyodide = await loadPyodide({
    indexURL: assetsURL,
    lockFileURL: assetsURL + "pyodide-lock.json",
    env: { PYTHONHASHSEED: "0" },
    stdout: (line) => console.log("[python]", line),
    stderr: (line) => console.warn("[python]", line),
  });
  timings.pyodide_ms = performance.now() - t0;

  const t1 = performance.now();
  onProgress("packages", { message: "Loading packages…" });
  await pyodide.loadPackage(["pyodide-runtime", ...packages], { messageCallback: () => {}, checkIntegrity: true });
  timings.packages_ms = performance.now() - t1;
  if (keepBytecode) {
    const tb = performance.now();
    timings.bytecode = await restoreBytecode(pyodide, assetsURL);
    timings.bytecode_ms = performance.now() - tb;
  }
  const lock = await lockAnswer;
  const byName = Object.fromEntries(Object.values(lock.packages).map((e) => [e.name, e]));
  const loaded = Object.keys(pyodide.loadedPackages).sort().map((name) => {
    const entry = lock.packages[name] || byName[name] || {};
    return { name, version: entry.version ?? null, sha256: entry.sha256 ?? null };
  });

  const t2 = performance.now();
  onProgress("prepare", { message: "Preparing…" });
  const facts = pyodide
    .runPython("from pyodide_runtime import pyodide_compat; pyodide_compat.prepare()")
    .toJs({ dict_converter: Object.fromEntries });
  timings.prepare_ms = performance.now() - t2;
  timings.total_ms = performance.now() - t0;
  onProgress("ready", { timings });
  return { pyodide, timings, facts, packages: loaded };
}

/**
 * Fetch a study's single env file, check its sha256, and write it into Pyodide's working directory, where the
 * env spec `name.py:function` finds it.
 * @param {any} py  the Pyodide instance
 * @param {{url: string, name: string, sha256?: string}} file
 */
export async function writeEnvFile(py, file) {
  const response = await fetch(file.url);
  if (!response.ok) throw new Error(`cannot fetch the env file ${file.url}: ${response.status}`);
  const data = new Uint8Array(await response.arrayBuffer());
  const digest = await crypto.subtle.digest("SHA-256", data);
  const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  if (file.sha256 && hex !== file.sha256) throw new Error(`the env file ${file.name} does not match its sha256`);
  py.FS.writeFile(file.name, data);
}
