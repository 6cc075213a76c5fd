"""Browser-test access to the automated participants (:mod:`pyodide_runtime.host.headless`)."""

from __future__ import annotations

from pathlib import Path

from pyodide_runtime.host.headless import (  # noqa: F401  (re-exported for the tests)
    COIN_CHASE,
    Player,
    StudyServer,
    chromium_path,
    free_port,
    run_cli,
    wait_for,
)


def play_to_the_end(assets: Path, workdir: Path, config: Path, queries: list[str], timeout: float) -> tuple[list[Path], list[dict]]:
    """Serve ``config`` and open one automated participant per URL query; return each one's first downloaded
    bundle and final status once all have one. On a timeout the consoles and statuses go to ``workdir/evidence``."""
    import pytest
    from playwright.sync_api import sync_playwright

    with StudyServer(workdir / "server", config, assets=assets, env=None) as server, sync_playwright() as pw:
        players = [Player(pw, f"p{i}", workdir / f"p{i}") for i in range(len(queries))]
        try:
            for p, query in zip(players, queries):
                p.open(f"{server.url}/?{query}")
            try:
                bundles = wait_for(lambda: (lambda b: [x[0] for x in b] if all(b) else None)(
                    [p.bundles() for p in players]), timeout, f"{len(players)} participant export(s)")
            except TimeoutError as exc:
                evidence = workdir / "evidence"
                for p in players:
                    p.save_evidence(evidence)
                pytest.fail(f"{exc}; consoles and status saved in {evidence}")
            statuses = [p.status() for p in players]
        finally:
            for p in players:
                p.close()
    return bundles, statuses
