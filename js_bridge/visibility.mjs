// Page lifecycle -> "away": hidden, frozen or being unloaded counts as away; visible again counts as back.
// The worker passes the flag to the session, which turns it into frame-stamped away inputs.

/** Calls onChange(away, reason) whenever the page's away state changes. Returns a function that reads it. */
export function watchVisibility(onChange) {
  let away = document.visibilityState === "hidden";
  const set = (value, reason) => {
    if (value === away) return;
    away = value;
    onChange(away, reason);
  };
  document.addEventListener("visibilitychange", () => set(document.visibilityState === "hidden", "visibility"));
  document.addEventListener("freeze", () => set(true, "freeze"));
  document.addEventListener("resume", () => set(document.visibilityState === "hidden", "resume"));
  window.addEventListener("pagehide", () => set(true, "pagehide"));
  window.addEventListener("pageshow", () => set(document.visibilityState === "hidden", "pageshow"));
  if (away) onChange(true, "initial");
  return () => away;
}
