// Run a Python file inside real Pyodide under Node, with the self-hosted assets and PYTHONHASHSEED=0.
// Usage: node node_runner.mjs ASSETS_DIR SCRIPT.py [PACKAGE ...]
// The packages (default: pyodide-runtime) are loaded from ASSETS_DIR/pyodide-lock.json, or from the lock file named
// by PYODIDE_LOCK_FILE (e.g. a study lock, ASSETS_DIR/studies/<key>/pyodide-lock.json). Package file names in a lock
// resolve against ASSETS_DIR, so "packages/x.whl" means ASSETS_DIR/packages/x.whl.
// Whatever the script assigns to the global `result` is printed as JSON on the last stdout line.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [assetsDir, script, ...packages] = process.argv.slice(2);
if (!assetsDir || !script) {
  console.error("usage: node node_runner.mjs ASSETS_DIR SCRIPT.py [PACKAGE ...]");
  process.exit(2);
}
const root = path.resolve(assetsDir) + path.sep;
if (process.env.PYODIDE_TEST_PARAMS === undefined) process.env.PYODIDE_TEST_PARAMS = "{}";
const { loadPyodide } = await import(pathToFileURL(root + "pyodide.mjs").href);
const t0 = performance.now();
const pyodide = await loadPyodide({
  indexURL: root,
  lockFileURL: process.env.PYODIDE_LOCK_FILE ? path.resolve(process.env.PYODIDE_LOCK_FILE) : root + "pyodide-lock.json",
  env: { PYTHONHASHSEED: "0" },
  stdout: (s) => console.error(s),
  stderr: (s) => console.error(s),
});
const tBoot = performance.now();
await pyodide.loadPackage(packages.length ? packages : ["pyodide-runtime"], { messageCallback: () => {} });
const tPackages = performance.now();
pyodide.globals.set("SCRIPT_DIR", path.dirname(path.resolve(script)));
// Test parameters arrive as JSON in PYODIDE_TEST_PARAMS and are visible to the script as `params`.
pyodide.globals.set("params", pyodide.toPy(JSON.parse(process.env.PYODIDE_TEST_PARAMS)));
try {
  await pyodide.runPythonAsync(readFileSync(script, "utf8"));
} catch (err) {
  // Print the Python traceback only: the default rendering includes minified runtime source.
  console.error(String(err.message || err));
  process.exit(1);
}
const result = pyodide.globals.get("result");
const value = result && result.toJs ? result.toJs({ dict_converter: Object.fromEntries }) : result;
console.log(JSON.stringify({ boot_ms: tBoot - t0, packages_ms: tPackages - tBoot, result: value ?? null }));
