"""The instruction-count benchmark: its measured session and its argument checks (valgrind itself is not needed)."""

from __future__ import annotations

import pytest

from pyodide_runtime.host.benchmarks import instructions


def test_the_measured_session_completes_identically_for_the_frames_asked():
    instructions.run_session(60)  # raises SystemExit unless both peers hold 60 identical frames


@pytest.mark.parametrize("argv", [["--short", "0"], ["--short", "500", "--long", "400"]])
def test_bad_frame_counts_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        instructions.main(argv)
    assert exc.value.code == 2
    assert "need 0 < --short < --long" in capsys.readouterr().err
