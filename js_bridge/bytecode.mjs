// Python bytecode kept between visits. Pyodide compiles every imported .py file from source on each page load (it
// writes no __pycache__), which is most of the time it takes to import numpy, gymnasium, the env and the bridge.
// The first visit lets the imports write their .pyc files and keeps those of the installed packages in the
// browser's Cache Storage; a later visit writes them back before anything is imported.
//
// The entry's key is the versioned assets URL, which changes whenever any wheel or the lock changes, so the
// bytecode always belongs to exactly the sources it was compiled from. The .pyc files are stored as unchecked
// hash-based pycs (PEP 552): the freshly unpacked sources have new mtimes, and their content is fixed by the key.
// Only files under site-packages are kept (a study's single env file is compiled each time). Any failure leaves
// the page to compile from source, as without the cache.

const CACHE = "pyodide_runtime-bytecode";
const entryURL = (assetsURL) => assetsURL + "bytecode.zip";

const PY = `
import importlib.util, io, os, site, sys, zipfile

def _site():
    return [p.rstrip("/") + "/" for p in site.getsitepackages() if os.path.isdir(p)]

def _bytecode_restore(data):
    """Write the stored .pyc files into the __pycache__ folders of site-packages; return how many."""
    roots = _site()
    count = 0
    data = data.to_bytes() if hasattr(data, "to_bytes") else bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            parts = name.split("/")
            if not roots or ".." in parts or name.startswith("/") or len(parts) < 2 or parts[-2] != "__pycache__":
                continue
            blob = z.read(name)
            if blob[:4] != importlib.util.MAGIC_NUMBER:
                continue
            target = roots[0] + name
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(blob)
            count += 1
    return count

def _bytecode_collect():
    """The .pyc files the imports wrote for modules of site-packages, as unchecked hash-based pycs in a zip."""
    roots = _site()
    buf = io.BytesIO()
    count = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for module in list(sys.modules.values()):
            source = getattr(module, "__file__", None)
            if not source or not source.endswith(".py"):
                continue
            root = next((r for r in roots if source.startswith(r)), None)
            cached = importlib.util.cache_from_source(source) if root else None
            if not cached or not os.path.isfile(cached):
                continue
            with open(cached, "rb") as fh:
                blob = bytearray(fh.read())
            if blob[:4] != importlib.util.MAGIC_NUMBER or len(blob) < 16:
                continue
            blob[4:16] = (1).to_bytes(4, "little") + bytes(8)  # hash-based, source not checked
            z.writestr(cached[len(root):], bytes(blob))
            count += 1
    return buf.getvalue() if count else None
`;

/**
 * Before the first import: write back the bytecode a previous visit stored, and let the imports write .pyc files.
 * @returns {Promise<{restored: number}>}
 */
export async function restoreBytecode(py, assetsURL) {
  let restored = 0;
  try {
    py.runPython(PY);
    if (typeof caches !== "undefined") {
      const cache = await caches.open(CACHE);
      const response = await cache.match(entryURL(assetsURL));
      if (response) {
        const restore = py.globals.get("_bytecode_restore");
        restored = restore(new Uint8Array(await response.arrayBuffer()));
        restore.destroy();
      }
    }
  } catch (err) {
    console.warn("[pyodide_runtime] stored bytecode not used:", String((err && err.message) || err));
  }
  py.runPython("import sys; sys.dont_write_bytecode = False");
  return { restored };
}

/**
 * After the imports (once, when nothing was restored): keep the .pyc files they wrote for the next visit, and drop
 * the entries of older asset versions.
 * @returns {Promise<number>} how many files were stored
 */
export async function storeBytecode(py, assetsURL) {
  if (typeof caches === "undefined") return 0;
  try {
    const collect = py.globals.get("_bytecode_collect");
    const res = collect();
    collect.destroy();
    if (!res) return 0;
    const data = res.toJs();
    res.destroy();
    const cache = await caches.open(CACHE);
    for (const request of await cache.keys()) {
      if (request.url !== entryURL(assetsURL)) await cache.delete(request);
    }
    await cache.put(entryURL(assetsURL), new Response(data, { headers: { "Content-Type": "application/zip" } }));
    return countOf(data);
  } catch (err) {
    console.warn("[pyodide_runtime] bytecode not stored:", String((err && err.message) || err));
    return 0;
  }
}

/** The number of files in a zip (its end-of-central-directory record). */
function countOf(zip) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  return zip.byteLength >= 22 ? view.getUint16(zip.byteLength - 12, true) : 0;
}
