# Inside Pyodide: the compatibility layer, gymnasium, and the interpreter facts the exports rely on.
import sys

before = None
try:
    import gymnasium  # noqa: F401
except ImportError as exc:
    before = f"{type(exc).__name__}: {exc}"
    for name in [m for m in sys.modules if m.startswith(("gymnasium", "multiprocessing"))]:
        del sys.modules[name]

from pyodide_runtime import pyodide_compat

facts = pyodide_compat.prepare()
import gymnasium

env = gymnasium.make("CartPole-v1")
env.reset(seed=3)
total = 0.0
for i in range(200):
    _, reward, terminated, truncated, _ = env.step(i % 2)
    total += reward
    if terminated or truncated:
        env.reset(seed=3 + i)

result = {
    "import_error_before_prepare": before,
    "facts": facts,
    "reward": total,
    "set_order": list({"apple", "banana", "cherry", "date", "elderberry", "fig", "grape"}),
    "hash_width_bits": sys.hash_info.width,
}
