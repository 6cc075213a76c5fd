"""Synchronisation: input queues, prediction, the rollback timeline, time sync and the adaptive input delay."""

from pyodide_runtime.sync.input_delay import DelayController
from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import Predictor, make_predictor
from pyodide_runtime.sync.time_sync import TimeSync
from pyodide_runtime.sync.timeline import SnapshotError, Timeline

__all__ = ["DelayController", "InputQueues", "Predictor", "make_predictor", "TimeSync", "SnapshotError", "Timeline"]
