"""Choose an action from a model's scores: argmax (ties to the lowest index) or a seeded softmax sample."""

from __future__ import annotations

import numpy as np

__all__ = ["argmax_action", "sample_action", "softmax"]


def argmax_action(scores: np.ndarray) -> int:
    """Index of the highest score; ties go to the lowest index; NaN scores never win."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = np.where(np.isnan(values), -np.inf, values)
    return int(np.argmax(values))


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities from scores divided by ``temperature`` (float64, numerically stable)."""
    values = np.asarray(scores, dtype=np.float64).ravel() / float(temperature)
    values = np.where(np.isnan(values), -np.inf, values)
    top = np.max(values)
    if not np.isfinite(top):
        return np.full(values.size, 1.0 / values.size)
    weights = np.exp(values - top)
    return weights / weights.sum()


def sample_action(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One draw from ``softmax(scores / temperature)`` using exactly one ``rng.random()``."""
    probabilities = softmax(scores, temperature)
    cumulative = np.cumsum(probabilities)
    u = rng.random() * cumulative[-1]
    return int(min(np.searchsorted(cumulative, u, side="right"), probabilities.size - 1))
