"""Energy-based trimming of leading and trailing silence."""

from __future__ import annotations

import numpy as np

FRAME = 320  # 20 ms at 16 kHz


def trim_silence(wave: np.ndarray, *, threshold_db: float = 35.0) -> np.ndarray:
    """Return ``wave`` without the leading/trailing frames quieter than peak - threshold_db.

    Corpus clips carry up to a second of studio silence that a live VAD segment
    would not; trimming both the same way keeps training and service alike.
    """
    n_frames = len(wave) // FRAME
    if n_frames < 3:
        return wave
    frames = wave[: n_frames * FRAME].reshape(n_frames, FRAME)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    level_db = 20 * np.log10(rms)
    loud = np.flatnonzero(level_db > level_db.max() - threshold_db)
    if loud.size == 0:
        return wave
    start = max(loud[0] - 1, 0) * FRAME
    end = min(loud[-1] + 2, n_frames) * FRAME
    return wave[start:end]
