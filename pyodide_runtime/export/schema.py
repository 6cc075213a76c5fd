"""The export format, declared once: every file of a bundle and every column of its tables.

The writer, the codebook, ``validate``, ``compare`` and the loader all read these declarations, so what is
canonical (identical for every participant of a session) is decided here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FORMAT", "FORMAT_VERSION", "TYPES", "Column", "FileSpec", "FILES", "FILES_BY_PATH", "FRAMES", "RESETS",
    "EPISODES", "BLOBS", "TAIL", "METADATA", "MANIFEST", "CODEBOOK_MD", "CODEBOOK_JSON", "DIAG_FRAMES",
    "DIAG_ROLLBACKS", "DIAG_AWAY", "DIAG_FAST_FORWARDS", "DIAG_DESYNCS", "DIAG_NETWORK", "BLOB_PREFIX",
    "canonical_files", "spec_for",
]

FORMAT = "pyodide_runtime.export"
FORMAT_VERSION = 1

#: A cell holding ``BLOB_PREFIX + <sha256 hex>`` stands for the canonical JSON stored under that hash in blobs.csv.
BLOB_PREFIX = "sha256:"

#: Cell types. Every CSV is UTF-8, ``\n``-terminated, comma-separated, quoted only where needed (RFC 4180 style).
TYPES: dict[str, str] = {
    "int": "a decimal integer",
    "float": "a float in Python's shortest round-trip repr (`0.1`, `1e-07`, `nan`, `inf`, `-inf`)",
    "bool": "`true` or `false`",
    "str": "text",
    "hash": "64 lowercase hex digits (sha256)",
    "json": "canonical JSON: sorted keys, no whitespace, floats in shortest round-trip repr, NaN/Infinity as the "
            f"strings \"NaN\"/\"Infinity\"/\"-Infinity\"; a value longer than the inline limit is replaced by "
            f"`{BLOB_PREFIX}<sha256>` and stored in blobs.csv",
    "scalar": "canonical JSON of one value (a number, `true`/`false`, `null` or a quoted string), except that "
              "floats are written as in `float` (so `nan`/`inf`/`-inf` for non-finite ones)",
}


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV column. ``nullable`` columns may hold an empty cell, whose meaning the description gives."""

    name: str
    type: str
    description: str
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file of a bundle.

    ``canonical`` files are byte-identical for every participant of a session; for ``metadata.json`` only the
    member named by ``canonical_member`` is. ``required`` files are always present; ``order`` names the columns
    that identify a row, in the order rows are written (agents in the env's order, not alphabetically).
    """

    path: str
    kind: str
    canonical: bool
    description: str
    columns: tuple[Column, ...] = ()
    required: bool = True
    order: tuple[str, ...] = ()
    canonical_member: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def header(self) -> str:
        """The CSV header line, without its newline."""
        return ",".join(self.names)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.path} has no column {name!r}")


_SESSION = Column("session", "str", "Session identifier (the same for every participant of the session).")
_EPISODE = Column("episode", "int", "Episode number, from 0.")
_FRAME_COLUMNS = (
    _SESSION,
    _EPISODE,
    Column("frame", "int", "Step within the episode, from 0 (the first step after the reset)."),
    Column("global_frame", "int", "Step counted across the whole session, from 0."),
    Column("agent", "str", "Agent id; rows of a frame follow the env's agent order (metadata env.agents)."),
    Column("seat", "int", "Seat (human player) controlling this agent; empty for an agent played by a bot.", True),
    Column("input", "int", "The seat's confirmed input (a discrete action index); empty for bot agents.", True),
    Column("away", "bool", "The seat was away (tab hidden or frozen) and its declared default input was used; "
                           "empty for bot agents.", True),
    Column("action", "scalar", "The action the env executed for this agent (bots included); empty when the env "
                               "took no action for it (an agent that had left).", True),
    Column("reward", "scalar", "Reward of this step (normally a float); empty when the env returned none.", True),
    Column("terminated", "scalar", "The env's terminated flag for this agent (normally true/false); empty when "
                                   "absent.", True),
    Column("truncated", "scalar", "The env's truncated flag for this agent; empty when absent.", True),
    Column("episode_over", "bool", "This step ended the episode (the same on every row of the frame)."),
    Column("observation", "json", "Observation after this step; empty when the env returned none.", True),
    Column("info", "json", "Info dict of this step; empty when the env returned none.", True),
    Column("state_hash", "hash", "Chained hash after this frame: sha256(previous || this frame's payload), where the "
                                 "payload holds the frame's numbers, inputs and away flags, plus the full canonical record "
                                 "on sampled frames (see the data format document); the same on every row of the frame."),
)

FRAMES = FileSpec(
    "frames.csv", "csv", True,
    "Every confirmed step: one row per frame and agent. Only frames whose inputs were all confirmed appear here.",
    _FRAME_COLUMNS, order=("global_frame", "agent"),
)

RESETS = FileSpec(
    "resets.csv", "csv", True,
    "The reset of every confirmed episode start: one row per episode and agent, with the initial observation.",
    (
        _SESSION, _EPISODE,
        Column("seed", "int", "Seed the episode was reset with (derived from the session seed)."),
        Column("start_frame", "int", "global_frame of the episode's first step."),
        Column("agent", "str", "Agent id."),
        Column("observation", "json", "Observation returned by reset; empty when absent.", True),
        Column("info", "json", "Info returned by reset; empty when absent.", True),
    ),
    order=("episode", "agent"),
)

EPISODES = FileSpec(
    "episodes.csv", "csv", True,
    "One row per episode whose reset was confirmed.",
    (
        _SESSION, _EPISODE,
        Column("seed", "int", "Reset seed."),
        Column("start_frame", "int", "global_frame of the first step."),
        Column("frames", "int", "Confirmed steps of this episode."),
        Column("ended", "bool", "The episode's end was confirmed (false: the session stopped during it)."),
        Column("terminated", "bool", "Some agent was terminated on the last confirmed step."),
        Column("truncated", "bool", "Some agent was truncated on the last confirmed step."),
    ),
    order=("episode",),
)

BLOBS = FileSpec(
    "blobs.csv", "csv", True,
    f"Canonical JSON values too long to inline; a cell `{BLOB_PREFIX}<sha256>` refers to the row with that hash.",
    (
        Column("sha256", "hash", "sha256 of the UTF-8 JSON text."),
        Column("json", "json", "The canonical JSON text."),
    ),
    order=("sha256",),
)

TAIL = FileSpec(
    "unconfirmed_tail.csv", "csv", False,
    "Present only when the session ended partial: steps simulated but never confirmed (some input was "
    "predicted and never arrived). Predictions, not data: never mix them with frames.csv.",
    (
        _SESSION, Column("confirmed", "bool", "Always false."),
        *(c for c in _FRAME_COLUMNS if c.name not in ("session", "state_hash")),
    ),
    required=False, order=("global_frame", "agent"),
)

METADATA = FileSpec(
    "metadata.json", "json", True,
    "Provenance. The member `canonical` (package, runtime, env, config, seeds, episodes, status) is identical "
    "for every participant; `participant_local` (participant, browser, wall times, tick statistics, the "
    "session's own end reason and counters) is not.",
    canonical_member="canonical",
)

DIAG_FRAMES = FileSpec(
    "diagnostics/frames.csv", "csv", False,
    "Per-participant facts about each simulated frame (confirmed ones, then the unconfirmed tail).",
    (
        Column("global_frame", "int", "Frame."),
        Column("episode", "int", "Episode."),
        Column("frame", "int", "Step within the episode."),
        Column("confirmed", "bool", "Whether the frame was confirmed."),
        Column("speculative", "bool", "The frame was ever simulated with a predicted input on this side."),
        Column("resimulated", "int", "Times the frame was simulated again after a rollback."),
        Column("first_ms", "float", "Session clock (ms) when the frame was first simulated."),
        Column("confirmed_ms", "float", "Session clock (ms) when it was confirmed; empty if never.", True),
        Column("desynced", "bool", "A peer reported a different state hash for this frame."),
        Column("rendered", "json", "What was shown for this frame, as given by the page; empty if not given.", True),
    ),
    order=("global_frame",),
)

DIAG_ROLLBACKS = FileSpec(
    "diagnostics/rollbacks.csv", "csv", False, "Rollbacks on this side, in the order they happened.",
    (
        Column("frame", "int", "First resimulated frame."),
        Column("depth", "int", "Frames resimulated."),
        Column("seats", "json", "Seats whose inputs were mispredicted (JSON list)."),
        Column("at_ms", "float", "Session clock (ms); empty if not recorded.", True),
    ),
)

DIAG_AWAY = FileSpec(
    "diagnostics/away.csv", "csv", False,
    "Away intervals (a seat playing its declared default input). Frames come from the exported away flags "
    "unless the page provided the intervals with wall times.",
    (
        Column("seat", "int", "Seat."),
        Column("start_frame", "int", "First away frame."),
        Column("end_frame", "int", "First frame back (empty: still away at the end).", True),
        Column("start_ms", "float", "Wall or session time (ms) the seat went away; empty if unknown.", True),
        Column("end_ms", "float", "Time (ms) it came back; empty if unknown.", True),
        Column("mode", "str", "hidden, frozen, worker, ... as reported by the page; empty if unknown.", True),
    ),
)

DIAG_FAST_FORWARDS = FileSpec(
    "diagnostics/fast_forwards.csv", "csv", False, "Catch-up spans simulated in one tick after a pause.",
    (
        Column("start_frame", "int", "First frame of the span."),
        Column("end_frame", "int", "Frame after the span."),
        Column("at_ms", "float", "Session clock (ms); empty if not recorded.", True),
    ),
)

DIAG_DESYNCS = FileSpec(
    "diagnostics/desyncs.csv", "csv", False, "State-hash disagreements reported by peers.",
    (
        Column("frame", "int", "Confirmed frame whose hash differed."),
        Column("seat", "int", "Peer seat that reported it."),
        Column("local_hash", "str", "Our hash prefix (hex)."),
        Column("remote_hash", "str", "The peer's hash prefix (hex)."),
    ),
)

DIAG_NETWORK = FileSpec(
    "diagnostics/network.json", "json", False,
    "Network and session statistics from this side: RTT series, loss, frames ahead, rejected messages, counters, "
    "and (member `rejoins`, only when one happened) a partner's reconnect and rejoin, or this side's resume from "
    "its checkpoint after a reload.",
)

CODEBOOK_MD = FileSpec("codebook.md", "md", False, "This data dictionary, for people.")
CODEBOOK_JSON = FileSpec("codebook.json", "json", False, "This data dictionary, for programs.")
MANIFEST = FileSpec(
    "manifest.json", "json", False,
    "sha256 and size of every other file, which files are canonical, and `canonical_digest`: one hash over the "
    "canonical content, equal for every participant of a complete session.",
)

FILES: tuple[FileSpec, ...] = (
    FRAMES, RESETS, EPISODES, BLOBS, METADATA, TAIL,
    DIAG_FRAMES, DIAG_ROLLBACKS, DIAG_AWAY, DIAG_FAST_FORWARDS, DIAG_DESYNCS, DIAG_NETWORK,
    CODEBOOK_MD, CODEBOOK_JSON, MANIFEST,
)
FILES_BY_PATH: dict[str, FileSpec] = {f.path: f for f in FILES}


def canonical_files() -> tuple[FileSpec, ...]:
    """Files (or file parts) that must be byte-identical across participants, in bundle order."""
    return tuple(f for f in FILES if f.canonical)


def spec_for(path: str) -> FileSpec | None:
    """The declaration of a bundle path, or ``None`` for an unknown file."""
    return FILES_BY_PATH.get(path)
