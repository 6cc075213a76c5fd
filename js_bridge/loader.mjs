// Load the self-hosted Pyodide, our wheel and its dependencies, then prepare the interpreter.
//
// Everything comes from one asset directory made by `pyodide-runtime assets fetch`: the Pyodide core and a
// pyodide-lock.json that lists our wheel and every dependency with its sha256, so one loadPackage call
// installs them all and Pyodide checks each file's hash. PYTHONHASHSEED=0 makes set iteration order the same
// in every participant's tab.

/**
 * @param {object} options
 * @param {string} options.assetsURL  base URL of the asset directory, ending in "/"
 * @param {(stage: string, detail?: object) => void} [options.onProgress]
 * @returns {Promise<{pyodide: any, timings: object, facts: object}>}
 */
export async function loadRuntime({ assetsURL, onProgress = () => {} }) {
  const timings = {};
  const t0 = performance.now();
  onProgress("pyodide", { message: "Loading Python…" });
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
  await pyodide.loadPackage(["pyodide-runtime"], { messageCallback: () => {}, checkIntegrity: true });
  timings.packages_ms = performance.now() - t1;

  const t2 = performance.now();
  onProgress("prepare", { message: "Preparing…" });
  const facts = pyodide
    .runPython("from pyodide_runtime import pyodide_compat; pyodide_compat.prepare()")
    .toJs({ dict_converter: Object.fromEntries });
  timings.prepare_ms = performance.now() - t2;
  timings.total_ms = performance.now() - t0;
  onProgress("ready", { timings });
  return { pyodide, timings, facts };
}
