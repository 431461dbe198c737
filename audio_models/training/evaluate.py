"""Evaluating a shipped emotion model on held-out speakers, through the inference path.

Waveforms go through ``EmotionModel.classify_batch`` exactly as in the live
service (after an 8 kHz mu-law round trip with ``telephone=True``), not through
the training feature cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.emotion import EcapaEmotionModel
from audio_models.g711 import telephone_round_trip
from audio_models.training.augment import BABBLE_TALKERS, babble, coloured_noise
from audio_models.training.corpora import Clip, babble_clips, list_corpora
from audio_models.training.metrics import classification_summary

NOISES = ("white", "babble")


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


class NoiseMixer:
    """Adds white noise or babble (other talkers) to a clip at a fixed SNR, reproducibly.

    Babble is the sum of four clips of speakers outside the test set: a noisy call centre or a
    television in the room. The clips come from ``babble_clips(…, "evaluation")``,
    never the half of the training speakers whose voices training may mix in as babble.
    """

    def __init__(self, kind: str, snr_db: float, pool: list[Clip], seed: int = 1234) -> None:
        """Prepare the mixer; ``pool`` holds the clips babble is drawn from."""
        if kind not in NOISES:
            raise ValueError(f"unknown noise {kind!r}: choose {', '.join(NOISES)}")
        if kind == "babble" and len(pool) < BABBLE_TALKERS:
            raise ValueError("babble needs at least four clips of speakers outside the test set")
        self.kind, self.snr_db = kind, snr_db
        self.talkers = [load_audio(c.path) for c in pool] if kind == "babble" else []
        self.rng = np.random.default_rng(seed)

    def _noise(self, n: int) -> np.ndarray:
        if self.kind == "white":
            return coloured_noise(n, self.rng)
        return babble(n, self.rng, self.talkers)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        """Return ``wave`` with noise at ``snr_db`` below its RMS, clipped to [-1, 1]."""
        speech_rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) + 1e-9
        noisy = wave + self._noise(len(wave)) * speech_rms / 10 ** (self.snr_db / 20)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)


def evaluate_model(
    model: EcapaEmotionModel, data: Path, *, telephone: bool, batch_size: int = 16,
    noise: str | None = None, snr_db: float = 10.0,
) -> dict[str, Any]:
    """Return per-corpus accuracy, UAR, macro-F1 and confusion on the held-out speakers.

    ``noise`` ("white" or "babble") is mixed in at ``snr_db`` before the telephone round trip.
    """
    results: dict[str, Any] = {"model": model.name, "telephone": telephone}
    mixer = None
    if noise is not None:
        train_speakers = cast(dict[str, Any], model.hparams.get("training", {})).get("train_speakers", [])
        pool = babble_clips(list_corpora(data), train_speakers, "evaluation")
        mixer = NoiseMixer(noise, snr_db, pool)
        results["noise"] = {"kind": noise, "snr_db": snr_db}
    for corpus, clips in held_out_clips(model, data).items():
        preds: list[str] = []
        for start in range(0, len(clips), batch_size):
            batch = clips[start : start + batch_size]
            waves = [load_audio(c.path) for c in batch]
            if mixer is not None:
                waves = [mixer(w) for w in waves]
            if telephone:
                waves = [telephone_round_trip(w) for w in waves]
            preds += [r.label for r in model.classify_batch(waves)]
        summary = classification_summary([c.label for c in clips], preds, model.labels)
        summary["speakers"] = sorted({c.speaker for c in clips})
        results[corpus] = summary
    return results
