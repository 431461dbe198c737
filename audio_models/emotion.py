"""Speech-emotion inference: waveforms (16 kHz mono float32) -> EmotionReading.

Models load from a local directory holding ``hparams.yaml`` and ``model.ckpt``
(the SpeechBrain ``from_hparams(source=local_dir)`` pattern, without a hub).
``classify_batch`` takes waveforms of different lengths and scores them in length-sorted passes
of at most ``PASS_SIZE`` (faster than one padded pass on a 2-core CPU).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import yaml

from audio_models.threads import single_thread_numpy_blas
from audio_models.trim import trim_silence

SAMPLE_RATE = 16000
MIN_SECONDS = 0.5
MAX_SECONDS = 30.0
# The default: an ECAPA-TDNN on Whisper tiny.en block-1 frames, fused with a block-1 head (backend
# "ecapa-whisper"). The Fbank ECAPA-TDNN, the default until 2026-11-26, ships beside it.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "emotion-whisper-ecapa"
FBANK_MODEL_DIR = Path(__file__).resolve().parent / "models" / "emotion-ecapa"
DEFAULT_BACKEND = "ecapa-whisper"
BACKENDS = ("ecapa", "ecapa-whisper")
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


class EcapaEmotionModel:
    """A SpeechBrain ECAPA-TDNN trained on telephone-band speech, on Fbank or Whisper block-1 frames."""

    def __init__(self, net: torch.nn.Module, hparams: dict[str, Any], source: Path) -> None:
        """Wrap a loaded network; use :meth:`from_dir` to build one."""
        single_thread_numpy_blas()
        self.net = net.eval()
        self.hparams = hparams
        self.source = source
        self.labels: tuple[str, ...] = tuple(hparams["labels"])
        self.anchors: dict[str, list[float]] = dict(hparams["affect_anchors"])
        self.name = f"{hparams['name']}@{hparams['version']}"
        self.load_seconds = 0.0
        self.frontend: str = str(hparams["model"].get("frontend", "fbank"))
        self._whisper: Any = None
        if self.frontend == "whisper-block1":
            from audio_models.whisper_encoder import WhisperLayerEmbedder

            self._whisper = WhisperLayerEmbedder(1)

    @classmethod
    def from_dir(cls, source: str | Path = DEFAULT_MODEL_DIR) -> EcapaEmotionModel:
        """Load the model from ``source`` (hparams.yaml + model.ckpt)."""
        from audio_models.nets import EmotionNet

        started = time.perf_counter()
        src = Path(source)
        hp_file, ckpt = src / "hparams.yaml", src / "model.ckpt"
        for needed in (hp_file, ckpt):
            if not needed.is_file():
                raise ModelLoadError(
                    f"emotion model file {needed} is missing; train one with "
                    f"`emoroute train-emotion --data ../shared/data --out {src}`"
                )
        try:
            hparams = yaml.safe_load(hp_file.read_text())
            net = EmotionNet(**hparams["model"])
            net.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
        except (yaml.YAMLError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"cannot load emotion model from {src}: {exc}") from exc
        model = cls(net, hparams, src)
        model.load_seconds = time.perf_counter() - started
        return model

    def _readings(self, probs: np.ndarray) -> list[EmotionReading]:
        out = []
        for row in probs:
            p = {lab: round(float(v), 4) for lab, v in zip(self.labels, row, strict=True)}
            arousal, valence = affect_from_probs(p, self.anchors)
            out.append(EmotionReading(p, round(arousal, 4), round(valence, 4), self.name))
        return out

    @property
    def whisper_frontend(self) -> Any:
        """Return the Whisper block-1 embedder this model reads (``whisper-block1`` front end), else None."""
        return self._whisper

    def class_probs(self, prepared: Sequence[np.ndarray], *,
                    frame_means: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (n, classes) posteriors for prepared waveforms, in order, in length-sorted passes.

        With ``frame_means`` (Whisper front end only) also return each utterance's mean block-1
        frame over its real frames, (n, 384): what a Whisper-embedding head reads, from the same pass.
        """
        if frame_means and self._whisper is None:
            raise ValueError("frame means need the whisper-block1 front end")
        probs = np.empty((len(prepared), len(self.labels)), dtype=np.float32)
        means = np.empty((len(prepared), self._whisper.dim), dtype=np.float32) if frame_means else None
        for part in length_sorted_passes([len(w) for w in prepared]):
            with torch.inference_mode():
                if self._whisper is not None:  # frames of Whisper's block 1, then the ECAPA-TDNN
                    frames, frame_lens = self._whisper.frames_batch([prepared[i] for i in part])
                    logits = self.net.forward_features(frames, frame_lens)  # type: ignore[operator]  # EmotionNet
                    if means is not None:  # padded frames are zero: sum over all, divide by the real count
                        real = (frame_lens * frames.shape[1]).round().clamp(min=1)
                        means[part] = (frames.sum(dim=1) / real[:, None]).numpy()
                else:
                    longest = max(len(prepared[i]) for i in part)
                    batch = np.zeros((len(part), longest), dtype=np.float32)
                    for j, i in enumerate(part):
                        batch[j, : len(prepared[i])] = prepared[i]
                    lens = torch.tensor([len(prepared[i]) / longest for i in part], dtype=torch.float32)
                    logits = self.net(torch.from_numpy(batch), lens)
                probs[part] = torch.softmax(logits, dim=-1).numpy()
        return probs, means

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one reading per waveform, in order; waveforms of similar length share a pass."""
        if not waves:
            return []
        return self._readings(self.class_probs([prepare_waveform(w) for w in waves])[0])

    def classify(self, wave: np.ndarray) -> EmotionReading:
        """Return the reading for one waveform."""
        return self.classify_batch([wave])[0]


def load_emotion_model(backend: str = DEFAULT_BACKEND, source: str | Path = DEFAULT_MODEL_DIR) -> EmotionModel:
    """Return the named backend loaded from ``source``.

    'ecapa': the directory's ECAPA-TDNN alone; 'ecapa-whisper': fused with the block-1 head in
    the same directory (``whisper_head.npz``).
    """
    if backend == "ecapa":
        return EcapaEmotionModel.from_dir(source)
    if backend == "ecapa-whisper":
        from audio_models.whisper_head import FusedEmotionModel

        return FusedEmotionModel.from_dir(source)
    raise ModelLoadError(f"unknown emotion backend {backend!r}: choose ecapa or ecapa-whisper")
