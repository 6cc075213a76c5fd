"""pyodide_runtime: rollback netcode for gymnasium experiments in participants' browsers.

The import is deliberately light: nothing here pulls in server-only dependencies, so the package loads fast
inside Pyodide. Import the parts you need from their modules.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
