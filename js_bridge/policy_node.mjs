// Run an ONNX model under Node with onnxruntime-web's wasm backend, through the page's own code (policy.mjs), so
// results can be compared with CPython onnxruntime.
//
// Usage: node policy_node.mjs --ort DIR --model PATH [--sha256 HEX]
//   DIR   the assets' ort/ folder (or the asset directory holding it), as `pyodide-runtime assets fetch` makes it
//
// Protocol, one JSON object per line:
//   out  {"ready": true, "inputs": [names], "outputs": [names]}          first, once the model is loaded
//   in   {"feeds": [{"name", "dtype", "dims", "data_b64"}]}               one inference per line
//   out  {"outputs": [{"name", "dtype", "dims", "data_b64"}], "ms": t}     t: inference time in milliseconds
//   out  {"error": "message"}                                             for a line that failed; the next is read
// A failure before "ready" is reported as an error line, and the exit status is then 1.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

import { ORT_ENTRY, PolicyModel, checkSha256, loadOrtFrom } from "./policy.mjs";

const write = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const messageOf = (err) => String((err && err.message) || err);
// stdout carries the protocol only: anything the runtime prints goes to stderr.
console.log = console.info = (...args) => console.error(...args);
process.on("uncaughtException", (err) => {
  write({ error: messageOf(err) });
  process.exit(1);
});
process.on("unhandledRejection", (err) => {
  write({ error: messageOf(err) });
  process.exit(1);
});

function parseArgs(argv) {
  const usage = "usage: node policy_node.mjs --ort DIR --model PATH [--sha256 HEX]";
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = { "--ort": "ort", "--model": "model", "--sha256": "sha256" }[argv[i]];
    if (!key || argv[i + 1] === undefined) throw new Error(`unexpected argument ${argv[i]}; ${usage}`);
    out[key] = argv[i + 1];
  }
  if (!out.ort || !out.model) throw new Error(usage);
  return out;
}

/** The folder holding ORT_ENTRY: DIR itself, or DIR/ort. */
function ortFolder(dir) {
  for (const candidate of [path.resolve(dir), path.resolve(dir, "ort")]) {
    if (existsSync(path.join(candidate, ORT_ENTRY))) return candidate;
  }
  throw new Error(`no onnxruntime-web in ${dir} (${ORT_ENTRY} is missing); run \`pyodide-runtime assets fetch\``);
}

async function start() {
  const args = parseArgs(process.argv.slice(2));
  const ort = await loadOrtFrom(pathToFileURL(ortFolder(args.ort) + path.sep).href);
  let bytes;
  try {
    bytes = new Uint8Array(readFileSync(args.model));
  } catch (err) {
    throw new Error(`model ${args.model} cannot be read: ${messageOf(err)}`);
  }
  if (args.sha256) await checkSha256(bytes, args.sha256, `model ${args.model}`);
  return PolicyModel.create(ort, bytes);
}

async function answer(model, line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    throw new Error(`the line is not JSON: ${messageOf(err)}`);
  }
  if (!request || !Array.isArray(request.feeds)) throw new Error('each line must be {"feeds": [...]}');
  const feeds = request.feeds.map((f) => {
    if (typeof f?.data_b64 !== "string") throw new Error(`feed ${f?.name}: data_b64 (base64 string) is missing`);
    return { name: f.name, dtype: f.dtype, dims: f.dims, data: new Uint8Array(Buffer.from(f.data_b64, "base64")) };
  });
  const t0 = performance.now();
  const outputs = await model.run(feeds);
  const ms = performance.now() - t0;
  return {
    outputs: outputs.map(({ name, dtype, dims, data }) => ({
      name, dtype, dims, data_b64: Buffer.from(data).toString("base64"),
    })),
    ms,
  };
}

let model;
try {
  model = await start();
} catch (err) {
  write({ error: messageOf(err) });
  process.exit(1);
}
write({ ready: true, inputs: model.inputNames, outputs: model.outputNames });
for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  try {
    write(await answer(model, line));
  } catch (err) {
    write({ error: messageOf(err) });
  }
}
process.exit(0);
