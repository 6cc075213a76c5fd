"""Envs built to exercise the env layer, snapshots, the sync test and check-env.

:mod:`env_fixtures.line` is the correct two-player env the broken ones derive from: one module per check-env
check it fails (``forgets_*``, ``global_random``, ``hidden_state``, ``nondeterministic``, ``set_iteration``,
``wall_time``, ``duck_typed``, ``compiled_dep``), and :mod:`env_fixtures.rollback_breakers` for the snapshot
verification and sync-test tests. :mod:`env_fixtures.shapes` has one env per supported or refused shape;
``broken_import``, ``standalone_env`` and ``raises_mid_session`` are loaded by file or module spec.
"""
