"""Envs built to exercise the env layer: one per supported or refused shape, and envs that break rollback."""
