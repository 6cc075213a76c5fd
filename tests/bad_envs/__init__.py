"""Envs built to fail one check-env check each; :mod:`bad_envs.line` is the correct base they break."""
