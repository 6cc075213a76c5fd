"""Serve a study: the participant page, the bridge and the self-hosted Pyodide assets, plus rooms, WebRTC
signaling and the relay fallback, and (with --data-dir) uploads of export bundles.

Send participants the printed study URL. The first ones to open it (session.players, 2 by default) play
together; a private room is made with POST /rooms or the link ?room=new. Logs are JSON lines on stderr. Stop
with Ctrl-C or SIGTERM.

The study is configured with one TOML (or JSON) file, documented in docs/study-config.md. Examples::

    pyodide-runtime serve --example pong                    # an example study shipped with the package
    pyodide-runtime serve --config study.toml --data-dir data/
    pyodide-runtime serve --env my_study/env.py:make_env --config study.json
"""

from __future__ import annotations

import argparse

from pyodide_runtime.host.server.start import configure

__all__ = ["configure", "run"]


def run(args: argparse.Namespace) -> int:
    from pyodide_runtime.host.cli import CommandError
    from pyodide_runtime.host.server.start import StartError, start

    try:
        return start(args)
    except StartError as exc:
        raise CommandError(str(exc)) from None
