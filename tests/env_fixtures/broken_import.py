"""A factory module whose import fails, to check the loader reports the underlying error."""

import this_module_does_not_exist_anywhere  # noqa: F401


def make_env(config=None):
    return None
