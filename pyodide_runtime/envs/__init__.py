"""Environment adapters: every supported env shape becomes a :class:`~pyodide_runtime.envs.base.Game`."""
