"""The loader: typed tables that parse back to the exact exported values, with each backend."""

from __future__ import annotations

import importlib
import io
import math

import pytest

from pyodide_runtime.canonical import canonical_json
from pyodide_runtime.config import SessionConfig
from pyodide_runtime.host.data import decode, load
from pyodide_runtime.export import ExportContext, write_bundle
from test_export_support import OddGame, coin_bundle, drive_log, unzip


@pytest.fixture(scope="module")
def bundle():
    data, log = coin_bundle(0, frames=60, mispredict=[5])
    return data, log


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def test_python_backend_round_trips(bundle):
    data, log = bundle
    b = load(data, backend="python", decode_json=True)
    assert len(b.frames) == 2 * len(log.confirmed)
    for row in b.frames:
        rec = log.confirmed[row["global_frame"]]
        agent = row["agent"]
        assert (row["episode"], row["frame"]) == (rec.episode, rec.frame)
        assert row["input"] == rec.inputs[row["seat"]] and row["away"] is rec.away[row["seat"]]
        assert row["action"] == rec.actions[agent] and row["reward"] == rec.rewards[agent]
        assert row["terminated"] is rec.terminated[agent] and row["truncated"] is rec.truncated[agent]
        assert canonical_json(row["observation"]) == canonical_json(rec.observations[agent])
        assert canonical_json(row["info"]) == canonical_json(rec.infos[agent])
        assert row["state_hash"] == rec.state_hash
    assert [r["episode"] for r in b.episodes] == [0, 1]
    assert [r["agent"] for r in b.resets if r["episode"] == 0] == ["player_0", "player_1"]
    assert b.tail is None and b.complete
    assert b.diagnostics["rollbacks"] == [{"frame": 5, "depth": 1, "seats": [0], "at_ms": None}]
    assert b.metadata["participant_local"]["user_agent"] == "agent-0"


def test_pandas_frames_in_one_line(bundle):
    pd = importlib.import_module("pandas")
    data, log = bundle
    frames = load(data).frames
    assert isinstance(frames, pd.DataFrame)
    assert list(frames.columns)[:5] == ["session", "episode", "frame", "global_frame", "agent"]
    assert str(frames["reward"].dtype) == "float64" and str(frames["episode"].dtype) == "int64"
    assert frames["terminated"].dtype == bool
    rewards = frames.groupby("episode")["reward"].sum()
    want = {}
    for rec in log.confirmed:
        want[rec.episode] = want.get(rec.episode, 0.0) + sum(rec.rewards.values())
    assert rewards.to_dict() == pytest.approx(want)
    obs = decode(frames.loc[0, "observation"])
    assert obs == log.confirmed[0].observations["player_0"]


def test_polars_backend(bundle):
    pl = importlib.import_module("polars")
    data, log = bundle
    frames = load(data, backend="polars").frames
    assert isinstance(frames, pl.DataFrame) and frames.height == 2 * len(log.confirmed)
    assert frames.schema["reward"] == pl.Float64 and frames.schema["away"] == pl.Boolean


def test_csv_reads_directly_with_pandas_and_polars(bundle):
    pd = importlib.import_module("pandas")
    pl = importlib.import_module("polars")
    files = unzip(bundle[0])
    direct = pd.read_csv(io.BytesIO(files["frames.csv"]))
    loaded = load(bundle[0]).frames
    assert len(direct) == len(loaded)
    assert direct["away"].dtype == bool and direct["reward"].dtype == "float64"
    assert (direct["reward"] == loaded["reward"]).all()
    assert pl.read_csv(files["frames.csv"]).shape == direct.shape


def test_odd_values_with_pandas_keep_exact_floats_and_missing_cells():
    importlib.import_module("pandas")
    game = OddGame()
    config = SessionConfig(episodes=1)
    log = drive_log(game, config, [(1,)] * 6)
    ctx = ExportContext(study="s", session="s", participant="p", seat=0, config=config, env=game.describe(),
                        agents=game.agents, seats=game.seats, inline_limit=512)
    b = load(write_bundle(log, ctx))
    frames = b.frames
    mine = frames[frames["agent"] == "a,1"]
    for (_, row), rec in zip(mine.iterrows(), log.confirmed):
        assert _same_float(row["reward"], rec.rewards["a,1"])
        assert canonical_json(b.decode(row["observation"])) == canonical_json(rec.observations["a,1"])
    bots = frames[frames["agent"] == "bot"]
    assert bots["truncated"].isna().all() and bots["seat"].isna().all()
    assert str(bots["seat"].dtype) == "Int64"


def test_unknown_backend_is_refused(bundle):
    with pytest.raises(ValueError):
        load(bundle[0], backend="spreadsheet")


def test_without_pandas_auto_gives_plain_lists(bundle, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    b = load(bundle[0])
    assert b.backend == "python" and isinstance(b.frames, list) and b.frames[0]["agent"] == "player_0"
