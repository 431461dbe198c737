"""Evaluating a shipped emotion model on held-out speakers, through the inference path.

Waveforms go through ``EmotionModel.classify_batch`` exactly as in the live
service (after an 8 kHz mu-law round trip with ``telephone=True``), not through
the training feature cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from audio_models.audio_io import load_audio
from audio_models.emotion import EcapaEmotionModel
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import Clip, list_corpora
from audio_models.training.metrics import classification_summary


def held_out_clips(model: EcapaEmotionModel, data: Path) -> dict[str, list[Clip]]:
    """Return {corpus: clips of the speakers the model's hparams list as test speakers}."""
    split = cast(dict[str, Any], model.hparams.get("split", {}))
    test_speakers: dict[str, list[str]] = split.get("test_speakers", {})
    corpora = tuple(test_speakers) or ("ravdess",)
    clips = list_corpora(data, corpora)
    return {
        corpus: [c for c in clips if c.corpus == corpus and c.speaker in set(speakers)]
        for corpus, speakers in test_speakers.items()
    }


def evaluate_model(
    model: EcapaEmotionModel, data: Path, *, telephone: bool, batch_size: int = 16
) -> dict[str, Any]:
    """Return per-corpus accuracy, UAR, macro-F1 and confusion on the held-out speakers."""
    results: dict[str, Any] = {"model": model.name, "telephone": telephone}
    for corpus, clips in held_out_clips(model, data).items():
        preds: list[str] = []
        for start in range(0, len(clips), batch_size):
            batch = clips[start : start + batch_size]
            waves = [load_audio(c.path) for c in batch]
            if telephone:
                waves = [telephone_round_trip(w) for w in waves]
            preds += [r.label for r in model.classify_batch(waves)]
        summary = classification_summary([c.label for c in clips], preds, model.labels)
        summary["speakers"] = sorted({c.speaker for c in clips})
        results[corpus] = summary
    return results
