// A cheap time meter: count, total, max and a fixed-bucket histogram (0.01 ms buckets up to 20 ms, one bucket for
// exactly zero), for the per-tick medians the page reports. Adding a sample is a few operations; reading the
// percentiles walks the buckets, and is done only when a status is built.

const BUCKET_MS = 0.01;
const N = 2002; // [0] zero, [1 + i] for (i * BUCKET_MS, (i + 1) * BUCKET_MS], the last one for >= 20 ms

const roundMax = (v) => Math.round(v * 1e3) / 1e3; // as summary() rounds max_ms

export class Meter {
  constructor() {
    this.buckets = new Uint32Array(N);
    this.reset();
  }

  reset() {
    this.count = 0;
    this.total = 0;
    this.max = 0;
    this.buckets.fill(0);
  }

  add(ms) {
    this.count++;
    if (!(ms > 0)) {
      this.buckets[0]++;
      return;
    }
    this.total += ms;
    if (ms > this.max) this.max = ms;
    this.buckets[Math.min(N - 1, Math.floor(ms / BUCKET_MS) + 1)]++;
  }

  percentile(q) {
    if (!this.count) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < N; i++) {
      seen += this.buckets[i];
      // A bucket's upper bound, but never above the largest sample.
      if (seen >= rank) {
        if (i === 0) return 0;
        return i === N - 1 ? roundMax(this.max) : Math.min(roundMax(this.max), Math.round(i * BUCKET_MS * 1e4) / 1e4);
      }
    }
    return roundMax(this.max);
  }

  /** {count, total_ms, mean_ms, max_ms, p50, p95, p99}, as the Python side's tick parts. */
  summary() {
    const r = (v, d = 1e3) => Math.round(v * d) / d;
    return { count: this.count, total_ms: r(this.total), mean_ms: this.count ? r(this.total / this.count, 1e4) : null,
             max_ms: r(this.max), p50: this.percentile(0.5), p95: this.percentile(0.95), p99: this.percentile(0.99) };
  }
}

/** The clock's resolution here: 5 µs in a cross-origin isolated context, else 100 µs (Chromium's coarsening). */
export const clockResolutionMs = () => (globalThis.crossOriginIsolated ? 0.005 : 0.1);
