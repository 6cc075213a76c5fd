// The study's scenes around the game: consent, instructions, survey and end, drawn into one container with DOM
// APIs only (config text is never HTML). Each view resolves with what the participant did. In test mode an
// autopilot drives the same controls a participant uses (clicks, choices, typing), so tests exercise the real UI.

import { renderMarkdown } from "./markdown.mjs";

const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Clear `root`, give it a focusable heading (so screen readers and keyboard users land on the new scene). */
export function frame(root, title) {
  root.replaceChildren();
  root.hidden = false;
  const h = el("h2", { tabindex: "-1", text: title || "" });
  h.hidden = !title;
  root.append(h);
  setTimeout(() => (title ? h.focus() : null), 0);
  return root;
}

function button(label, onClick, attrs = {}) {
  const b = el("button", { type: "button", ...attrs, text: label });
  b.addEventListener("click", onClick);
  return b;
}

/** Consent: resolves "agreed" or "declined". */
export function consent(root, scene, auto) {
  frame(root, scene.title || "Consent");
  root.append(el("div", { class: "text" }, renderMarkdown(scene.text)));
  return new Promise((resolve) => {
    const agree = button(scene.agree, () => resolve("agreed"), { "data-action": "agree" });
    const decline = button(scene.decline, () => resolve("declined"), { "data-action": "decline" });
    root.append(el("div", { class: "buttons" }, agree, decline));
    if (auto) sleep(auto.delayMs).then(() => agree.click());
  });
}

/** Instructions: resolves "continued" (the button is enabled after `min_seconds`). */
export function instructions(root, scene, auto) {
  frame(root, scene.title || "Instructions");
  root.append(el("div", { class: "text" }, renderMarkdown(scene.text)));
  return new Promise((resolve) => {
    const next = button(scene.button, () => resolve("continued"), { "data-action": "continue" });
    const wait = Number(scene.min_seconds || 0) * 1000;
    if (wait > 0) {
      next.disabled = true;
      setTimeout(() => (next.disabled = false), wait);
    }
    root.append(el("div", { class: "buttons" }, next));
    if (auto) sleep(Math.max(auto.delayMs, wait + 50)).then(() => next.click());
  });
}

function likert(q, name) {
  const row = el("div", { class: "likert" });
  const [low, high] = q.labels || [];
  if (low) row.append(el("span", { text: low }));
  for (let v = 1; v <= q.scale; v++) {
    const input = el("input", { type: "radio", name, value: String(v), id: `${name}-${v}` });
    row.append(el("label", { for: `${name}-${v}` }, input, document.createTextNode(String(v))));
  }
  if (high) row.append(el("span", { text: high }));
  return row;
}

function choice(q, name) {
  const box = el("div", { class: "choice" });
  q.options.forEach((option, i) => {
    const input = el("input", { type: q.multiple ? "checkbox" : "radio", name, value: String(i), id: `${name}-${i}` });
    box.append(el("label", { for: `${name}-${i}` }, input, document.createTextNode(option)));
  });
  return box;
}

function field(q, name) {
  if (q.kind === "likert") return likert(q, name);
  if (q.kind === "choice") return choice(q, name);
  if (q.kind === "number") {
    const props = { type: "number", name, id: name, inputmode: q.integer ? "numeric" : "decimal" };
    if (q.min !== undefined && q.min !== null) props.min = String(q.min);
    if (q.max !== undefined && q.max !== null) props.max = String(q.max);
    props.step = q.integer ? "1" : "any";
    return el("input", props);
  }
  return el("textarea", { name, id: name, maxlength: String(q.max_length || 1000) });
}

/** The answer a question's controls hold: a number, a string, a list (multiple choice), or null. */
function read(form, q, name) {
  if (q.kind === "likert") {
    const v = form.querySelector(`input[name="${name}"]:checked`);
    return v ? Number(v.value) : null;
  }
  if (q.kind === "choice") {
    const picked = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => q.options[Number(i.value)]);
    if (q.multiple) return picked.length ? picked : null;
    return picked.length ? picked[0] : null;
  }
  const raw = form.querySelector(`[name="${name}"]`).value.trim();
  if (raw === "") return null;
  if (q.kind === "number") return Number(raw);
  return raw;
}

