// The participant's input: keys mapped to an action index, or an autopilot that feeds the same path.
//
// A key map comes from the study config (`controls`: {KeyboardEvent.code or key: action index}); without one,
// arrow keys and WASD are mapped to actions named up/down/left/right. The action of the most recently pressed
// key still held wins; with no key held the input is -1, which the Python side reads as the seat's default.

import { prng } from "./conditioner.mjs";

const NAMED = {
  up: ["ArrowUp", "KeyW"], down: ["ArrowDown", "KeyS"], left: ["ArrowLeft", "KeyA"], right: ["ArrowRight", "KeyD"],
  fire: ["Space"], jump: ["Space"],
};

/** A key map from the study's `controls`, or one derived from the env's action names. */
export function keyMap(controls, actionNames) {
  const map = new Map();
  if (controls && typeof controls === "object") {
    for (const [key, action] of Object.entries(controls)) if (Number.isInteger(action)) map.set(key, action);
    return map;
  }
  (actionNames || []).forEach((name, i) => {
    for (const key of NAMED[String(name).toLowerCase()] || []) if (!map.has(key)) map.set(key, i);
  });
  return map;
}

export class Keyboard {
  constructor(target, onChange) {
    this.map = new Map();
    this.held = [];
    this.onChange = onChange;
    this.value = -1;
    target.addEventListener("keydown", (e) => this.key(e, true));
    target.addEventListener("keyup", (e) => this.key(e, false));
    window.addEventListener("blur", () => { this.held = []; this.update(); });
  }

  key(event, down) {
    const code = this.map.has(event.code) ? event.code : this.map.has(event.key) ? event.key : null;
    if (code === null) return;
    event.preventDefault();
    this.held = this.held.filter((k) => k !== code);
    if (down) this.held.push(code);
    this.update();
  }

  update() {
    const last = this.held[this.held.length - 1];
    const value = last === undefined ? -1 : this.map.get(last);
    if (value !== this.value) {
      this.value = value;
      this.onChange(value);
    }
  }
}

/** Random inputs, each held for 1 to 12 frames, from a seeded generator (for tests and pilots). */
export class Autopilot {
  constructor({ seed = 0, frameMs, onChange }) {  // frameMs: the study's frame period, from study.json
    this.random = prng(seed);
    this.frameMs = frameMs;
    this.onChange = onChange;
    this.count = 0;
    this.timer = null;
  }

  start(count) {
    this.count = count;
    const step = () => {
      this.onChange(Math.floor(this.random() * this.count));
      this.timer = setTimeout(step, this.frameMs * (1 + Math.floor(this.random() * 12)));
    };
    if (this.timer === null && count > 0) step();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
