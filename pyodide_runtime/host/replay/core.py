"""Re-simulate an export bundle: rebuild the study's game from the bundle's metadata and step it to any frame.

Canonical rows are a pure function of (config, seeds, confirmed inputs), so the bundle alone (plus the env's
code) is enough to show every confirmed frame again. :class:`Replay` keeps a snapshot every ``snapshot_every``
frames and at every episode start, so seeking anywhere costs at most ``snapshot_every`` steps once the frames
before it were visited.

    replay = Replay("pilot_room-1_P01_seat0.zip")
    replay.seek(120)                 # the state after confirmed step 120 (global frame)
    replay.render()                  # the env's draw list or RGB array for that state
    replay.matches()                 # the re-simulated observations equal the recorded ones

Frame ``g`` always means *the state after step g* (a row of ``frames.csv``). This module is pure Python and runs
unchanged in CPython and inside Pyodide (the replay page's worker uses :meth:`Replay.view`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.host.data import Bundle
from pyodide_runtime.envs.base import Game, StepResult
from pyodide_runtime.export.bundle import open_bundle

__all__ = ["Replay", "ReplayError", "Marker", "observation_digest", "bots_from_metadata", "DEFAULT_SNAPSHOT_EVERY"]

DEFAULT_SNAPSHOT_EVERY = 30
#: Bot policy names a bundle records for the built-in bots, and the bot spec that rebuilds them.
_BUILTIN_BOTS = {"RandomPolicy": "random", "ConstantPolicy": "idle"}
#: A frame first simulated this many frame intervals after the previous one marks a stall.
STALL_FACTOR = 3.0


class ReplayError(ValueError):
    """The bundle cannot be re-simulated (no frames, an env that cannot be rebuilt, a bot that is not named)."""


@dataclass(frozen=True)
class Marker:
    """Something from the bundle's diagnostics to mark on the timeline, over global frames ``start..end``."""

    kind: str  # rollback, away, fast_forward, stall, desync
    start: int
    end: int
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "label": self.label}


