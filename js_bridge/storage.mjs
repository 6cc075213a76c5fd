// Checkpoints in IndexedDB: appended at each episode end and whenever the page is hidden, so that a crash or a
// reload loses at most the frames since the last one. A finished session deletes its records.
//
// Each checkpoint is its own record, keyed [session key, sequence number]: appending writes only the new bytes,
// so its cost stays the same however long the session runs. Recovery reads a session's records back in order.

const DB = "pyodide_runtime";
const LEGACY = "checkpoints"; // version 1: one record per session holding every chunk (still read and deleted)
const CHUNKS = "checkpoint_chunks";
// Sequence numbers grow across page loads too, so a later page's checkpoints sort after an earlier one's.
let seq = Date.now() * 1000;

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(LEGACY)) db.createObjectStore(LEGACY, { keyPath: "key" });
      if (!db.objectStoreNames.contains(CHUNKS)) db.createObjectStore(CHUNKS, { keyPath: ["key", "seq"] });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(stores, mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(stores, mode);
      const result = work(tx);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const range = (key) => IDBKeyRange.bound([key, -Infinity], [key, Infinity]);

/** Append one checkpoint's bytes to the session `key` (`info` describes the session). */
export async function appendCheckpoint(key, info, bytes) {
  const record = { key, seq: ++seq, info, bytes, at: Date.now() };
  await run([CHUNKS], "readwrite", (tx) => { tx.objectStore(CHUNKS).put(record); });
}

/** Every stored session: [{key, info, chunks, created, updated}], chunks in the order they were appended. */
export async function listCheckpoints() {
  const requests = await run([LEGACY, CHUNKS], "readonly", (tx) => ({
    legacy: tx.objectStore(LEGACY).getAll(),
    chunks: tx.objectStore(CHUNKS).getAll(), // sorted by [key, seq]
  }));
  const sessions = new Map();
  for (const r of requests.legacy.result || []) sessions.set(r.key, { ...r, chunks: [...r.chunks] });
  for (const c of requests.chunks.result || []) {
    let s = sessions.get(c.key);
    if (!s) sessions.set(c.key, (s = { key: c.key, info: c.info, chunks: [], created: c.at, updated: c.at }));
    s.chunks.push(c.bytes);
    s.updated = Math.max(s.updated || 0, c.at);
  }
  return [...sessions.values()];
}

export async function deleteCheckpoints(key) {
  await run([LEGACY, CHUNKS], "readwrite", (tx) => {
    tx.objectStore(LEGACY).delete(key);
    tx.objectStore(CHUNKS).delete(range(key));
  });
}
