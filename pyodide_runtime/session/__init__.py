"""The sans-IO rollback session (:class:`Session`), its events and how it ends.

``core`` holds the session's state machine, ``peer`` the protocol with one remote seat, ``resume`` the rejoin of a
reloaded page from its checkpoint, ``pacing`` how many frames wall time asks for, ``events`` what a tick reports,
``state`` the states and end causes, ``errors`` how an env's exception is described.
"""

from pyodide_runtime.session.core import Session, TickResult
from pyodide_runtime.session.errors import describe_error
from pyodide_runtime.session.events import (
    DesyncDetected, EpisodeEnded, Event, FastForward, HandshakeFailed, InputDelayChanged, PeerAway, PeerBack,
    PeerReconnecting, PeerRejoined, Resumed, RollbackEvent, SessionEnded, Stalled, Started,
)
from pyodide_runtime.session.peer import REJECT_KINDS, PeerLink
from pyodide_runtime.session.resume import ResumeError, ResumePoint
from pyodide_runtime.session.state import End, EndCause, Outcome, SessionState
from pyodide_runtime.sync.timeline import SnapshotError

__all__ = [
    "Session", "TickResult", "SnapshotError", "SessionState", "Outcome", "EndCause", "End", "PeerLink",
    "Event", "Started", "RollbackEvent", "EpisodeEnded", "DesyncDetected", "PeerAway", "PeerBack", "FastForward",
    "Stalled", "HandshakeFailed", "SessionEnded", "REJECT_KINDS", "describe_error", "PeerReconnecting",
    "PeerRejoined", "Resumed", "ResumeError", "ResumePoint", "InputDelayChanged",
]
