"""Train the kitchen partner's ONNX policy by behaviour cloning the scripted cook (numpy only) and export it.

The scripted :class:`pyodide_runtime.examples.human_ai.Partner` plays ``cook_1`` against a noisier scripted
``cook_0``; every frame records cook_1's observation, mapped exactly as the study maps it (the hook, mean and
std of ``[policies.cook_1]`` in the study file), and the action the script would choose without its random
moves. A small MLP (Gemm/Relu layers) is fitted with Adam on cross-entropy, evaluated on held-out episodes, and
written as ONNX (input ``obs`` float32 [1, n], output ``logits`` float32 [1, 6]).

Usage::

    python scripts/train_kitchen_policy.py                        # writes pyodide_runtime/examples/human_ai_onnx.onnx
    python scripts/train_kitchen_policy.py --samples 5000 --hidden 32 --out /tmp/policy.onnx

Needs ``onnx`` (``pip install 'pyodide-runtime[ai]'``); checks the export with onnxruntime when installed.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyodide_runtime.examples.human_ai import Partner, make_env  # noqa: E402
from pyodide_runtime.policies.observation import normalize, observation_features  # noqa: E402

DEFAULT_STUDY = ROOT / "pyodide_runtime" / "examples" / "human_ai_onnx.toml"
DEFAULT_OUT = ROOT / "pyodide_runtime" / "examples" / "human_ai_onnx.onnx"
AGENT = "cook_1"
ACTIONS = 6
EPISODE_FRAMES = 600


def log(message: str) -> None:
    print(message, flush=True)


def collect(samples: int, seed: int, table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``samples`` frames of scripted play: (features, labels, episode index of each frame)."""
    env = make_env({"cook_time": 40, "orders": 2, "order_time": 900, "max_steps": EPISODE_FRAMES})
    partner, teacher, other = Partner(epsilon=0.1), Partner(epsilon=0.0), Partner(epsilon=0.3)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    xs, ys, episodes = [], [], []
    episode = 0
    observations, _ = env.reset(seed=seed)
    frame = 0
    while len(ys) < samples:
        obs = observations[AGENT]
        label = teacher.act(obs, rng)  # the script's own choice, without random moves
        x = observation_features(obs, None, table.get("hook")) if "hook" in table else \
            observation_features(obs, table.get("keys"))
        xs.append(normalize(np.asarray(x), table.get("mean"), table.get("std")))
        ys.append(label)
        episodes.append(episode)
        actions = {"cook_0": other.act(observations["cook_0"], rng), AGENT: partner.act(obs, rng)}
        observations, _, _, truncated, _ = env.step(actions)
        frame += 1
        if any(truncated.values()):
            episode += 1
            observations, _ = env.reset(seed=seed + episode)
            frame = 0
        if len(ys) % 5000 == 0:
            log(f"  collected {len(ys)}/{samples} frames")
    return np.asarray(xs, dtype=np.float32), np.asarray(ys, dtype=np.int64), np.asarray(episodes)