def observation_digest(cells: Mapping[str, str | None]) -> str:
    """A short digest of one frame's observations, given as ``agent -> canonical JSON text`` (``None``: absent)."""
    text = json.dumps({k: cells[k] for k in sorted(cells)}, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bots_from_metadata(describe: Mapping[str, Any], configured: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The bots to rebuild the game with: ``configured`` (a study config's ``[bots]``) where given, else the
    built-in bot the bundle names; raise :class:`ReplayError` for a bot only the study config can name."""
    configured = dict(configured or {})
    bots: dict[str, Any] = {}
    for agent, name in (describe.get("bots") or {}).items():
        if agent in configured:
            bots[agent] = configured[agent]
        elif name in _BUILTIN_BOTS:
            bots[agent] = _BUILTIN_BOTS[name]
        else:
            raise ReplayError(f"agent {agent!r} was played by the bot {name!r}; pass the study config (--config) "
                              "whose [bots] table names it")
    return bots


class Replay:
    """One bundle, re-simulated on demand. See the module docstring."""

    def __init__(
        self,
        bundle: bytes | str | os.PathLike[str] | Mapping[str, bytes],
        *,
        spec: str | None = None,
        env_config: Mapping[str, Any] | None | bool = False,
        bots: Mapping[str, Any] | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        game: Game | None = None,
    ) -> None:
        """``spec`` overrides the bundle's env factory (e.g. where the env file lives on this machine);
        ``env_config`` overrides the recorded env config (``False``: keep it); ``bots`` names bot policies by
        agent (a study config's ``[bots]``); ``game`` is a ready game to use instead of building one."""
        files = dict(bundle) if isinstance(bundle, Mapping) else open_bundle(bundle)
        self.bundle = Bundle(files, backend="python")
        canonical = self.bundle.metadata["canonical"]
        self.metadata: dict[str, Any] = canonical
        self.describe: dict[str, Any] = dict(canonical.get("env") or {})
        self.snapshot_every = max(1, int(snapshot_every))
        self.agents: list[str] = list(canonical.get("agents") or self.describe.get("agents") or [])
        self.seats: list[str] = list(canonical.get("seats") or self.describe.get("seats") or [])
        self.fps = float(canonical.get("fps") or 30)
        self.spec = spec or self.describe.get("factory")
        self.env_config = self.describe.get("config") if env_config is False else env_config
        self._read_frames()
        self.game = game if game is not None else self._build(bots)
        self._snaps: dict[int, Any] = {}
        self._next = 0          # the next step the live game executes
        self._ready = False     # the live game was already reset for ``_next`` when that starts an episode
        self._last: StepResult | None = None
        self.frame = -1         # the frame whose state the live game holds (-1: none yet)

    # -- building ---------------------------------------------------------------------------------------------
    def _read_frames(self) -> None:
        rows = self.bundle.frames
        if not rows:
            raise ReplayError("the bundle has no confirmed frames to replay")
        players = len(self.seats)
        self.inputs: list[tuple[int, ...]] = []
        self.away: list[tuple[bool, ...]] = []
        self.recorded: list[dict[str, str | None]] = []
        self.rewards: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.position: list[tuple[int, int]] = []  # (episode, frame within the episode) per global frame
        current = -1
        for row in rows:
            g = int(row["global_frame"])
            if g != current:
                if g != len(self.inputs):
                    raise ReplayError(f"frames.csv skips from global frame {current} to {g}")
                current = g
                self.inputs.append(tuple([0] * players))
                self.away.append(tuple([False] * players))
                self.recorded.append({})
                self.rewards.append({})
                self.actions.append({})
                self.position.append((int(row["episode"]), int(row["frame"])))
            seat = row["seat"]
            if seat is not None:
                inputs, away = list(self.inputs[g]), list(self.away[g])
                inputs[seat], away[seat] = int(row["input"]), bool(row["away"])
                self.inputs[g], self.away[g] = tuple(inputs), tuple(away)
            self.recorded[g][row["agent"]] = row["observation"]
            self.rewards[g][row["agent"]] = row["reward"]
            self.actions[g][row["agent"]] = row["action"]
        self.frames = len(self.inputs)
        seeds = {int(e["episode"]): int(e["seed"]) for e in self.metadata.get("episodes") or []}
        for e in self.bundle.resets or []:
            seeds.setdefault(int(e["episode"]), int(e["seed"]))
        #: global frame of each episode's first step -> that episode's seed
        self._starts: dict[int, int] = {}
        self.episodes: list[dict[str, Any]] = []
        for g, (episode, frame) in enumerate(self.position):
            if frame == 0:
                if episode not in seeds:
                    raise ReplayError(f"the bundle records no seed for episode {episode}")
                self._starts[g] = seeds[episode]
                self.episodes.append({"episode": episode, "start_frame": g, "frames": 0})
            self.episodes[-1]["frames"] += 1

    def _build(self, bots: Mapping[str, Any] | None) -> Game:
        from pyodide_runtime.envs.loading import load_game

        if not self.spec:
            raise ReplayError("the bundle does not record its env factory; pass the env spec")
        defaults = self.describe.get("default_inputs")
        game = load_game(str(self.spec), self.env_config, bots=bots_from_metadata(self.describe, bots) or None,
                         default_inputs=defaults)
        if list(game.agents) != self.agents or list(game.seats) != self.seats:
            raise ReplayError(f"the env built from {self.spec} has agents {list(game.agents)} and seats "
                              f"{list(game.seats)}; the bundle has {self.agents} and {self.seats}")
        return game

    @property
    def source_matches(self) -> bool | None:
        """Whether the env's source file hashes as the bundle recorded (``None`` when either is unknown)."""
        recorded, ours = self.describe.get("source_hash"), self.game.describe().get("source_hash")
        return None if not recorded or not ours else recorded == ours

    # -- stepping ---------------------------------------------------------------------------------------------
    def seek(self, g: int) -> StepResult:
        """Bring the game to the state after step ``g`` and return that step's result."""
        if not 0 <= g < self.frames:
            raise IndexError(f"frame {g} is outside 0..{self.frames - 1}")
        if self.frame == g and self._last is not None:
            return self._last
        best = max((k for k in self._snaps if k <= g), default=None)
        if not (self._next <= g and (best is None or self._next >= best)):
            assert best is not None  # every frame before _next was passed, with a snapshot at its episode start
            self.game.set_state(self._snaps[best])
            self._next, self._ready = best, True
        game, starts, every = self.game, self._starts, self.snapshot_every
        while self._next <= g:
            k = self._next
            if k in starts and not self._ready:
                game.reset(starts[k])
                self._ready = True
            if (k in starts or k % every == 0) and k not in self._snaps:
                self._snaps[k] = game.get_state()
            self._last = game.step(list(self.inputs[k]))
            self._next, self._ready = k + 1, False
        self.frame = g
        assert self._last is not None
        return self._last

    def observations(self, g: int | None = None) -> dict[str, str | None]:
        """The re-simulated observations after step ``g`` (default: the current frame) as canonical JSON."""
        res = self.seek(self.frame if g is None else g)
        obs = res.observations
        return {a: canonical_json(obs[a]) if a in obs else None for a in self.recorded[self.frame]}

    def matches(self, g: int | None = None) -> bool:
        """Whether the re-simulated observations after step ``g`` equal the recorded ones."""
        obs = self.observations(g)
        return obs == self.recorded[self.frame]

    def render(self, g: int | None = None) -> Any:
        """The env's render after step ``g`` (default: the current frame): a draw list, an RGB array or ``None``."""
        if g is not None:
            self.seek(g)
        return self.game.render()

    # -- for a viewer -----------------------------------------------------------------------------------------
    def info_action_names(self) -> list[str] | None:
        """The seats' action names when the env declares them (``None`` otherwise)."""
        names = self.describe.get("action_names")
        return [str(n) for n in names] if isinstance(names, list) else None

    def info(self) -> dict[str, Any]:
        """Everything a viewer shows once: frames, episodes, seats, action names, markers."""
        names = self.info_action_names()
        return {
            "study": self.metadata.get("study"), "session": self.metadata.get("session"),
            "env_id": self.describe.get("env_id"), "env_version": self.describe.get("env_version"),
            "status": self.metadata.get("status"), "frames": self.frames, "fps": self.fps,
            "episodes": self.episodes, "agents": self.agents, "seats": self.seats,
            "action_names": names,
            "bots": self.describe.get("bots") or {},
            "participant_seat": (self.bundle.metadata.get("participant_local") or {}).get("seat"),
            "source_matches": self.source_matches, "markers": [m.to_dict() for m in self.markers()],
        }

    def view(self, g: int) -> dict[str, Any]:
        """One frame for the replay page: position, inputs, rewards, observation digests and the render payload
        (``render_kind`` ``"draw"`` with draw-list JSON, ``"rgba"`` with bytes and ``render_w``/``render_h``)."""
        self.seek(g)
        episode, frame = self.position[g]
        observed = self.observations()
        recorded = self.recorded[g]
        out: dict[str, Any] = {
            "frame": g, "episode": episode, "episode_frame": frame,
            "inputs": list(self.inputs[g]), "away": list(self.away[g]),
            "actions": {a: _plain(v) for a, v in self.actions[g].items()},
            "rewards": {a: _plain(v) for a, v in self.rewards[g].items()},
            "observations": observed, "observation_digest": observation_digest(observed),
            "recorded_digest": observation_digest(recorded), "match": observed == recorded,
            "render_kind": None, "render": None, "render_w": 0, "render_h": 0,
        }
        picture = self.game.render()
        if isinstance(picture, (list, tuple)):
            out.update(render_kind="draw", render=json.dumps(picture, separators=(",", ":"), allow_nan=False))
        elif picture is not None:
            import numpy as np

            rgb = np.asarray(picture)
            if rgb.ndim == 3 and rgb.shape[2] in (3, 4):
                h, w = int(rgb.shape[0]), int(rgb.shape[1])
                rgba = np.full((h, w, 4), 255, dtype=np.uint8)
                rgba[..., : rgb.shape[2]] = rgb
                out.update(render_kind="rgba", render=rgba.tobytes(), render_w=w, render_h=h)
        return out

    def view_json(self, g: int) -> str:
        """:meth:`view` without the render payload, as JSON text."""
        out = self.view(g)
        out.pop("render")
        return json.dumps(out)

    def markers(self) -> list[Marker]:
        """Rollbacks, away spans, fast-forwards, desyncs and stalls from the bundle's diagnostics."""
        diag = self.bundle.diagnostics
        last = self.frames - 1
        out: list[Marker] = []

        def clip(a: Any, b: Any) -> tuple[int, int]:
            a = min(max(int(a), 0), last)
            return a, min(max(int(b if b is not None else last), a), last)

        for r in diag.get("rollbacks") or []:
            a, b = clip(r["frame"], int(r["frame"]) + max(int(r["depth"] or 1), 1) - 1)
            out.append(Marker("rollback", a, b, f"rollback of {r['depth']} frame(s), seats {r['seats']}"))
        for r in diag.get("away") or []:
            end = r["end_frame"]
            a, b = clip(r["start_frame"], None if end is None else int(end) - 1)
            out.append(Marker("away", a, b, f"seat {r['seat']} away" + (f" ({r['mode']})" if r.get("mode") else "")))
        for r in diag.get("fast_forwards") or []:
            a, b = clip(r["start_frame"], int(r["end_frame"]) - 1)
            count = int(r["end_frame"]) - int(r["start_frame"])
            out.append(Marker("fast_forward", a, b, f"fast-forward of {count} frames"))
        for r in diag.get("desyncs") or []:
            a, b = clip(r["frame"], r["frame"])
            out.append(Marker("desync", a, b, f"desync reported by seat {r['seat']}"))
        out.extend(self._stalls(diag.get("frames") or []))
        return sorted(out, key=lambda m: (m.start, m.kind))

    def _stalls(self, rows: Sequence[Mapping[str, Any]]) -> list[Marker]:
        """Frames first simulated long after the previous one (the session waited for its partner's inputs)."""
        limit = STALL_FACTOR * 1000.0 / self.fps
        out = []
        prev: float | None = None
        for r in rows:
            t = r.get("first_ms")
            g = int(r["global_frame"])
            if t is None or g >= self.frames:
                continue
            if prev is not None and t - prev > limit:
                out.append(Marker("stall", g, g, f"waited {t - prev:.0f} ms before this frame"))
            prev = t
        return out


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
