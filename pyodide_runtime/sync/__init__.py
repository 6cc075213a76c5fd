"""Synchronisation: input queues, prediction, the rollback timeline and time sync."""

from pyodide_runtime.sync.inputs import InputQueues
from pyodide_runtime.sync.prediction import Predictor, make_predictor
from pyodide_runtime.sync.time_sync import TimeSync
from pyodide_runtime.sync.timeline import SnapshotError, Timeline

__all__ = ["InputQueues", "Predictor", "make_predictor", "TimeSync", "SnapshotError", "Timeline"]
