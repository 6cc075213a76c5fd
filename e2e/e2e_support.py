"""Support code for browser tests: the repository root and a tiny threaded static file server."""

from __future__ import annotations

import functools
import http.server
import mimetypes
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Module scripts must be served with a JavaScript type, and wasm with application/wasm for streaming compile.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, mounts: dict[str, Path], **kwargs):
        self.mounts = mounts
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, root in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if clean.startswith(prefix):
                rel = clean[len(prefix):].lstrip("/")
                target = (root / rel).resolve()
                if root.resolve() in target.parents or target == root.resolve():
                    return str(target)
        return str(Path("/nonexistent"))

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass


class StaticServer:
    """Serve ``mounts`` ({"/assets/": dir, ...}) on 127.0.0.1 on a free port, in a background thread."""

    def __init__(self, mounts: dict[str, Path]) -> None:
        handler = functools.partial(_Handler, mounts=mounts)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "StaticServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
