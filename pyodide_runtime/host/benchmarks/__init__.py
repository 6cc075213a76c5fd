"""Benchmarks that run in CPython and inside Pyodide: import a suite module and call it."""
