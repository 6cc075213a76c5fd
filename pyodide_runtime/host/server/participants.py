"""Participant ids as recruitment platforms pass them in the study URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PARTICIPANT_PARAMS", "MAX_LENGTH", "participant_from"]

#: Query parameters that carry the participant id, in order of preference (Prolific, generic, MTurk, ...).
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "participant", "participant_id", "participantId", "workerId", "worker_id", "PID")
MAX_LENGTH = 128

_DROP = re.compile(r"[^A-Za-z0-9._~@+:-]")


def participant_from(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(participant id, the parameter it came from)``, or ``(None, None)``.

    The id keeps letters, digits and ``._~@+:-`` as given (anything else is dropped) and is cut to
    :data:`MAX_LENGTH` characters. It is data for the export's metadata only: never a file name, never logged.
    """
    for key in PARTICIPANT_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value:
            clean = _DROP.sub("", value)[:MAX_LENGTH]
            if clean:
                return clean, key
    return None, None
