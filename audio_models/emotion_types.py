"""What every emotion backend shares: the reading, the model protocol, waveform conditioning.

The leaf of audio_models' emotion modules: audio_models.emotion (the ECAPA-TDNN),
audio_models.whisper_encoder and audio_models.whisper_head import it, and it imports none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audio_models.trim import trim_silence

SAMPLE_RATE = 16000
MIN_SECONDS = 0.5
MAX_SECONDS = 30.0
# The default since 2026-12-07: emotion v3, a linear head on Whisper tiny.en's block means and
# prosody, trained on nine corpora in seven languages (backend "whisper-head"), chosen by how it
# routes callers from corpora it never heard (docs/experiments/2026-12-07-emotion-v3-routing-choice-rule.md).
# The English-trained ECAPA-TDNN on Whisper block-1 frames fused with a block-1 head (backend
# "ecapa-whisper"; the default from 2026-11-26) and the Fbank ECAPA-TDNN (before that) ship beside it.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "emotion-v3-nine-corpora"
FUSED_MODEL_DIR = Path(__file__).resolve().parent / "models" / "emotion-whisper-ecapa"
FBANK_MODEL_DIR = Path(__file__).resolve().parent / "models" / "emotion-ecapa"
DEFAULT_BACKEND = "whisper-head"
BACKENDS = ("ecapa", "ecapa-whisper", "whisper-head")
# A batch call scores its waveforms in length-sorted passes of at most this many. On a 2-core CPU
# a batch of 32 utterances of 1.5-4.5 s took 380 ms in one pass and 180 ms in passes of 8 (less
# padding, and each pass's activations stay in cache); see docs/MODEL_CARD.md, "Speed".
PASS_SIZE = 8

# Circumplex anchors (arousal, valence) per class; the reading's arousal and
# valence are the posterior-weighted mean of these. Editable in hparams.yaml.
DEFAULT_AFFECT_ANCHORS: dict[str, list[float]] = {
    "angry": [0.8, -0.7],
    "happy": [0.5, 0.8],
    "neutral": [-0.2, 0.05],
    "sad": [-0.6, -0.6],
}


class ModelLoadError(RuntimeError):
    """A model directory is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class EmotionReading:
    """One emotion estimate for one stretch of speech."""

    probs: dict[str, float]
    arousal: float
    valence: float
    model: str

    @property
    def label(self) -> str:
        """Return the most probable class."""
        return max(self.probs, key=lambda k: self.probs[k])


class EmotionModel(Protocol):
    """What the live pipeline and the CLI need from any emotion backend."""

    name: str
    labels: tuple[str, ...]

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one reading per waveform (16 kHz mono float32)."""
        ...


def affect_from_probs(
    probs: dict[str, float], anchors: dict[str, list[float]]
) -> tuple[float, float]:
    """Return (arousal, valence) in [-1, 1] as the posterior-weighted anchor mean."""
    arousal = sum(p * anchors[k][0] for k, p in probs.items() if k in anchors)
    valence = sum(p * anchors[k][1] for k, p in probs.items() if k in anchors)
    return float(np.clip(arousal, -1, 1)), float(np.clip(valence, -1, 1))


def length_sorted_passes(lengths: Sequence[int], size: int = PASS_SIZE) -> list[np.ndarray]:
    """Return index groups of at most ``size``, shortest first, that together cover ``lengths``."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start:start + size] for start in range(0, len(order), size)]


def prepare_waveform(wave: np.ndarray) -> np.ndarray:
    """Validate and condition one waveform: trim edge silence, pad to 0.5 s, cap at 30 s."""
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("empty waveform")
    if not np.all(np.isfinite(arr)):
        raise ValueError("waveform contains NaN or infinite samples")
    arr = trim_silence(arr[: int(MAX_SECONDS * SAMPLE_RATE)])
    min_len = int(MIN_SECONDS * SAMPLE_RATE)
    if arr.size < min_len:
        arr = np.pad(arr, (0, min_len - arr.size))
    return arr
