// Seeded network conditions applied to outgoing peer packets: delay, jitter, loss, reordering, duplication.
//
// Browsers give no way to slow a DataChannel down (DevTools network emulation does not touch it), so the
// conditions are injected here, before bytes leave the page. It runs in the worker, whose timers keep their
// pace in background tabs. The same seed gives the same sequence of decisions. Reliable packets (handshake,
// goodbye) are delayed like the others but never lost or duplicated, as a reliable channel would deliver them.
//
// Which conditions exist, their defaults and limits come from Python (/study.json page_config.network_conditions,
// from pyodide_runtime.host.study_config.NETWORK_CONDITIONS); this module keeps no copy of them.

/** A small seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Validated conditions from a plain object (study config or URL parameters); null when nothing is set.
 * @param {object|URLSearchParams|null} source
 * @param {object} spec  /study.json page_config.network_conditions: {key: {default, max, probability, modifier}}
 */
export function parseConditions(source, spec) {
  if (!source) return null;
  const get = (k) => (source instanceof URLSearchParams ? source.get(k) : source[k]);
  const out = Object.fromEntries(Object.entries(spec).map(([key, c]) => [key, c.default]));
  let any = false;
  for (const [key, c] of Object.entries(spec)) {
    const raw = get(key);
    if (raw === null || raw === undefined || raw === "") continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`network condition ${key}=${raw} must be >= 0`);
    if (c.probability && value > c.max) throw new Error(`${key} must be at most ${c.max}`);
    out[key] = value;
    if (!c.modifier) any = any || value > 0;
  }
  return any ? out : null;
}

export class Conditioner {
  /** @param {object|null} conditions from parseConditions; null passes packets straight through */
  constructor(conditions) {
    this.conditions = conditions;
    this.random = prng(conditions ? conditions.seed : 0);
    this.stats = { sent: 0, lost: 0, duplicated: 0, reordered: 0, delayed: 0 };
  }

  /** Hand `data` to `deliver(data)` now, later, twice or never, as the conditions say. */
  send(data, reliable, deliver) {
    const c = this.conditions;
    this.stats.sent++;
    if (!c) return deliver(data);
    const r = this.random;
    if (!reliable && c.loss > 0 && r() < c.loss) {
      this.stats.lost++;
      return;
    }
    const copies = !reliable && c.duplicate > 0 && r() < c.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const payloads = copies === 2 ? [data, data.slice()] : [data]; // each copy may be transferred away
    for (const payload of payloads) {
      let delay = c.latency_ms + (c.jitter_ms > 0 ? (2 * r() - 1) * c.jitter_ms : 0);
      if (!reliable && c.reorder > 0 && r() < c.reorder) {
        delay += c.reorder_ms;
        this.stats.reordered++;
      }
      delay = Math.max(0, delay);
      if (delay < 0.5) deliver(payload);
      else {
        this.stats.delayed++;
        setTimeout(deliver, delay, payload);
      }
    }
  }
}
