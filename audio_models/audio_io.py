"""Reading audio files into mono float32 waveforms with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audio_models.g711 import resample

MODEL_SAMPLE_RATE = 16000


class AudioLoadError(ValueError):
    """An audio file is missing, empty, truncated or not audio."""


def _wav_missing_bytes(path: Path) -> int:
    """Return how many bytes a RIFF/WAVE file's data chunk declares beyond the file's end (0 if none).

    libsndfile reads a truncated WAV without complaint, silently shortening it.
    """
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        size = path.stat().st_size
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk = fh.read(8)
            chunk_size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return max(0, offset + 8 + chunk_size - size)
            offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def load_audio(path: str | Path, target_sr: int = MODEL_SAMPLE_RATE) -> np.ndarray:
    """Return the file's audio as mono float32 at ``target_sr``.

    Any sample rate and channel count is accepted; stereo is averaged to mono.
    """
    p = Path(path)
    if not p.exists():
        raise AudioLoadError(f"{p}: no such file")
    if p.is_dir():
        raise AudioLoadError(f"{p}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioLoadError(f"{p}: file is empty (0 bytes)")
    missing = _wav_missing_bytes(p)
    if missing > 0:
        raise AudioLoadError(f"{p}: truncated WAV ({missing} bytes of audio data missing)")
    try:
        info = sf.info(str(p))
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioLoadError(f"{p}: not a readable audio file, or corrupt/truncated ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioLoadError(f"{p}: contains no audio samples")
    if info.frames > 0 and data.shape[0] < info.frames:
        raise AudioLoadError(
            f"{p}: truncated (header promises {info.frames} frames, file holds {data.shape[0]})"
        )
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise AudioLoadError(f"{p}: contains NaN or infinite samples")
    return resample(mono, int(sr), target_sr)