class MLP:
    """Dense layers with ReLU between them, trained with Adam on softmax cross-entropy."""

    def __init__(self, sizes: list[int], rng: np.random.Generator) -> None:
        self.weights = [rng.normal(0, np.sqrt(2.0 / a), (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
        self.biases = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]
        self.params = [*self.weights, *self.biases]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        acts = [x]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w + b
            if i < len(self.weights) - 1:
                x = np.maximum(x, 0)
            acts.append(x)
        return x, acts

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        logits, acts = self.forward(x)
        shifted = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
        grad = p
        grad[np.arange(len(y)), y] -= 1
        grad /= len(y)
        gw, gb = [None] * len(self.weights), [None] * len(self.weights)
        for i in reversed(range(len(self.weights))):
            gw[i] = acts[i].T @ grad
            gb[i] = grad.sum(axis=0)
            if i:
                grad = (grad @ self.weights[i].T) * (acts[i] > 0)
        self.t += 1
        for k, (param, g) in enumerate(zip(self.params, [*gw, *gb])):
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mhat = self.m[k] / (1 - 0.9 ** self.t)
            vhat = self.v[k] / (1 - 0.999 ** self.t)
            param -= (lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)
        return loss

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0].argmax(axis=1)


def export_onnx(model: MLP, path: Path) -> None:
    """Write the MLP as ONNX: Gemm and Relu nodes, opset 17, input ``obs`` [1, n], output ``logits`` [1, 6]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = model.weights[0].shape[0]
    nodes, inits = [], []
    current = "obs"
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(model.weights) - 1
        out = "logits" if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [out if last else f"z{i}"],
                                      name=f"dense{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [out], name=f"relu{i}"))
        current = out
    graph = helper.make_graph(nodes, "kitchen_cook_policy",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, ACTIONS])], inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   producer_name="train_kitchen_policy")
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())


def check_export(model: MLP, path: Path, x: np.ndarray) -> None:
    try:
        import onnxruntime as ort
    except ImportError:
        log("onnxruntime not installed: export not cross-checked")
        return
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for row in x[:200]:
        got = session.run(["logits"], {"obs": row[None, :]})[0]
        worst = max(worst, float(np.abs(got - model.forward(row[None, :])[0]).max()))
    log(f"onnxruntime reproduces the numpy model: max abs logit difference {worst:.2e}")
    if worst > 1e-3:
        raise SystemExit("the exported model disagrees with the trained one")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40000, help="frames of scripted play (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=64, help="units per hidden layer (default %(default)s)")
    parser.add_argument("--layers", type=int, default=2, help="hidden layers (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training frames (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study", type=Path, default=DEFAULT_STUDY,
                        help="study file whose [policies.cook_1] hook/keys, mean and std map observations")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write (default: the example's)")
    args = parser.parse_args(argv)
    if args.samples < 200 or args.hidden < 1 or args.layers < 1 or args.epochs < 1:
        parser.error("--samples must be at least 200; --hidden, --layers and --epochs at least 1")
    table = tomllib.loads(args.study.read_text())["policies"][AGENT]
    started = time.perf_counter()
    log(f"collecting {args.samples} frames of scripted play (seed {args.seed}) ...")
    x, y, episodes = collect(args.samples, args.seed, table)
    # Hold out the last fifth of the frames, whole episodes where possible, so evaluation is on unseen play.
    cut = int(len(y) * 0.8)
    if episodes[cut] != episodes[0]:
        first = int(np.argmax(episodes == episodes[cut]))
        cut = first if first >= len(y) // 2 else cut
    x_train, y_train, x_test, y_test = x[:cut], y[:cut], x[cut:], y[cut:]
    counts = np.bincount(y, minlength=ACTIONS)
    log(f"{len(y_train)} training frames, {len(y_test)} held out; action counts {counts.tolist()}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(args.seed + 1)))
    model = MLP([x.shape[1], *[args.hidden] * args.layers, ACTIONS], rng)
    batch = 256
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_train))
        lr = 3e-3 * (0.5 ** (3 * epoch // args.epochs))
        losses = [model.step(x_train[idx], y_train[idx], lr)
                  for idx in (order[i:i + batch] for i in range(0, len(order), batch))]
        if epoch == 1 or epoch % 5 == 0 or epoch == args.epochs:
            acc = float((model.predict(x_train) == y_train).mean())
            log(f"epoch {epoch}/{args.epochs}: loss {np.mean(losses):.3f}, training accuracy {acc:.3f}")
    accuracy = float((model.predict(x_test) == y_test).mean())
    majority = float((y_test == np.bincount(y_train, minlength=ACTIONS).argmax()).mean())
    log(f"held-out accuracy: {accuracy:.3f} on {len(y_test)} frames (majority class: {majority:.3f})")
    export_onnx(model, args.out)
    log(f"wrote {args.out} ({args.out.stat().st_size} bytes) in {time.perf_counter() - started:.1f} s")
    check_export(model, args.out, x_test)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
