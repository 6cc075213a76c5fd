// The browser check page: opens the self-hosted runtime, steps a gymnasium env 1,000 times and shows the timings.
// A separate module (not an inline script) so the page runs under a Content-Security-Policy without 'unsafe-inline'.
import { loadRuntime } from "/js_bridge/loader.mjs";
const log = document.getElementById("log");
window.browserCheck = (async () => {
  const stages = [];
  const { pyodide, timings, facts } = await loadRuntime({
    assetsURL: new URL("/assets/", location.href).href,
    onProgress: (stage) => { stages.push(stage); log.textContent = stage; },
  });
  const t = performance.now();
  const result = pyodide.runPython(`
import json, gymnasium, pyodide_runtime
env = gymnasium.make("CartPole-v1")
obs, _ = env.reset(seed=7)
steps = episodes = 0
total_reward = 0.0
for i in range(1000):
  obs, reward, terminated, truncated, _ = env.step(i % 2)
  steps += 1
  total_reward += float(reward)
  if terminated or truncated:
      episodes += 1
      obs, _ = env.reset(seed=7 + episodes)
json.dumps({"steps": steps, "episodes": episodes, "total_reward": total_reward,
          "last_obs": [float(x) for x in obs], "gymnasium": gymnasium.__version__,
          "runtime": pyodide_runtime.__version__,
          "set_order": list({"apple", "banana", "cherry", "date", "elderberry"})})
`);
  const out = { ...JSON.parse(result), stages, timings, facts, step_loop_ms: performance.now() - t };
  log.textContent = JSON.stringify(out, null, 1);
  return out;
})();
