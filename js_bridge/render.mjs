// Drawing: the env's draw list or RGBA frame onto the canvas, and the heads-up display.
// Everything from the session is drawn as canvas shapes or set as textContent, never parsed as HTML.

export class Renderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.pending = null;
    this.drawn = 0;
    this.scratch = null;
    this.onPaint = null; // called with each paint's duration (ms)
    this.font = null;    // the font last set on the context
  }

  /** Keep the latest frame; it is painted on the next animation frame (nothing is painted while hidden). */
  submit(frame) {
    const first = this.pending === null;
    this.pending = frame;
    if (first) requestAnimationFrame(() => this.paint());
  }

  paint() {
    const frame = this.pending;
    this.pending = null;
    if (!frame) return;
    const started = performance.now();
    if (frame.kind === "draw") this.drawList(JSON.parse(frame.render));
    else if (frame.kind === "rgba") this.drawRgba(frame.render, frame.w, frame.h);
    this.drawn++;
    if (this.onPaint) this.onPaint(performance.now() - started); // the page's main-thread time per frame
  }

  drawList(shapes) {
    const ctx = this.ctx;
    for (const s of shapes) {
      switch (s.type) {
        case "canvas":
          if (this.canvas.width !== s.w || this.canvas.height !== s.h) {
            this.canvas.width = s.w;
            this.canvas.height = s.h;
            this.font = null; // resizing resets the context's state
          }
          ctx.fillStyle = s.fill || "#ffffff";
          ctx.fillRect(0, 0, s.w, s.h);
          break;
        case "rect":
          ctx.fillStyle = s.fill;
          ctx.fillRect(s.x, s.y, s.w, s.h);
          if (s.stroke) this.stroke(s, () => ctx.strokeRect(s.x, s.y, s.w, s.h));
          break;
        case "circle":
          ctx.beginPath();
          ctx.arc(s.x, s.y, s.r, 0, 2 * Math.PI);
          ctx.fillStyle = s.fill;
          ctx.fill();
          if (s.stroke) this.stroke(s, () => ctx.stroke());
          break;
        case "line":
          ctx.beginPath();
          ctx.moveTo(s.x1, s.y1);
          ctx.lineTo(s.x2, s.y2);
          this.stroke(s, () => ctx.stroke());
          break;
        case "text":
          this.setFont(`${s.bold ? "bold " : ""}${Number(s.size) || 14}px sans-serif`);
          ctx.textAlign = ["left", "center", "right"].includes(s.align) ? s.align : "left";
          ctx.textBaseline = "alphabetic";
          ctx.fillStyle = s.fill || "#000000";
          ctx.fillText(String(s.text), s.x, s.y);
          break;
        default:
          break; // unknown shapes are skipped
      }
    }
  }

  /** Set the context's font only when it changes: parsing a font string is the costly part of drawing text. */
  setFont(font) {
    if (this.font !== font) {
      this.ctx.font = font;
      this.font = font;
    }
  }

  stroke(s, draw) {
    this.ctx.strokeStyle = s.stroke;
    this.ctx.lineWidth = Number(s.line_width) || 1;
    draw();
  }

  /** An RGBA frame, scaled to the canvas with nearest-neighbour sampling. */
  drawRgba(bytes, w, h) {
    if (!this.scratch || this.scratch.width !== w || this.scratch.height !== h) {
      this.scratch = new OffscreenCanvas(w, h);
    }
    const pixels = new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, w * h * 4);
    this.scratch.getContext("2d").putImageData(new ImageData(pixels, w, h), 0, 0);
    const scale = Math.max(1, Math.floor(Math.min(640 / w, 480 / h)));
    if (this.canvas.width !== w * scale || this.canvas.height !== h * scale) {
      this.canvas.width = w * scale;
      this.canvas.height = h * scale;
      this.font = null;
    }
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.drawImage(this.scratch, 0, 0, w * scale, h * scale);
  }
}

/** The HUD: episode, score, connection, and the partner/connection notices. */
export class Hud {
  constructor(root) {
    this.fields = {};
    for (const el of root.querySelectorAll("[data-hud]")) this.fields[el.dataset.hud] = el;
  }

  set(name, text) {
    const el = this.fields[name];
    if (el && el.textContent !== text) el.textContent = text;
  }

  show(name, visible) {
    const el = this.fields[name];
    if (el) el.hidden = !visible;
  }

  update(hud, connection) {
    if (hud && hud.episodes) {
      this.set("episode", `Episode ${hud.episode} of ${hud.episodes}`);
      this.set("score", `Score ${Number(hud.score || 0)}`);
    }
    if (connection) {
      const known = connection.rtt_ms !== null && connection.rtt_ms !== undefined;
      const rtt = known ? ` · ${Math.round(connection.rtt_ms)} ms` : "";
      this.set("connection", `${connection.path}${rtt}`);
    }
    this.show("waiting", !!(hud && hud.waiting));
    this.show("partner-away", !!(hud && hud.partner_away));
    const over = hud && hud.phase === "ended";
    this.show("interrupted", !over && (!!(hud && hud.interrupted) || !!(connection && connection.peerLeft)));
  }
}
