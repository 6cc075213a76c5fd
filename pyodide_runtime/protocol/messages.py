"""Protocol messages as plain data.

Frames are *global* frame numbers: they count every simulated step of the session across episodes, so inputs
can flow across an episode boundary without negotiation.

An input value is the seat's discrete action, with :data:`AWAY_BIT` set when the seat was away for that frame
(the action is then the seat's declared default).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["AWAY_BIT", "Hello", "Inputs", "Goodbye", "GoodbyeReason", "Resume", "Echo"]

#: Flag carried in an input value: the seat was away and plays its default action.
AWAY_BIT = 0x8000


@dataclass(frozen=True, slots=True)
class Hello:
    """Handshake: who I am and what I run. ``heard`` is a bitmask of the seats whose Hello I have received."""

    seat: int
    players: int
    env_id: str
    env_version: str
    config_digest: bytes
    seed: int
    heard: int


@dataclass(frozen=True, slots=True)
class Inputs:
    """The sender's unacknowledged inputs plus acks, time-sync data and (sometimes) a confirmed-frame hash.

    ``values[i]`` is the sender's input for frame ``start + i``. ``ack`` is the number of the receiver's inputs
    the sender holds contiguously (so the receiver may stop resending frames below it). ``frame`` is the
    sender's current frame and ``advantage`` its measured lead over the receiver, for time sync.
    """

    seat: int
    seq: int
    frame: int
    ack: int
    advantage: int
    start: int
    values: tuple[int, ...]
    hash_frame: int = -1
    state_hash: bytes = b""


class GoodbyeReason(IntEnum):
    """Why a peer leaves."""

    COMPLETE = 0
    LEFT = 1
    AWAY_TIMEOUT = 2
    HANDSHAKE_FAILED = 3
    ERROR = 4


@dataclass(frozen=True, slots=True)
class Goodbye:
    """The sender leaves. ``final_frames`` is the number of frames its session ended with (0 if unknown)."""

    seat: int
    reason: GoodbyeReason
    final_frames: int


@dataclass(frozen=True, slots=True)
class Resume:
    """A reloaded page rebuilt its session from a checkpoint of ``confirmed`` frames and asks to rejoin.

    Sent by the resuming seat until every peer has answered with :class:`Echo`. ``nonce`` tells one rejoin from
    the next (a page reloaded twice). The rest is what a :class:`Hello` carries, so a peer can check that the
    resuming page runs the same session.
    """

    seat: int
    nonce: int
    confirmed: int
    players: int
    env_id: str
    env_version: str
    config_digest: bytes
    seed: int


@dataclass(frozen=True, slots=True)
class Echo:
    """A running peer's answer to :class:`Resume`: the *resuming* seat's own inputs it holds.

    ``seat`` is the sender (the running peer). ``values[i]`` is the resuming seat's input for frame
    ``start + i``; the sender holds that seat's inputs for frames ``0 .. held - 1``, and the values of one
    answer (possibly several packets) cover ``confirmed .. held - 1``. ``seq``: the sender now ignores input
    packets of the resuming seat numbered ``seq`` or below (its previous page's, still in flight). ``frame``: the
    sender's current frame, which the resuming page catches up to.
    """

    seat: int
    nonce: int
    seq: int
    frame: int
    held: int
    start: int
    values: tuple[int, ...]
