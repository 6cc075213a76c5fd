"""Subcommands of the pyodide-runtime CLI, one module each."""
