"""Binary encoding of protocol messages (``struct`` based, network byte order).

Every packet starts with ``magic, version, type, seat`` (4 bytes). Input runs are run-length encoded, which
keeps a packet around 25 bytes while inputs are steady and bounds it when a peer resends a long unacked tail.
:func:`decode` checks structure only and raises :class:`DecodeError` with a ``kind`` the session counts.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pyodide_runtime.protocol.messages import Echo, Goodbye, GoodbyeReason, Hello, Inputs, Resume

__all__ = [
    "PROTOCOL_VERSION", "MAX_PACKET", "MAX_RUNS", "DecodeError", "encode", "encode_inputs", "decode", "fit_values",
    "decode_inputs_fields",
    "peek_header", "encode_echo", "T_RESUME", "T_ECHO",
]

PROTOCOL_VERSION = 1
MAGIC = 0xB7
#: Larger packets are rejected unread.
MAX_PACKET = 1024
#: At most this many input runs per packet; a longer unacked tail is sent over several packets.
MAX_RUNS = 255
_HASH_SIZE = 8

T_HELLO, T_INPUTS, T_GOODBYE, T_RESUME, T_ECHO = 1, 2, 3, 4, 5

_HEADER = struct.Struct("!BBBB")
_HELLO = struct.Struct("!BB16sQ")
_INPUTS = struct.Struct("!IIIIbBB")  # seq, frame, ack, start, advantage, flags, runs
_HASH = struct.Struct("!I8s")
_GOODBYE = struct.Struct("!BI")
_RESUME = struct.Struct("!IIB16sQ")  # nonce, confirmed, players, config digest, seed; then env id and version
_ECHO = struct.Struct("!IIIIIB")  # nonce, seq, frame, held, start, runs
_RUN = struct.Struct("!HB")
_F_HASH = 1
# The steady-state packet: header, inputs fields and one run (one held input), with or without the hash.
_ONE_RUN = struct.Struct("!BBBBIIIIbBBHB")
_ONE_RUN_HASH = struct.Struct("!BBBBIIIIbBBHBI8s")
_FLAGS_AT = 4 + 16 + 1  # byte offsets of an input packet's flags and run count (header, four uint32, advantage)
_RUNS_AT = _FLAGS_AT + 1


class DecodeError(ValueError):
    """A packet that cannot be decoded. ``kind``: malformed, oversized, version, unknown_type."""

    def __init__(self, kind: str, detail: str = "", version: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.version = version


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")[:255]
    return bytes((len(raw),)) + raw


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    last, count = -1, 0
    for v in values:
        if v == last and count < 255:
            count += 1
        else:
            if count:
                runs.append((last, count))
            last, count = v, 1
    if count:
        runs.append((last, count))
    return runs


def encode(message: Hello | Inputs | Goodbye | Resume | Echo) -> bytes:
    """Encode one message. Raises ``ValueError`` for values that do not fit the format."""
    if isinstance(message, Inputs):
        runs = _runs(message.values)
        if len(runs) > MAX_RUNS:
            raise ValueError(f"too many input runs ({len(runs)} > {MAX_RUNS}); send fewer values")
        has_hash = message.hash_frame >= 0
        parts = [
            _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_INPUTS, message.seat),
            _INPUTS.pack(
                message.seq, message.frame, message.ack, message.start,
                max(-128, min(127, message.advantage)), _F_HASH if has_hash else 0, len(runs),
            ),
        ]
        parts.extend(_RUN.pack(v, n) for v, n in runs)
        if has_hash:
            parts.append(_HASH.pack(message.hash_frame, message.state_hash[:_HASH_SIZE].ljust(_HASH_SIZE, b"\0")))
        return b"".join(parts)
    if isinstance(message, Hello):
        return b"".join((
            _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_HELLO, message.seat),
            _HELLO.pack(message.players, message.heard, message.config_digest, message.seed),
            _text(message.env_id),
            _text(message.env_version),
        ))
    if isinstance(message, Goodbye):
        return _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_GOODBYE, message.seat) + _GOODBYE.pack(
            int(message.reason), message.final_frames
        )
    if isinstance(message, Resume):
        return b"".join((
            _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_RESUME, message.seat),
            _RESUME.pack(message.nonce, message.confirmed, message.players, message.config_digest, message.seed),
            _text(message.env_id),
            _text(message.env_version),
        ))
    if isinstance(message, Echo):
        runs = _runs(message.values)
        if len(runs) > MAX_RUNS:
            raise ValueError(f"too many input runs ({len(runs)} > {MAX_RUNS}); use encode_echo")
        if message.values and message.start + len(message.values) > message.held:
            raise ValueError("an echo holds values only below held")
        return b"".join((
            _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_ECHO, message.seat),
            _ECHO.pack(message.nonce, message.seq, message.frame, message.held, message.start, len(runs)),
            *(_RUN.pack(v, n) for v, n in runs),
        ))
    raise TypeError(f"not a protocol message: {type(message).__name__}")


def encode_echo(
    seat: int, nonce: int, seq: int, frame: int, held: int, start: int, values: Sequence[int],
) -> list[bytes]:
    """The :class:`Echo` answer for ``values`` (frames ``start ..``), split into packets within the size limits.

    Always at least one packet (an answer without values says how many inputs the sender holds).
    """
    packets = []
    head = _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_ECHO, seat)
    offset = 0
    while True:
        runs, count = _packed_runs(values[offset:])
        packets.append(head + _ECHO.pack(nonce, seq, frame, held, start + offset, len(runs)) + b"".join(runs))
        offset += count
        if offset >= len(values):
            return packets


def encode_inputs(
    seat: int, seq: int, frame: int, ack: int, advantage: int, start: int, values: Sequence[int],
    hash_frame: int = -1, state_hash: bytes = b"",
) -> tuple[bytes, int]:
    """Encode an :class:`Inputs` message carrying as many leading ``values`` as fit in one packet.

    Returns ``(packet, count)``: the packet is exactly ``encode(Inputs(seat, seq, frame, ack, advantage, start,
    tuple(values[:count]), hash_frame, state_hash))`` with ``count = fit_values(values)``, built in one pass and
    without the message object (the session sends one per peer per tick).
    """
    count = len(values)
    if 0 < count <= 255 and values.count(values[0]) == count:  # the common case: one held input, one pack
        adv = -128 if advantage < -128 else 127 if advantage > 127 else advantage
        if hash_frame >= 0:
            return _ONE_RUN_HASH.pack(
                MAGIC, PROTOCOL_VERSION, T_INPUTS, seat, seq, frame, ack, start, adv, _F_HASH, 1, values[0], count,
                hash_frame, state_hash[:_HASH_SIZE].ljust(_HASH_SIZE, b"\0"),
            ), count
        return _ONE_RUN.pack(MAGIC, PROTOCOL_VERSION, T_INPUTS, seat, seq, frame, ack, start, adv, 0, 1, values[0],
                             count), count
    else:
        runs, count = _packed_runs(values)
    has_hash = hash_frame >= 0
    head = _HEADER.pack(MAGIC, PROTOCOL_VERSION, T_INPUTS, seat) + _INPUTS.pack(
        seq, frame, ack, start, -128 if advantage < -128 else 127 if advantage > 127 else advantage,
        _F_HASH if has_hash else 0, len(runs),
    )
    if has_hash:
        runs.append(_HASH.pack(hash_frame, state_hash[:_HASH_SIZE].ljust(_HASH_SIZE, b"\0")))
    return head + b"".join(runs), count


def _packed_runs(values: Sequence[int]) -> tuple[list[bytes], int]:
    """The packed runs of the leading ``values`` that fit in one packet, and how many values they hold."""
    runs: list[bytes] = []
    pack_run = _RUN.pack
    count = 0
    last, length = -1, 0
    for v in values:
        if v == last and length < 255:
            length += 1
        else:
            if length:
                if len(runs) == MAX_RUNS - 1:
                    break  # the pending run is the last that fits; the value that starts a new one does not
                runs.append(pack_run(last, length))
            last, length = v, 1
        count += 1
    if length:
        runs.append(pack_run(last, length))
    return runs, count


def peek_header(data: bytes) -> tuple[int, int, int]:
    """``(version, type, seat)`` of a packet, validating only the magic byte and length."""
    if len(data) < _HEADER.size or data[0] != MAGIC:
        raise DecodeError("malformed", "bad header")
    return data[1], data[2], data[3]


def decode(data: bytes) -> Hello | Inputs | Goodbye:
    """Decode one packet, or raise :class:`DecodeError`."""
    if len(data) > MAX_PACKET:
        raise DecodeError("oversized", f"{len(data)} bytes")
    version, kind, seat = peek_header(data)
    if version != PROTOCOL_VERSION:
        raise DecodeError("version", f"protocol version {version}", version=version)
    try:
        if kind == T_INPUTS:
            return _decode_inputs(data, seat)
        if kind == T_HELLO:
            return _decode_hello(data, seat)
        if kind == T_GOODBYE:
            reason, final = _GOODBYE.unpack_from(data, 4)
            if len(data) != 4 + _GOODBYE.size:
                raise DecodeError("malformed", "trailing bytes")
            return Goodbye(seat, GoodbyeReason(reason), final)
        if kind == T_RESUME:
            return _decode_resume(data, seat)
        if kind == T_ECHO:
            return _decode_echo(data, seat)
    except (struct.error, ValueError, UnicodeDecodeError, IndexError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError("malformed", str(exc)) from None
    raise DecodeError("unknown_type", f"type {kind}")


def _decode_inputs(data: bytes, seat: int) -> Inputs:
    return Inputs(seat, *_inputs_fields(data))


def decode_inputs_fields(data: bytes) -> tuple[int, int, int, int, int, tuple[int, ...], int, bytes] | None:
    """The fields of an :class:`Inputs` packet after its seat (``seq, frame, ack, advantage, start, values,
    hash_frame, state_hash``), or ``None`` when ``data`` is not a current-version input packet.

    The session's per-tick receive path: no message object, and each packet is parsed once. A malformed input
    packet raises :class:`DecodeError` (``malformed``); anything that is not an input packet goes through
    :func:`decode`, which says what it is or what is wrong with it.
    """
    n = len(data)
    if n > MAX_PACKET or n < 4 or data[0] != MAGIC or data[1] != PROTOCOL_VERSION or data[2] != T_INPUTS:
        return None
    if n > _RUNS_AT and data[_RUNS_AT] == 1:  # one held input: everything in one unpack
        if n == _ONE_RUN.size and data[_FLAGS_AT] == 0:
            _, _, _, _, seq, frame, ack, start, adv, _, _, v, count = _ONE_RUN.unpack(data)
            hash_frame, state_hash = -1, b""
        elif n == _ONE_RUN_HASH.size and data[_FLAGS_AT] == _F_HASH:
            _, _, _, _, seq, frame, ack, start, adv, _, _, v, count, hash_frame, state_hash = _ONE_RUN_HASH.unpack(data)
        else:
            count = -1
        if count == 0:
            raise DecodeError("malformed", "empty run")
        if count > 0:
            return seq, frame, ack, adv, start, (v,) * count, hash_frame, state_hash
    try:
        return _inputs_fields(data)
    except DecodeError:
        raise
    except (struct.error, ValueError, IndexError) as exc:
        raise DecodeError("malformed", str(exc)) from None


def _inputs_fields(data: bytes) -> tuple[int, int, int, int, int, tuple[int, ...], int, bytes]:
    seq, frame, ack, start, adv, flags, nruns = _INPUTS.unpack_from(data, 4)
    if flags & ~_F_HASH:
        raise DecodeError("malformed", "unknown flags")
    offset = 4 + _INPUTS.size
    values: list[int] = []
    if nruns == 1 and len(data) >= offset + _RUN.size:  # the common case: one held input
        v, n = _RUN.unpack_from(data, offset)
        if n == 0:
            raise DecodeError("malformed", "empty run")
        values = [v] * n
        offset += _RUN.size
    else:
        values, offset = _decode_runs(data, offset, nruns)
    hash_frame, state_hash = -1, b""
    if flags & _F_HASH:
        hash_frame, state_hash = _HASH.unpack_from(data, offset)
        offset += _HASH.size
    if offset != len(data):
        raise DecodeError("malformed", "trailing bytes")
    return seq, frame, ack, adv, start, tuple(values), hash_frame, state_hash


def _decode_runs(data: bytes, offset: int, nruns: int) -> tuple[list[int], int]:
    """``nruns`` (value, count) runs from ``offset``: the values they expand to and the offset after them."""
    values: list[int] = []
    for _ in range(nruns):
        v, n = _RUN.unpack_from(data, offset)
        if n == 0:
            raise DecodeError("malformed", "empty run")
        values.extend((v,) * n)
        offset += _RUN.size
    return values, offset


def _texts(data: bytes, offset: int) -> list[str]:
    texts = []
    for _ in range(2):
        n = data[offset]
        raw = data[offset + 1 : offset + 1 + n]
        if len(raw) != n:
            raise DecodeError("malformed", "truncated text")
        texts.append(raw.decode("utf-8"))
        offset += 1 + n
    if offset != len(data):
        raise DecodeError("malformed", "trailing bytes")
    return texts


def _decode_hello(data: bytes, seat: int) -> Hello:
    players, heard, cfg, seed = _HELLO.unpack_from(data, 4)
    texts = _texts(data, 4 + _HELLO.size)
    return Hello(seat, players, texts[0], texts[1], cfg, seed, heard)


def _decode_resume(data: bytes, seat: int) -> Resume:
    nonce, confirmed, players, cfg, seed = _RESUME.unpack_from(data, 4)
    texts = _texts(data, 4 + _RESUME.size)
    return Resume(seat, nonce, confirmed, players, texts[0], texts[1], cfg, seed)


def _decode_echo(data: bytes, seat: int) -> Echo:
    nonce, seq, frame, held, start, nruns = _ECHO.unpack_from(data, 4)
    offset = 4 + _ECHO.size
    if len(data) != offset + nruns * _RUN.size:
        raise DecodeError("malformed", "echo length")
    values, offset = _decode_runs(data, offset, nruns)
    if values and start + len(values) > held:
        raise DecodeError("malformed", "echo values past held")
    return Echo(seat, nonce, seq, frame, held, start, tuple(values))


def fit_values(values: tuple[int, ...] | list[int], max_runs: int = MAX_RUNS) -> int:
    """How many leading ``values`` fit in one packet (at most ``max_runs`` runs)."""
    runs, last, count = 0, -1, 0
    for i, v in enumerate(values):
        if v != last or count == 255:
            runs += 1
            if runs > max_runs:
                return i
            last, count = v, 0
        count += 1
    return len(values)
