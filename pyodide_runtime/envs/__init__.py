"""Environment adapters: every supported env shape becomes a :class:`~pyodide_runtime.envs.base.Game`.

- :mod:`~pyodide_runtime.envs.base`: the ``Game`` contract the rollback core uses;
- :mod:`~pyodide_runtime.envs.loading`: ``load_game("module:function", config)`` and ``make_game(env)``, which
  pick the adapter, record provenance and verify snapshots;
- adapters: :mod:`~pyodide_runtime.envs.parallel` (PettingZoo-style parallel envs),
  :mod:`~pyodide_runtime.envs.gym_multi` (gymnasium envs with a ``Dict``/``Tuple`` of ``Discrete`` actions) and
  :mod:`~pyodide_runtime.envs.single` (single-agent gymnasium envs), sharing :mod:`~pyodide_runtime.envs.adapter`;
- :mod:`~pyodide_runtime.envs.draw`: the draw-list frame format for the browser canvas;
- :mod:`~pyodide_runtime.examples`: ready-made envs, such as Coin Chase.

Nothing is imported here, so ``import pyodide_runtime.envs.base`` stays light.
"""
