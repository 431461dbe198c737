"""Fit a model directory's temperature on its validation speakers; report calibration on held-out ones.

Validation speakers (``split.val_speakers`` in hparams.yaml: RAVDESS actors 19 and 20) are never
trained on and never tested on, so nothing of a test speaker goes into ``T``. Every clip goes
through the 8 kHz mu-law line first, and is scored per clip by the fused backend, as live.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.calibration import (
    CALIBRATION_FILE,
    expected_calibration_error,
    fit_temperature,
    nll,
    temperature_scale,
)
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import list_corpora
from audio_models.whisper_head import FusedEmotionModel

log = logging.getLogger(__name__)


def _probs(model: FusedEmotionModel, paths: list[Path]) -> np.ndarray:
    rows = []
    for start in range(0, len(paths), 32):
        waves = [telephone_round_trip(load_audio(p)) for p in paths[start : start + 32]]
        rows += [[r.probs[k] for k in model.labels] for r in model.classify_batch(waves)]
    return np.array(rows, dtype=np.float64)


def calibrate(data: Path, model_dir: Path, *, write: bool = True) -> dict[str, Any]:
    """Fit T on the validation speakers, score NLL and ECE before/after per held-out set; write calibration.json."""
    started = time.time()
    model = FusedEmotionModel.from_dir(model_dir)
    model.temperature = None  # fit on the raw fused posteriors
    split = model.hparams["split"]
    groups: dict[str, list[str]] = {"validation": list(split["val_speakers"]), **split["test_speakers"]}
    corpora = tuple(sorted({s.split("-")[0] for v in groups.values() for s in v}))
    clips = [c for c in list_corpora(data, corpora) if c.label in model.labels]
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, speakers in groups.items():
        chosen = [c for c in clips if c.speaker in set(speakers)]
        truth = np.array([model.labels.index(c.label) for c in chosen])
        scored[name] = (_probs(model, [c.path for c in chosen]), truth)
        log.info("%s: %d clips scored", name, len(chosen))
    temperature = fit_temperature(*scored["validation"])
    report: dict[str, Any] = {"temperature": temperature, "fitted_on": groups["validation"],
                              "labels": list(model.labels), "sets": {}}
    for name, (probs, truth) in scored.items():
        after = temperature_scale(probs, temperature)
        report["sets"][name] = {
            "clips": len(truth),
            "ece_before": expected_calibration_error(probs, truth),
            "ece_after": expected_calibration_error(after, truth),
            "nll_before": round(nll(probs, truth), 4), "nll_after": round(nll(after, truth), 4),
            "mean_confidence_before": round(float(probs.max(axis=1).mean()), 4),
            "mean_confidence_after": round(float(after.max(axis=1).mean()), 4),
            "accuracy": round(float((probs.argmax(axis=1) == truth).mean()), 4)}
        log.info("%s: ECE %.3f -> %.3f", name, report["sets"][name]["ece_before"], report["sets"][name]["ece_after"])
    report["seconds"] = round(time.time() - started, 1)
    if write:
        (model_dir / CALIBRATION_FILE).write_text(json.dumps(report, indent=1))
    return report
