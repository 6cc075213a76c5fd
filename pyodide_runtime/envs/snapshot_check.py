"""The start-up check that a game's snapshots really restore everything, and the diagnosis when they do not.

:func:`verify_snapshots` runs on the real env before a session starts (:func:`pyodide_runtime.envs.loading.make_game`
calls it, in the participant's page too): it snapshots, steps on, restores and re-steps, compares canonical digests
of every step result, detects a game that draws from the global ``random`` / ``numpy.random`` generators (turning
on their capture, :class:`~pyodide_runtime.snapshot.GlobalRngState`), and refuses the game with a
:class:`~pyodide_runtime.snapshot.SnapshotError` that says what diverged, which attributes the restore missed and
how to fix it. The host's sync test (:mod:`pyodide_runtime.host.synctest`) and ``check-env``
(:mod:`pyodide_runtime.host.checkenv`) build on the same digests and diagnosis.

The snapshot strategies themselves are in :mod:`pyodide_runtime.snapshot`, which the rollback timeline imports;
this module is only imported by whoever verifies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from pyodide_runtime.canonical import digest, to_canonical
from pyodide_runtime.snapshot import GlobalRngState, SnapshotError, fixed_types, has_explicit, wrapper_chain

__all__ = [
    "VerificationReport",
    "verify_snapshots",
    "RESULT_FIELDS",
    "InputPolicy",
    "result_fields",
    "field_digests",
    "state_digest",
    "first_difference",
    "Unrestored",
    "attribute_values",
    "find_unrestored",
    "unrestored_between",
    "explicit_owner",
    "describe_unrestored",
    "restore_advice",
]

RESULT_FIELDS = ("actions", "observations", "rewards", "terminated", "truncated", "infos", "episode_over")

#: ``policy(frame, seat, rng) -> input`` generates test inputs; ``rng`` is a seeded ``random.Random``.
InputPolicy = Callable[[int, int, random.Random], int]


def result_fields(result: Any) -> dict[str, Any]:
    """A step or reset result as a dict of its fields (canonical-encodable when the env's data is)."""
    names = RESULT_FIELDS if hasattr(result, "episode_over") else ("observations", "infos")
    return {name: getattr(result, name) for name in names}


def field_digests(result: Any) -> dict[str, str]:
    """One canonical digest per result field; a field that cannot be encoded raises ``SnapshotError``."""
    out = {}
    for name, value in result_fields(result).items():
        try:
            out[name] = digest(value)
        except TypeError as exc:
            raise SnapshotError(f"result field {name!r} cannot be encoded canonically: {exc}") from None
    return out


def state_digest(state: Any) -> str | None:
    """The canonical digest of a snapshot, or ``None`` when the snapshot has no canonical encoding."""
    try:
        return digest(state)
    except (TypeError, ValueError, RecursionError):
        return None


def first_difference(expected: Any, actual: Any, path: str = "") -> str:
    """A readable path to the first place two canonical values differ, e.g. ``player_0.coins[1]``."""
    a, b = to_canonical(expected), to_canonical(actual)
    return _diff(a, b, path) or path or "(value)"


def _diff(a: Any, b: Any, path: str) -> str | None:
    if a == b and type(a) is type(b):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{sub} (present on one side only)"
            found = _diff(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _diff(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path} (length {len(a)} != {len(b)})"
        return None
    return f"{path}: {a!r} != {b!r}"


# -- naming what a restore missed -------------------------------------------------------------------------------------

_NOT_COMPARED = "<not compared>"
_DEPTH = 4


@dataclass(frozen=True)
class Unrestored:
    """An attribute that ``set_state`` left as later frames had made it."""

    name: str  #: the attribute, ``Wrapper.attr`` for a wrapper's
    path: str  #: where inside it the first difference is (equal to ``name`` for a plain value)
    saved: Any  #: its value (canonical) when the snapshot was taken
    restored: Any  #: its value after restoring that snapshot
    rng: bool = False  #: a random generator (its state differs)

    def __str__(self) -> str:
        if self.rng:
            return f"`{self.name}` (its generator state)"
        where = "" if self.path == self.name else f"at {self.path}: "
        saved, restored = _short(self.saved), _short(self.restored)
        return f"`{self.name}` ({where}{saved} when the snapshot was taken, {restored} after restoring it)"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _state_objects(game: Any) -> list[tuple[str, Any]]:
    """(prefix, object) for the objects whose attributes hold the game's state: the env and its wrappers, or the
    game itself when it is not an env adapter."""
    env = getattr(game, "env", None)
    if env is None or getattr(game, "snapshot_method", None) is None:
        return [("", game)]
    chain = wrapper_chain(env)
    return [(f"{type(w).__name__}.", w) for w in chain[:-1]] + [("", chain[-1])]


def _plain(value: Any, depth: int) -> Any:
    """A canonical, comparable form of an attribute value; ``_NOT_COMPARED`` for what has none."""
    if isinstance(value, np.random.Generator):
        return to_canonical(value.bit_generator.state)
    if isinstance(value, random.Random):
        return to_canonical(value.getstate())
    try:
        return to_canonical(value)
    except (TypeError, ValueError, RecursionError):
        pass
    if depth <= 0 or callable(value):
        return _NOT_COMPARED
    if isinstance(value, dict):
        return {str(k): _plain(v, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth - 1) for v in value]
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        return {k: _plain(v, depth - 1) for k, v in fields.items() if not k.startswith("__")}
    return _NOT_COMPARED


def attribute_values(game: Any) -> dict[str, tuple[bool, Any]]:
    """The instance attributes holding the game's state, as ``name -> (is an RNG, comparable value)``.

    For naming what a restore missed; not fast and not meant for every frame.
    """
    out: dict[str, tuple[bool, Any]] = {}
    fixed = fixed_types()
    for prefix, obj in _state_objects(game):
        fields = getattr(obj, "__dict__", None)
        if not isinstance(fields, dict):
            continue
        for key, value in list(fields.items()):
            if key.startswith("__") or (prefix and key == "env") or callable(value) or isinstance(value, fixed):
                continue
            is_rng = isinstance(value, (np.random.Generator, random.Random))
            out[prefix + key] = (is_rng, _plain(value, _DEPTH))
    return out


def _leaf_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    if a == b and type(a) is type(b):
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return (f"{path}.{key}", a.get(key, "<absent>"), b.get(key, "<absent>"))
            found = _leaf_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _leaf_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return (path, a, b)


def unrestored_between(
    saved: dict[str, tuple[bool, Any]], restored: dict[str, tuple[bool, Any]]
) -> tuple[Unrestored, ...]:
    """The attributes that differ between two :func:`attribute_values` results, in attribute order."""
    out = []
    for name, (is_rng, before) in saved.items():
        after = restored.get(name, (is_rng, "<absent>"))[1]
        found = _leaf_difference(before, after, name)
        if found is not None:
            out.append(Unrestored(name, found[0], found[1], found[2], is_rng))
    for name in [n for n in restored if n not in saved]:
        out.append(Unrestored(name, name, "<absent>", restored[name][1]))
    return tuple(out)


def find_unrestored(
    game: Any, prepare: Callable[[], None], plan: Sequence[Sequence[int]]
) -> tuple[Unrestored, ...]:
    """Replay a failed restore and name the attributes ``set_state`` does not bring back.

    ``prepare()`` brings ``game`` to the frame whose snapshot failed; ``plan`` is the inputs stepped after it and
    before the restore. Best effort: a game that fails while replaying gives ``()``. Clobbers the game's state.
    """
    try:
        prepare()
        saved = attribute_values(game)
        snapshot = game.get_state()
        for step_inputs in plan:
            if game.step(list(step_inputs)).episode_over:
                break
        game.set_state(snapshot)
        return unrestored_between(saved, attribute_values(game))
    except Exception:  # noqa: BLE001 - only a diagnosis: the caller reports the divergence without it
        return ()


def explicit_owner(game: Any) -> str | None:
    """The class whose own ``get_state()``/``set_state()`` the game's snapshots use; ``None`` for generic ones."""
    method = getattr(game, "snapshot_method", None)
    env = getattr(game, "env", None)
    if method is None or env is None:
        return type(game).__name__ if has_explicit(game) else None
    if method == "explicit":
        return type(env).__name__
    if method == "explicit+wrappers":
        return type(wrapper_chain(env)[-1]).__name__
    return None


def _names(missed: Sequence[Unrestored], limit: int = 3) -> str:
    shown = ", ".join(f"`{m.name}`" for m in missed[:limit])
    return shown + (f" and {len(missed) - limit} more" if len(missed) > limit else "")


def describe_unrestored(game: Any, missed: Sequence[Unrestored]) -> str:
    """One sentence (no final period) on what a restore missed, naming attributes when ``missed`` has any."""
    owner = explicit_owner(game)
    if missed:
        listed = "; ".join(str(m) for m in missed[:3])
        more = f" (and {len(missed) - 3} more)" if len(missed) > 3 else ""
        if owner is not None:
            return f"{owner}.set_state() does not restore {listed}{more}"
        method = getattr(game, "snapshot_method", "the")
        return f"the {method} snapshot does not restore {listed}{more}"
    if owner is not None:
        return (
            f"{owner} has get_state()/set_state() and every attribute of it that could be compared matched the "
            "snapshot after restoring it, so step() depends on something outside them"
        )
    return "something step() depends on is missing from the snapshot"


def restore_advice(game: Any, missed: Sequence[Unrestored] = ()) -> str:
    """What to change so snapshots restore everything: aimed at the env's own state methods when it has them."""
    owner = explicit_owner(game)
    rngs = "keep every RNG step() draws from there too, by its state (self.np_random.bit_generator.state)"
    if owner is not None and missed:
        them = "it" if len(missed) == 1 else "them"
        return (
            f"return {_names(missed)} from {owner}.get_state() and restore {them} in set_state() (as copies, not "
            f"live objects); {rngs}"
        )
    if owner is not None:
        return (
            "look for what step() reads besides the env's attributes: the clock, class attributes, module-level "
            "or global variables, a generator whose state is not saved (save self.np_random.bit_generator.state, "
            "not a seed), or an attribute holding an object whose state could not be compared; make step() depend "
            f"only on what {owner}.get_state() returns"
        )
    if missed:
        return (
            f"implement get_state()/set_state() on the env returning {_names(missed)} and everything else step() "
            f"reads; {rngs}"
        )
    return (
        "implement get_state()/set_state() on the env returning everything step() reads, including "
        "self.np_random.bit_generator.state and any other RNG; do not draw from unseeded or global generators "
        "without declaring it; do not read the clock or other outside state in step()"
    )


@dataclass(frozen=True)
class VerificationReport:
    """What :func:`verify_snapshots` checked."""

    checks: int
    frames_stepped: int
    global_rng: tuple[bool, bool]
    state_compared: bool


_RESET_ADVICE = (
    "derive everything reset(seed) does from the seed: reseed self.np_random (and any other generator) from it, "
    "and do not read the clock, os.urandom or unseeded global generators in reset()"
)


def verify_snapshots(
    game: Any,
    *,
    seed: int = 0,
    warmup: Sequence[int] = (0, 7, 23),
    horizon: int = 12,
    repeats: int = 2,
    input_policy: InputPolicy | None = None,
) -> VerificationReport:
    """Check that restoring a snapshot reproduces the same future; raise :class:`SnapshotError` if not.

    For each warm-up length in ``warmup``: reset, step that many frames with varied inputs, snapshot, step
    ``horizon`` frames, then restore the snapshot ``repeats`` times and re-step, comparing canonical digests of
    every step result field (and of the state when it is canonically encodable). Also checks that ``reset`` is a
    function of the seed, that a snapshot is not changed by later steps, and detects a game that draws from the
    global ``random``/``numpy.random`` generators (turning on their capture when the game supports it).
    """
    rng = random.Random(seed)
    counts = [game.input_count(s) for s in range(len(game.seats))]

    def inputs(frame: int) -> list[int]:
        if input_policy is None:
            return [rng.randrange(c) for c in counts]
        return [int(input_policy(frame, s, rng)) for s in range(len(counts))]

    global_flags = _detect_global_rng(game, seed, inputs)
    first = [field_digests(game.reset(seed + k)) for k in range(2)]
    again = [field_digests(game.reset(seed + k)) for k in range(2)]
    if first != again:
        raise SnapshotError(
            f"reset(seed) is not a function of the seed: two resets with seed {seed} differ, so peers would start "
            "from different states that no snapshot can reconcile.", fix=_RESET_ADVICE
        )

    checks = 0
    stepped = 0
    state_compared = True
    for case, length in enumerate(warmup):
        warm = [inputs(frame) for frame in range(length)]

        def warm_up(case: int = case, warm: list[list[int]] = warm) -> None:
            game.reset(seed + case)
            for frame, step_inputs in enumerate(warm):
                if game.step(step_inputs).episode_over:
                    game.reset(seed + case + 1000 * (frame + 1))

        warm_up()
        frame = length
        snapshot = game.get_state()
        snap_digest = state_digest(snapshot)
        plan = [inputs(frame + k) for k in range(horizon)]
        expected = _run(game, plan)
        stepped += length + len(expected)
        if snap_digest is not None and state_digest(snapshot) != snap_digest:
            raise SnapshotError(
                f"get_state() returned live mutable state: the snapshot taken at frame {frame} changed while the "
                "game kept stepping.", fix="return copies (tuples, copied arrays) from get_state()"
            )

        def refuse(
            message: str, plan: list[list[int]] = plan[: len(expected)], warm_up: Callable[[], None] = warm_up
        ) -> NoReturn:
            missed = find_unrestored(game, warm_up, plan)
            cause = describe_unrestored(game, missed)
            raise SnapshotError(f"{message}. {cause[0].upper()}{cause[1:]}.", fix=restore_advice(game, missed))

        for attempt in range(repeats):
            game.set_state(snapshot)
            if snap_digest is not None and state_digest(game.get_state()) != snap_digest:
                where = first_difference(snapshot, game.get_state(), "state")
                refuse(
                    f"set_state() then get_state() does not give back the snapshot taken at frame {frame} "
                    f"(restore #{attempt + 1}; {where}); set_state() must restore every field get_state() returns"
                )
            actual = _run(game, plan[: len(expected)])
            stepped += len(actual)
            for k, (want, got) in enumerate(zip(expected, actual)):
                checks += 1
                for name in RESULT_FIELDS:
                    if want[0][name] != got[0][name]:
                        where = first_difference(want[1][name], got[1][name], name)
                        refuse(
                            f"restoring the snapshot taken at frame {frame} (restore #{attempt + 1}) did not "
                            f"reproduce frame {frame + k}: {where}"
                        )
                if want[2] is None or got[2] is None:
                    state_compared = False
                elif want[2] != got[2]:
                    refuse(
                        f"restoring the snapshot taken at frame {frame} reproduced the results but not the state "
                        f"after frame {frame + k}: {first_difference(want[3], got[3], 'state')}"
                    )
    return VerificationReport(checks, stepped, global_flags, state_compared)


def _run(game: Any, plan: list[list[int]]) -> list[tuple]:
    """Step through ``plan``; per frame: (field digests, fields, state digest, state or None)."""
    out = []
    for step_inputs in plan:
        result = game.step(step_inputs)
        state = game.get_state()
        sd = state_digest(state)
        out.append((field_digests(result), result_fields(result), sd, state if sd is not None else None))
        if result.episode_over:
            break
    return out


def _detect_global_rng(game: Any, seed: int, inputs: Callable[[int], list[int]]) -> tuple[bool, bool]:
    """Step a little and see whether the global generators moved; if so, ask the game to capture them."""
    before = GlobalRngState.fingerprint()
    game.reset(seed)
    for frame in range(16):
        if game.step(inputs(frame)).episode_over:
            break
    after = GlobalRngState.fingerprint()
    uses_python, uses_numpy = before[0] != after[0], before[1] != after[1]
    enable = getattr(game, "capture_global_rng", None)
    if uses_python or uses_numpy:
        if enable is None:
            which = " and ".join(n for n, used in (("random", uses_python), ("numpy.random", uses_numpy)) if used)
            raise SnapshotError(
                f"the game draws from the global {which} generator, which its snapshots do not capture.",
                fix="give the env its own generator (self.np_random) or let the adapter capture the global one",
            )
        enable(python=uses_python, numpy=uses_numpy)
    current = getattr(game, "global_rng", None)
    if current is not None:
        return (current.python, current.numpy)
    return (uses_python, uses_numpy)
