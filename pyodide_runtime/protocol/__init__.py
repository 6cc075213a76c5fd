"""The peer-to-peer wire protocol: message types and their compact binary codec (no I/O)."""

from pyodide_runtime.protocol.codec import MAX_PACKET, PROTOCOL_VERSION, DecodeError, decode, encode
from pyodide_runtime.protocol.messages import AWAY_BIT, Echo, Goodbye, GoodbyeReason, Hello, Inputs, Resume

__all__ = [
    "AWAY_BIT",
    "MAX_PACKET",
    "PROTOCOL_VERSION",
    "DecodeError",
    "Echo",
    "Goodbye",
    "GoodbyeReason",
    "Hello",
    "Inputs",
    "Resume",
    "decode",
    "encode",
]
