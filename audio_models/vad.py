"""Voice activity detection with silero-vad (its ONNX model ships inside the PyPI wheel).

One onnxruntime session (single-threaded, so it never competes with the emotion
model for cores) is shared by every call; each call gets its own recurrent state.
"""

from __future__ import annotations

import copy
import threading
import warnings
from typing import Any

import numpy as np
import torch

VAD_CHUNK = 512  # samples at 16 kHz (32 ms), the size silero-vad expects

_BASE: Any = None
_BASE_LOCK = threading.Lock()


def _base_model() -> Any:
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            from silero_vad import load_silero_vad

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _BASE = load_silero_vad(onnx=True)
        return _BASE


class SileroVAD:
    """Speech probability per 32 ms chunk; one instance per stream (it keeps the stream's state)."""

    def __init__(self) -> None:
        """Share the loaded ONNX session; start with fresh state."""
        self._model = copy.copy(_base_model())
        self._model.reset_states()

    def speech_probability(self, chunk: np.ndarray) -> float:
        """Return P(speech) for exactly 512 samples of 16 kHz audio."""
        return float(self._model(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)), 16000))
