"""The study server (CPython only): the page, the bridge and the Pyodide assets, rooms, signaling and relay.

It never runs the env's simulation and makes no netcode decision. Start it with ``pyodide-runtime serve``;
embed it with :func:`create_app`. The room registry (:class:`RoomRegistry`) is sans-IO and usable on its own.
"""

from pyodide_runtime.host.server.rooms import JoinRefused, RoomRegistry, RoomSettings
from pyodide_runtime.host.server.settings import ServerSettings
from pyodide_runtime.host.server.study import Study, StudyError, load_study

__all__ = [
    "JoinRefused",
    "RoomRegistry",
    "RoomSettings",
    "ServerSettings",
    "Study",
    "StudyError",
    "create_app",
    "load_study",
]


def __getattr__(name: str):
    # The app needs aiohttp; importing the package for the registry alone must not.
    if name == "create_app":
        from pyodide_runtime.host.server.app import create_app

        return create_app
    raise AttributeError(name)
