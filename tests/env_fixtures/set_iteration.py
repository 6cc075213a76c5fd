"""Picks the pushed player by iterating a set of strings, whose order depends on PYTHONHASHSEED."""

from __future__ import annotations

from env_fixtures.line import LineEnv

NAMES = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}


class SetOrderEnv(LineEnv):
    def push(self) -> tuple[int, int]:
        _, push = super().push()
        name = list(NAMES)[self.t % len(NAMES)]  # the set's order differs under each hash seed
        return sorted(NAMES).index(name) % 2, push


def make_env(config: dict | None = None) -> SetOrderEnv:
    return SetOrderEnv(config)
