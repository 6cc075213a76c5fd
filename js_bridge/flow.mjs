// The study flow: runs the configured scenes in order and keeps the participant's record (scene timings,
// answers, the randomised order, waiting-room events). The record goes into the participant tables of the
// export; it never touches the canonical game tables.

import * as views from "./scenes.mjs";

/** Shuffle, per participant, the positions of scenes that share a `shuffle` label; returns the assignment. */
export function assignOrder(scenes, random) {
  const out = scenes.slice();
  const assignment = [];
  const labels = [...new Set(scenes.map((s) => s.shuffle).filter(Boolean))];
  for (const label of labels) {
    const positions = [];
    scenes.forEach((s, i) => s.shuffle === label && positions.push(i));
    const members = positions.map((i) => scenes[i]);
    for (let i = members.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [members[i], members[j]] = [members[j], members[i]];
    }
    positions.forEach((p, k) => (out[p] = members[k]));
    assignment.push({ label, order: members.map((s) => s.id) });
  }
  return { scenes: out, assignment };
}

/** The scenes in a saved order (a reloaded page keeps the participant's assignment). */
function restoreOrder(scenes, saved) {
  const byId = new Map(scenes.map((s) => [s.id, s]));
  const ordered = saved.order.map((id) => byId.get(id));
  if (ordered.some((s) => !s) || ordered.length !== scenes.length) throw new Error("the study's scenes changed");
  return { scenes: ordered, assignment: saved.record.assignment };
}

/** A uniform random number in [0, 1) from the browser's cryptographic generator. */
export const cryptoRandom = () => crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;

export class StudyFlow {
  /**
   * @param {object} o
   * @param {object[]} o.scenes       config.scenes from /study.json
   * @param {HTMLElement} o.root      the scene container
   * @param {object|null} o.auto      autopilot {random, delayMs} (test mode), else null
   * @param {object} o.handlers       kind -> async (scene, flow) => {outcome, stop?, closing?} for practice/waiting/game
   * @param {Function} o.onScene      called with the scene (or null at the end) at every change
   * @param {Function} o.random       random number generator for the shuffle
   * @param {string|null} o.study     the study id, and o.participant the participant id (for the file name)
   */
  constructor({ scenes, root, auto, handlers, onScene, random = cryptoRandom, study = null, participant = null,
                saved = null }) {
    const { scenes: ordered, assignment } = saved ? restoreOrder(scenes, saved) : assignOrder(scenes, random);
    this.scenes = ordered;
    // Times in the record count from the first page's load, also after a reload (performance.now() restarts).
    this.offset = saved ? Date.now() - performance.now() - Date.parse(saved.record.page_started_utc) : 0;
    this.start = saved ? saved.index : 0;
    this.root = root;
    this.auto = auto;
    this.handlers = handlers;
    this.onScene = onScene || (() => {});
    this.current = null;
    this.record = {
      page_started_utc: new Date(Date.now() - performance.now()).toISOString(),
      scenes: [],
      answers: [],
      assignment,
      waiting: [],
      consent: null,
      completion_code: null,
      // What the survey asked (validate checks every required question of a completed survey was answered).
      questions: ordered.filter((s) => s.kind === "survey").flatMap((s) => s.questions.map((q) => (
        { scene_id: s.id, question_id: q.id, kind: q.kind, required: q.required !== false }))),
      study,
      participant,
      reloads: [],
    };
    if (saved) {
      this.record = saved.record;
      this.record.reloads.push({ at_ms: this.now(), scene_id: this.scenes[this.start].id });
    }
  }

  /** Milliseconds since the first page of this participant loaded. */
  now() {
    return performance.now() + this.offset;
  }

  /** What a reloaded page needs to go on: the order of the scenes, the record and where it was. */
  saved() {
    const index = this.record.scenes.length ? this.record.scenes[this.record.scenes.length - 1].index : 0;
    return { order: this.scenes.map((s) => s.id), record: this.record, index };
  }

  /** The end scene's settings, or the defaults when the study has none. */
  endScene() {
    return this.scenes.find((s) => s.kind === "end") || { kind: "end", id: "end", text: "", redirect_url: null };
  }

  async run() {
    for (let index = this.start; index < this.scenes.length; index++) {
      const scene = this.scenes[index];
      let entry = this.record.scenes.find((e) => e.index === index && e.left_ms === null);
      if (!entry) {  // a reloaded page goes on with the scene it was in
        entry = { index, id: scene.id, kind: scene.kind, entered_ms: this.now(), left_ms: null, outcome: null };
        this.record.scenes.push(entry);
      }
      this.current = scene;
      await this.onScene(scene);
      const result = await this.play(scene);
      entry.left_ms = this.now();
      entry.outcome = result.outcome;
      if (result.stop) {
        this.current = null;
        await this.onScene(null, result);
        return result;
      }
    }
    this.current = null;
    const end = this.endScene();
    const result = { outcome: "finished", closing: { title: "Thank you", text: end.text, url: end.redirect_url } };
    await this.onScene(null, result);
    return result;
  }

  async play(scene) {
    const root = this.root;
    switch (scene.kind) {
      case "consent": {
        const outcome = await views.consent(root, scene, this.auto);
        this.record.consent = outcome;
        if (outcome === "declined") {
          const end = this.endScene();
          return { outcome, stop: true, closing: {
            title: "Thank you", text: "You chose not to take part. You can close this page.",
            url: end.redirect_url, code: null } };
        }
        return { outcome };
      }
      case "instructions":
        return { outcome: await views.instructions(root, scene, this.auto) };
      case "survey": {
        const answers = await views.survey(root, scene, this.auto);
        for (const a of answers) {
          const at = a.answered_ms === null ? null : a.answered_ms + this.offset;
          this.record.answers.push({ scene_id: scene.id, ...a, answered_ms: at });
        }
        return { outcome: "completed" };
      }
      case "end":
        this.record.completion_code = scene.completion_code || null;
        return { outcome: "shown", stop: true, closing: { title: scene.title || "Thank you", text: scene.text,
          code: scene.completion_code, url: scene.redirect_url, redirectAfterS: scene.redirect_after_s } };
      default: {
        const handler = this.handlers[scene.kind];
        if (!handler) throw new Error(`no handler for scene kind ${scene.kind}`);
        return handler(scene, this);
      }
    }
  }

  /** Record a waiting-room event (attempt, event, rtt_ms, detail). */
  waitingEvent(attempt, event, rttMs = null, detail = null) {
    this.record.waiting.push({ attempt, event, at_ms: this.now(), rtt_ms: rttMs, detail });
  }
}
