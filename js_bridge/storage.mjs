// Checkpoints in IndexedDB: appended at each episode end and whenever the page is hidden, so that a crash or a
// reload loses at most the frames since the last one. A finished session deletes its record.

const DB = "pyodide_runtime";
const STORE = "checkpoints";

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Append one checkpoint's bytes to the record `key` (created with `info` the first time). */
export async function appendCheckpoint(key, info, bytes) {
  const db = await open();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, "readwrite");
      const store = tx.objectStore(STORE);
      const get = store.get(key);
      get.onsuccess = () => {
        const record = get.result || { key, info, chunks: [], created: Date.now() };
        record.chunks.push(bytes);
        record.updated = Date.now();
        store.put(record);
      };
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Every stored record: [{key, info, chunks, created, updated}]. */
export async function listCheckpoints() {
  return (await run("readonly", (store) => store.getAll())) || [];
}

export async function deleteCheckpoints(key) {
  await run("readwrite", (store) => store.delete(key));
}
