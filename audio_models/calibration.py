"""Calibrating an emotion model's posteriors: one temperature, fitted on validation speakers only.

A model trained with label smoothing on acted speech is often over- or under-confident on new
voices; routing by expected cost needs probabilities that mean what they say. Temperature
scaling (posteriors raised to ``1/T`` and renormalised) keeps the argmax and fixes the confidence.
``calibration.json`` in a model directory holds ``T`` and how it was fitted; the fused backend
applies it when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = "calibration.json"


def temperature_scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Return ``probs`` (rows sum to 1) sharpened (T < 1) or softened (T > 1)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logp = np.log(np.clip(probs, 1e-8, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, truth: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (indices)."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-8, 1.0))))


def fit_temperature(probs: np.ndarray, truth: np.ndarray) -> float:
    """Return the temperature in [0.25, 8] that minimises the NLL of ``truth`` (a fine log grid)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))
    losses = [nll(temperature_scale(probs, t), truth) for t in grid]
    return round(float(grid[int(np.argmin(losses))]), 3)


def expected_calibration_error(probs: np.ndarray, truth: np.ndarray, bins: int = 15) -> float:
    """Return the ECE of the top-class confidence: sum over equal-width bins of |accuracy - confidence|, weighted."""
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return round(float(ece), 4)


def load_temperature(model_dir: Path) -> float | None:
    """Return the temperature stored in ``model_dir`` (None when it has no calibration)."""
    path = model_dir / CALIBRATION_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    temperature = float(data["temperature"])
    if not 0 < temperature < 100:
        raise ValueError(f"{path}: temperature {temperature} out of range")
    return temperature
