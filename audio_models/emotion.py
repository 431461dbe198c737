"""Speech-emotion inference: waveforms (16 kHz mono float32) -> EmotionReading.

Models load from a local directory holding ``hparams.yaml`` and ``model.ckpt``
(the SpeechBrain ``from_hparams(source=local_dir)`` pattern, without a hub).
``classify_batch`` takes waveforms of different lengths and scores them in length-sorted passes
of at most ``PASS_SIZE`` (faster than one padded pass on a 2-core CPU).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from audio_models.emotion_types import (  # noqa: F401 - re-exported: the names callers use
    BACKENDS,
    DEFAULT_AFFECT_ANCHORS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL_DIR,
    FBANK_MODEL_DIR,
    FUSED_MODEL_DIR,
    MAX_SECONDS,
    MIN_SECONDS,
    PASS_SIZE,
    SAMPLE_RATE,
    EmotionModel,
    EmotionReading,
    ModelLoadError,
    affect_from_probs,
    length_sorted_passes,
    prepare_waveform,
)
from audio_models.threads import single_thread_numpy_blas
from audio_models.whisper_encoder import WhisperLayerEmbedder


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
            self._whisper = WhisperLayerEmbedder(1)

    @classmethod
    def from_dir(cls, source: str | Path = FUSED_MODEL_DIR) -> EcapaEmotionModel:
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
