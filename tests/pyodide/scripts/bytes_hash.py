# The "bytes" hash chain of the same records, built from a seed (run in Pyodide and in CPython by the test).
import hashlib

import numpy as np

from pyodide_runtime.arrayhash import feed, layout
from pyodide_runtime.framelog import EpisodeStart, FrameLog, FrameRecord

rng = np.random.default_rng(params["seed"])


def observation(t):
    heat = rng.standard_normal((3, 5)).astype(">f4")
    heat[0, 0] = -0.0
    heat[1, 1] = np.nan if t % 4 == 1 else np.inf
    return {
        "image": np.asfortranarray(rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)),
        "heat": heat[:, ::2],
        "mask": rng.random(7) < 0.5,
        "count": rng.integers(-2**40, 2**40, size=4, dtype="<i8").astype(">i8"),
        "half": rng.random(3).astype(np.float16),
        "pos": [t, int(rng.integers(10))],
        "tag": "t" + str(t),
    }


log = FrameLog("bytes", params["every"])
agents = ("p0", "p1")
log.add_episode_start(EpisodeStart(0, 7, 0, {a: observation(0) for a in agents}, {a: {} for a in agents}))
frames = params["frames"]
for g in range(frames):
    obs = {a: observation(g) for a in agents}
    log.add(FrameRecord(g, 0, g, (g % 3, 1), (False, g % 5 == 0), {a: g % 3 for a in agents}, obs,
                        {a: float(rng.random()) for a in agents}, dict.fromkeys(agents, False),
                        dict.fromkeys(agents, g == frames - 1), {a: {"t": g} for a in agents}, g == frames - 1,
                        False, 0.0))
log.promote(frames, 0.0)
one = hashlib.sha256()
feed(one, observation(99))
result = {
    "chain": [r.state_hash for r in log.confirmed],
    "single": one.hexdigest(),
    "layout": layout(observation(0)),
    "numpy": np.__version__,
}
