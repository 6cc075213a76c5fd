// Handing the export to the participant: an automatic download, a button to download it again, and (when the
// study enables it) an upload to the server with the bundle's sha256, the seat token and its kind (interim,
// final, recovered) and label.

/** Start a browser download of `bytes` as `filename`. */
export function saveFile(bytes, filename) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/zip" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Show `button` and make it download the bundle again. */
export function offerDownload(button, bytes, filename, label = "Download your data") {
  button.textContent = label;
  button.hidden = false;
  button.disabled = false;
  button.onclick = () => saveFile(bytes, filename);
}

/** POST the bundle to the study server; resolves to the server's JSON answer (throws on refusal). */
export async function uploadBundle(url, bytes, { sha256, seatToken, session, kind = null, label = null }) {
  const query = new URLSearchParams({ sha256 });
  if (session) query.set("session", session);
  if (kind) query.set("kind", kind);
  if (label) query.set("label", label);
  const response = await fetch(`${url}?${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/zip", "X-Seat-Token": seatToken },
    body: bytes,
  });
  if (!response.ok) throw new Error(`upload refused: ${response.status} ${await response.text()}`);
  return response.json();
}
