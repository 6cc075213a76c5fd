"""Example studies that ship with the package: an env module and a study config (TOML) each.

- ``pong``: a competitive real-time two-player game (:mod:`pyodide_runtime.examples.pong`);
- ``kitchen``: a cooperative two-player cooking game (:mod:`pyodide_runtime.examples.kitchen`);
- ``human_ai``: one participant cooks with a scripted Python partner (:mod:`pyodide_runtime.examples.human_ai`).

Run one with ``pyodide-runtime serve --example NAME``; find their config files with
:func:`pyodide_runtime.host.study_config.example_config`.
"""
