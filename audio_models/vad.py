"""Voice activity detection with silero-vad (its model ships inside the PyPI wheel)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

VAD_CHUNK = 512  # samples at 16 kHz (32 ms), the size silero-vad expects


class SileroVAD:
    """Speech probability per 32 ms chunk; one instance per stream (it keeps state)."""

    def __init__(self) -> None:
        """Load a fresh silero-vad model from the installed wheel (no network)."""
        from silero_vad import load_silero_vad

        with warnings.catch_warnings():
            # silero-vad ships a TorchScript file; torch 2.11 flags jit.load as deprecated.
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
            self._model = load_silero_vad(onnx=False)

    def speech_probability(self, chunk: np.ndarray) -> float:
        """Return P(speech) for exactly 512 samples of 16 kHz audio."""
        with torch.inference_mode():
            return float(self._model(torch.from_numpy(np.ascontiguousarray(chunk)), 16000))
