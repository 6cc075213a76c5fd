"""Example environments that ship with the package.

- ``pyodide_runtime.envs.examples.coin_chase:make_env``: Coin Chase, a 2-4 player grid game (see its module).
"""
