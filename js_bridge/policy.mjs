// ONNX policies with onnxruntime-web: load the self-hosted wasm backend, fetch a model checked by its sha256, and
// run it on tensors in the wire format shared with Python. Used by the page's worker and, with the same code, by
// the Node runner (policy_node.mjs).
//
// Wire format: a list of {name, dtype, dims, data}, dtype one of float32, float64, int32, int64, uint8, bool, and
// data the raw little-endian C-order bytes as a Uint8Array (int64 travels as BigInt64Array inside onnxruntime,
// bool as one byte per element, 0 or 1).
//
// onnxruntime-web comes from the asset directory (`assets fetch` puts it in ort/): ORT_ENTRY imports the
// Emscripten loader and the .wasm from the same folder. It runs on one thread, so the page needs no cross-origin
// isolation.

/** The module of onnxruntime-web's wasm-only build, in the assets' ort/ folder. */
export const ORT_ENTRY = "ort.wasm.min.mjs";

/** Wire dtypes and the typed arrays onnxruntime-web takes and gives for them. */
export const DTYPES = Object.freeze({
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
});

/**
 * onnxruntime-web from `assetsURL + "ort/"` (an absolute URL, or one relative to the worker's location), set up
 * for the wasm backend on one thread. Resolves to the module (`InferenceSession`, `Tensor`, `env`).
 */
export async function loadOrt(assetsURL) {
  return loadOrtFrom(new URL("ort/", absoluteURL(assetsURL, "assetsURL")).href);
}

/** onnxruntime-web from the folder `ortURL` that holds ORT_ENTRY and its wasm files (what loadOrt does). */
export async function loadOrtFrom(ortURL) {
  const base = absoluteURL(ortURL, "ortURL");
  base.pathname = base.pathname.replace(/\/?$/, "/");
  let ort;
  try {
    ort = await import(new URL(ORT_ENTRY, base).href);
  } catch (err) {
    throw new Error(
      `cannot load onnxruntime-web from ${base.href}${ORT_ENTRY}: ${messageOf(err)}. ` +
        "Run `pyodide-runtime assets fetch` (without --no-ort) and restart the server.",
    );
  }
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmPaths = base.href;
  return ort;
}

/**
 * The bytes of the model at `url`, checked against its hex `sha256`. Throws an Error naming the model when the
 * download fails or the digest differs.
 */
export async function fetchModel(url, sha256) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`model ${url}: download failed: ${messageOf(err)}`);
  }
  if (!response.ok) throw new Error(`model ${url}: download failed: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  await checkSha256(bytes, sha256, `model ${url}`);
  return bytes;
}

/** Throw unless `bytes` have the hex `sha256`; `label` names them in the message. */
export async function checkSha256(bytes, sha256, label) {
  if (!globalThis.crypto?.subtle) {
    throw new Error(`${label}: cannot check its sha256: this page is not a secure context (serve it over https)`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const actual = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const expected = String(sha256).toLowerCase();
  if (actual !== expected) {
    throw new Error(
      `${label} has sha256 ${actual}, but ${expected} was expected: the file changed since the study was ` +
        "checked; restart the server so it serves the current model",
    );
  }
}

/** One onnxruntime-web inference session (wasm backend) that runs on wire-format tensors. */
export class PolicyModel {
  /** Use PolicyModel.create. */
  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
  }

  /** A session for the model `bytes` (Uint8Array) with the module from loadOrt. */
  static async create(ort, bytes) {
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    } catch (err) {
      throw new Error(`the ONNX model cannot be loaded: ${messageOf(err)}`);
    }
    return new PolicyModel(ort, session);
  }

  /** The model's input names, in the model's order. */
  get inputNames() {
    return [...this.session.inputNames];
  }

  /** The model's output names, in the model's order. */
  get outputNames() {
    return [...this.session.outputNames];
  }

  /** Run on `feeds` (wire tensors, one per model input); resolves to every output as a wire tensor, in order. */
  async run(feeds) {
    const inputs = {};
    for (const feed of feeds) {
      if (!this.session.inputNames.includes(feed.name)) {
        const known = this.inputNames.join(", ");
        throw new Error(`the model has no input ${JSON.stringify(feed.name)} (its inputs: ${known})`);
      }
      inputs[feed.name] = toOrtTensor(this.ort, feed);
    }
    const missing = this.session.inputNames.filter((name) => !(name in inputs));
    if (missing.length) throw new Error(`no feed for the model input(s) ${missing.join(", ")}`);
    const results = await this.session.run(inputs);
    return this.session.outputNames.map((name) => fromOrtTensor(name, results[name]));
  }

  /** Free the session's memory in the wasm heap. */
  async release() {
    await this.session.release();
  }
}

/** An onnxruntime-web Tensor from a wire tensor; the bytes are copied (so any byte offset works). */
export function toOrtTensor(ort, { name, dtype, dims, data }) {
  const Type = DTYPES[dtype];
  if (!Type) throw new Error(`tensor ${name}: dtype ${dtype} is not one of ${Object.keys(DTYPES).join(", ")}`);
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`tensor ${name}: dims must be a list of non-negative integers, got ${JSON.stringify(dims)}`);
  }
  const bytes = asBytes(data, name);
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== count * Type.BYTES_PER_ELEMENT) {
    throw new Error(
      `tensor ${name}: ${bytes.byteLength} bytes of data, but ${dtype} [${dims.join(", ")}] needs ` +
        `${count * Type.BYTES_PER_ELEMENT}`,
    );
  }
  const copy = new Uint8Array(bytes); // a fresh, aligned buffer
  return new ort.Tensor(dtype, new Type(copy.buffer, 0, count), dims);
}

/** A wire tensor from an onnxruntime-web Tensor (its bytes copied out of the runtime). */
export function fromOrtTensor(name, tensor) {
  if (!DTYPES[tensor.type]) {
    const known = Object.keys(DTYPES).join(", ");
    throw new Error(`output ${name} has dtype ${tensor.type}, which policies cannot use (only ${known})`);
  }
  const values = tensor.data;
  const data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice();
  return { name, dtype: tensor.type, dims: Array.from(tensor.dims, Number), data };
}

function asBytes(data, name) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new Error(`tensor ${name}: data must be a Uint8Array of raw bytes`);
}

function absoluteURL(url, what) {
  try {
    return new URL(url, globalThis.location?.href);
  } catch {
    throw new Error(`${what} ${url} is not an absolute URL`);
  }
}

function messageOf(err) {
  return String((err && err.message) || err);
}
