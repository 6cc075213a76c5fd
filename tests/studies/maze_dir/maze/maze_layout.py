"""The maze's walls and start cells, read from a JSON data file shipped beside this module."""

from __future__ import annotations

import json
from pathlib import Path

MAPS = Path(__file__).with_name("maps")


def load_layout(name: str) -> dict:
    """``{"walls": [[x, y], ...], "starts": [[x, y], [x, y]], "goal": [x, y], "size": [w, h]}``."""
    return json.loads((MAPS / f"{name}.json").read_text())
