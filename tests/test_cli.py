"""The command line: help, module entry point, and clean errors for wrong arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyodide_runtime import __version__
from pyodide_runtime.host.cli import build_parser, main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "assets" in out and "usage: pyodide-runtime" in out


def _available_commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return list(sub.choices)


def test_every_listed_command_has_help(capsys):
    assert "assets" in _available_commands()
    for name in _available_commands():
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
        assert f"pyodide-runtime {name}" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "pyodide_runtime", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_unknown_command_and_bad_option_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["assets", "fetch", "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_core_import_stays_light():
    """Importing the package must not pull in server-only or heavy dependencies (it must load fast in Pyodide)."""
    code = "import sys, pyodide_runtime; print(sorted(m for m in ('aiohttp', 'numpy', 'gymnasium', 'playwright') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]"
