"""The host-side Pyodide runner reports Python errors clearly instead of a wall of minified JavaScript."""

from __future__ import annotations

import pytest

from pyodide_runtime.host.assets import AssetError
from pyodide_runtime.host.pyodide_host import PyodideHostError, run_in_pyodide

pytestmark = pytest.mark.pyodide


def test_python_exception_inside_pyodide_surfaces_its_traceback():
    with pytest.raises(PyodideHostError) as err:
        run_in_pyodide("def broken():\n    raise ValueError('bad env config 42')\nbroken()\n")
    message = str(err.value)
    assert "ValueError: bad env config 42" in message
    assert "var Module=" not in message  # no minified runtime source in the report


def test_params_in_and_result_out():
    out = run_in_pyodide("import sys\nresult = {'doubled': [x * 2 for x in params['xs']], 'platform': sys.platform}",
                         {"xs": [1, 2, 3]})
    assert out.result == {"doubled": [2, 4, 6], "platform": "emscripten"}
    assert out.boot_ms > 0 and out.packages_ms > 0


def test_missing_assets_say_how_to_fetch(tmp_path):
    with pytest.raises(AssetError, match="assets fetch"):
        run_in_pyodide("result = 1", assets=tmp_path)


def test_a_missing_lock_file_is_named(tmp_path):
    with pytest.raises(PyodideHostError, match="nope.json"):
        run_in_pyodide("result = 1", lock=tmp_path / "nope.json")