function problem(q, value) {
  if (value === null) return q.required ? "Please answer this question." : null;
  if (q.kind === "number") {
    if (!Number.isFinite(value)) return "Please enter a number.";
    if (q.integer && !Number.isInteger(value)) return "Please enter a whole number.";
    if (q.min !== undefined && q.min !== null && value < q.min) return `Please enter at least ${q.min}.`;
    if (q.max !== undefined && q.max !== null && value > q.max) return `Please enter at most ${q.max}.`;
  }
  return null;
}

/** Fill a question the way a participant would (autopilot). */
function autofill(form, q, name, random) {
  if (q.kind === "likert" || q.kind === "choice") {
    const inputs = [...form.querySelectorAll(`input[name="${name}"]`)];
    const pick = inputs[Math.floor(random() * inputs.length)];
    pick.click();
    if (q.multiple && inputs.length > 1 && random() < 0.5) {
      const other = inputs.find((i) => i !== pick);
      other.click();
    }
    return;
  }
  const input = form.querySelector(`[name="${name}"]`);
  if (q.kind === "number") {
    const lo = q.min ?? 0;
    const hi = q.max ?? lo + 100;
    const v = lo + random() * (hi - lo);
    input.value = String(q.integer ? Math.round(v) : Math.round(v * 100) / 100);
  } else {
    input.value = `answer ${Math.floor(random() * 1000)}`;
  }
}

/** Survey: resolves with [{question_id, kind, answer, answered_ms}] once every required answer is valid. */
export function survey(root, scene, auto) {
  frame(root, scene.title || "A few questions");
  const form = el("form", { novalidate: "" });
  const answeredAt = {};
  scene.questions.forEach((q, i) => {
    const name = `q-${q.id}`;
    const legend = el("legend", { id: `${name}-label` });
    legend.textContent = q.prompt + (q.required ? " (required)" : " (optional)");
    const set = el("fieldset", { "aria-labelledby": `${name}-label`, "data-question": q.id }, legend, field(q, name));
    set.append(el("p", { class: "problem", role: "alert", id: `${name}-problem` }));
    set.addEventListener("change", () => (answeredAt[q.id] = performance.now()));
    set.addEventListener("input", () => (answeredAt[q.id] = performance.now()));
    form.append(set);
    if (i === 0) legend.setAttribute("data-first", "");
  });
  const submit = el("button", { type: "submit", text: scene.button, "data-action": "submit" });
  form.append(el("div", { class: "buttons" }, submit));
  root.append(form);
  return new Promise((resolve) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const answers = [];
      let first = null;
      for (const q of scene.questions) {
        const name = `q-${q.id}`;
        const value = read(form, q, name);
        const message = problem(q, value);
        form.querySelector(`#${name}-problem`).textContent = message || "";
        if (message && !first) first = form.querySelector(`[name="${name}"]`);
        answers.push({ question_id: q.id, kind: q.kind, answer: value, answered_ms: answeredAt[q.id] ?? null });
      }
      if (first) {
        first.focus();
        return;
      }
      resolve(answers);
    });
    if (auto) {
      sleep(auto.delayMs).then(() => {
        for (const q of scene.questions) {
          if (q.required || auto.random() < 0.7) autofill(form, q, `q-${q.id}`, auto.random);
          answeredAt[q.id] = performance.now();
        }
        submit.click();
      });
    }
  });
}

/** A closing message: text, an optional code, and a link back to the platform (never followed automatically
 * unless the study asks for a redirect after some seconds). */
export function closing(root, { title, text, code, url, redirectAfterS }) {
  frame(root, title || "Thank you");
  root.append(el("div", { class: "text" }, renderMarkdown(text)));
  if (code) {
    root.append(el("p", {}, document.createTextNode("Your completion code: "),
      el("span", { class: "code", "data-completion-code": "", text: code })));
  }
  const safe = typeof url === "string" && /^https?:\/\//.test(url) ? url : null;
  if (safe) {
    const link = el("a", { href: safe, rel: "noopener noreferrer", "data-completion-link": "",
      text: "Continue: return to the study platform" });
    root.append(el("p", {}, link));
    if (Number(redirectAfterS) > 0) setTimeout(() => location.assign(safe), Number(redirectAfterS) * 1000);
  }
  return safe;
}

/** A status line inside the scene (waiting, practice, game): one paragraph whose text can change. */
export function message(root, title, text) {
  frame(root, title);
  const body = el("div", { class: "text" }, renderMarkdown(text || ""));
  const line = el("p", { class: "scene-status", role: "status" });
  root.append(body, line);
  return line;
}
