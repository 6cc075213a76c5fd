"""What runs on the researcher's machine: the command line, the server, assets, checks, replay and benchmarks.

Nothing under ``pyodide_runtime.host`` is imported by the browser core (the rest of the package), which is what a
participant's page loads; ``tests/test_import_boundary.py`` enforces it.
"""
