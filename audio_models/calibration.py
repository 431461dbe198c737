"""Calibrating an emotion model's posteriors: one temperature, fitted on validation speakers only.

A model trained with label smoothing on acted speech is often over- or under-confident on new
voices; routing by expected cost needs probabilities that mean what they say. Temperature
scaling (posteriors raised to ``1/T`` and renormalised) keeps the argmax and fixes the confidence.
``calibration.json`` in a model directory holds ``T``, how it was fitted, and may name the floor
under which a posterior's log is taken (``log_floor``; 1e-8 when absent). That floor caps a very
sure model's calibrated readings: v3 at T = 6.08 cannot pass 0.874, so a policy floor above that is
never reached. Raising nothing (``NO_CAP_LOG_FLOOR``) was tried and not adopted: with the floors
chosen for it, it routed fresh callers 0.03 worse
(docs/experiments/2026-12-07-emotion-v3-routing-choice-rule.md, try 3). ``log_prior`` (optional)
adds an offset per class to the log posterior before the temperature: a class-prior shift that
moves the operating point between two classes whose mistakes do not cost the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_FILE = "calibration.json"
LOG_FLOOR = 1e-8  # a posterior under it is raised to it before its log is taken (every shipped calibration)
NO_CAP_LOG_FLOOR = float(np.finfo(np.float64).tiny)  # the smallest positive double: nothing is raised (try 3)


@dataclass(frozen=True)
class Calibration:
    """A model directory's temperature and the log floor it was fitted with."""

    temperature: float
    log_floor: float = LOG_FLOOR
    log_prior: tuple[tuple[str, float], ...] = ()  # (class, offset) added to log P(class) before the temperature

    def prior(self, labels: Sequence[str]) -> np.ndarray | None:
        """Return the offsets in ``labels`` order (None when there are none); a class not in ``labels`` is an error."""
        if not self.log_prior:
            return None
        unknown = [name for name, _ in self.log_prior if name not in labels]
        if unknown:
            raise ValueError(f"log_prior names classes the model does not have: {unknown}")
        offsets = dict(self.log_prior)
        return np.array([offsets.get(lab, 0.0) for lab in labels], dtype=np.float64)


def temperature_scale(probs: np.ndarray, temperature: float, log_floor: float = LOG_FLOOR,
                      prior: np.ndarray | None = None) -> np.ndarray:
    """Return ``probs`` (rows sum to 1) sharpened (T < 1) or softened (T > 1).

    A posterior under ``log_floor`` is raised to it before the log is taken; ``prior`` (one offset
    a class) is added to the logs before the temperature.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logp = np.log(np.clip(probs, log_floor, 1.0))
    if prior is not None:
        logp = logp + prior
    logp = logp / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def highest_reading(temperature: float, log_floor: float = LOG_FLOOR, classes: int = 4,
                    prior: np.ndarray | None = None, of: int | None = None) -> float:
    """Return the highest probability a calibrated reading can reach (the cap the log floor sets).

    With a ``prior`` the caps differ by class (each sure, every other at the floor): class ``of``'s,
    or the highest of them.
    """
    if prior is None:
        return 1.0 / (1.0 + (classes - 1) * log_floor ** (1.0 / temperature))
    weights = np.exp(prior / temperature)
    caps = weights / (weights + log_floor ** (1.0 / temperature) * (weights.sum() - weights))
    return float(caps[of] if of is not None else caps.max())


def nll(probs: np.ndarray, truth: np.ndarray, log_floor: float = LOG_FLOOR) -> float:
    """Mean negative log-likelihood of the true classes (indices)."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), truth], log_floor, 1.0))))


def fit_temperature(probs: np.ndarray, truth: np.ndarray, log_floor: float = LOG_FLOOR, highest: float = 8.0) -> float:
    """Return the temperature in [0.25, ``highest``] that minimises the NLL of ``truth`` (a fine log grid)."""
    points = 1 + round(48 * np.log2(highest / 0.25))  # 48 a doubling: 241 over [0.25, 8]
    grid = np.exp(np.linspace(np.log(0.25), np.log(highest), points))
    losses = [nll(temperature_scale(probs, t, log_floor), truth, log_floor) for t in grid]
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


def load_calibration(model_dir: Path) -> Calibration | None:
    """Return the calibration stored in ``model_dir`` (None when it has none; ``log_floor`` 1e-8 when unnamed)."""
    path = model_dir / CALIBRATION_FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    temperature = float(data["temperature"])
    if not 0 < temperature < 100:
        raise ValueError(f"{path}: temperature {temperature} out of range")
    log_floor = float(data.get("log_floor", LOG_FLOOR))
    if not 0 < log_floor < 1e-3:
        raise ValueError(f"{path}: log_floor {log_floor} out of range")
    prior = data.get("log_prior", {})
    if not isinstance(prior, dict) or not all(isinstance(k, str) and -5 <= float(v) <= 5 for k, v in prior.items()):
        raise ValueError(f"{path}: log_prior must map class names to offsets within +-5, got {prior!r}")
    return Calibration(temperature, log_floor, tuple((k, float(v)) for k, v in sorted(prior.items())))


def load_temperature(model_dir: Path) -> float | None:
    """Return the temperature stored in ``model_dir`` (None when it has no calibration)."""
    found = load_calibration(model_dir)
    return found.temperature if found else None
