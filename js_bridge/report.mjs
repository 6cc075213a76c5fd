// Page reports for the researcher dashboard: POST what getState() returns, as JSON, every intervalMs and on demand
// (now(), at a scene change or when the session ends). The report format is in docs/server.md ("Admin dashboard").
// Reporting never gets in the participant's way: errors are swallowed, only counted.

export class Reporter {
  /**
   * @param {string} url              where to POST (the server's /report)
   * @param {() => object|null} getState  the report to send; null sends nothing this time
   * @param {number} intervalMs       period of the regular reports
   */
  constructor(url, getState, intervalMs = 2000) {
    this.url = url;
    this.getState = getState;
    this.intervalMs = intervalMs;
    this.timer = null;
    this.sent = 0;
    this.errors = 0;
  }

  /** Report now and then every intervalMs, until stop(). */
  start() {
    if (this.timer === null) {
      this.timer = setInterval(() => this.now(), this.intervalMs);
      this.now();
    }
    return this;
  }

  /** Send one report at once (keepalive: it still goes out while the page unloads). */
  now() {
    let body;
    try {
      const state = this.getState();
      if (state == null) return;
      body = JSON.stringify(state);
    } catch (err) {
      this.errors++;
      return;
    }
    this.sent++;
    try {
      fetch(this.url, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json" },
        keepalive: true,
        credentials: "omit",
        cache: "no-store",
      }).then((r) => { if (!r.ok) this.errors++; }, () => { this.errors++; });
    } catch (err) {
      this.errors++;
    }
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
