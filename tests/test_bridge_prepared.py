"""A game built before the seat is known (``prepare_game``) plays exactly like one the Bridge builds itself."""

from __future__ import annotations

import json

import pytest

from pyodide_runtime.bridge import Bridge, prepare_game
from pyodide_runtime.host.compare import compare
from pyodide_runtime.host.testing import LinkSpec

from test_bridge import run_pair, study


def play(bridges: list[Bridge]) -> list[bytes]:
    """Tick two bridges over a lossy, late network with random inputs until both ended; their bundles."""
    _, outs = run_pair({}, link=LinkSpec(latency_ms=60, jitter_ms=10, loss=0.1), bridges=bridges)
    bundles = [next((o["bundle"] for o in outs[seat] if o["bundle"] is not None), None) for seat in range(2)]
    assert all(b is not None for b in bundles), "both sessions must end with a bundle"
    return bundles  # type: ignore[return-value]


def bridges(desc: dict, prepared: tuple[bool, bool]) -> list[Bridge]:
    text = json.dumps(desc)
    out = []
    for seat in range(2):
        game = prepare_game(text) if prepared[seat] else None
        bridge = Bridge(text, seat, room="room-token", participant=f"p{seat}", page={"user_agent": "test"}, game=game)
        if game is not None:
            assert bridge.game is game, "the Bridge must play the game it was handed"
        out.append(bridge)
    return out


def test_a_prepared_game_gives_the_same_exports_as_a_game_the_bridge_builds(tmp_path):
    desc = study(episodes=2, max_steps=60)
    baseline = bridges(desc, (False, False))
    base = play(baseline)
    assert sum(b.session.stats["rollbacks"] for b in baseline) > 0, "latency must have caused rollbacks"
    mixed = bridges(desc, (True, False))
    got = play(mixed)
    assert all(b.session.outcome == "complete" for b in mixed)
    paths = {}
    for name, data in (("base0", base[0]), ("base1", base[1]), ("got0", got[0]), ("got1", got[1])):
        paths[name] = tmp_path / f"{name}.zip"
        paths[name].write_bytes(data)
    # The peers agree, and the prepared game's page exports what the same seat exported without preparation.
    assert compare(str(paths["got0"]), str(paths["got1"])).identical
    assert compare(str(paths["got0"]), str(paths["base0"])).identical
    assert compare(str(paths["got1"]), str(paths["base1"])).identical


def test_prepare_game_raises_what_the_bridge_would_for_an_env_that_cannot_be_loaded():
    desc = study()
    desc["env"]["spec"] = "pyodide_runtime.examples.does_not_exist:make_env"
    with pytest.raises(Exception) as prepared:
        prepare_game(json.dumps(desc))
    with pytest.raises(type(prepared.value)):
        Bridge(json.dumps(desc), 0)
