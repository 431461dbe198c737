"""How good the line was for one stretch of a caller's audio: noise, clipping, lost media.

Tone is read from the voice; on a street, in a car or over a room of other talkers the emotion
model hears the background as much as the caller, so every reading carries this estimate and
the routing policy weighs tone by it (router/policy.py: below the floor, the words decide).

- ``snr_db``: speech-to-background ratio from the spread of 20 ms frame powers, the classic
  percentile estimate: the loud frames (90th percentile) are speech plus background, the quiet
  ones (10th) background alone. A VAD-cut utterance keeps its pauses and its 400 ms tail, so
  the quiet frames exist on any real line; the estimate reads low for noise that fills them.
- ``background``: "talkers or music" when the quiet frames are spectrally peaky and fluctuate
  (voices, melody), "steady noise" when flat (hiss, fans, road rumble), "" on a quiet line.
- ``clipped``: share of samples at full scale (an overdriven handset).
- ``dropped_ms``: media the network lost during the stretch (gaps in Twilio's sequence numbers
  and timestamps, counted by telephony's parser and handed in by the caller of :func:`assess`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
FRAME = 320  # 20 ms
MAX_SNR_DB = 40.0
CLIP_LEVEL = 0.99


@dataclass(frozen=True)
class LineQuality:
    """One stretch's line estimate and whether tone can be trusted on it."""

    snr_db: float
    clipped: float = 0.0
    dropped_ms: int = 0
    background: str = ""

    def usable(self, min_snr_db: float, max_clipped: float = 0.02, max_dropped_share: float = 0.2,
               seconds: float = 1.0) -> bool:
        """Return whether tone read on this stretch may count (all three bounds met)."""
        dropped_share = self.dropped_ms / 1000.0 / max(seconds, 1e-3)
        return self.snr_db >= min_snr_db and self.clipped <= max_clipped and dropped_share <= max_dropped_share

    def as_dict(self) -> dict[str, float | int | str]:
        """Return the estimate as stored with a reading."""
        out: dict[str, float | int | str] = {"snr_db": round(self.snr_db, 1), "clipped": round(self.clipped, 4)}
        if self.dropped_ms:
            out["dropped_ms"] = int(self.dropped_ms)
        if self.background:
            out["background"] = self.background
        return out


def assess(wave: np.ndarray, dropped_ms: int = 0) -> LineQuality:
    """Return the line quality of a 16 kHz mono stretch (silence or too short: a clean line)."""
    audio = np.asarray(wave, dtype=np.float32)
    if audio.ndim != 1 or not np.all(np.isfinite(audio)):
        raise ValueError("line quality needs a 1-D finite waveform")
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL)) if audio.size else 0.0
    n = audio.size // FRAME
    if n < 10:
        return LineQuality(MAX_SNR_DB, clipped, dropped_ms)
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    power = np.mean(frames**2, axis=1) + 1e-10
    loud, quiet = np.percentile(power, 90), np.percentile(power, 10)
    if loud < 1e-7:  # nothing on the line at all
        return LineQuality(MAX_SNR_DB, clipped, dropped_ms)
    snr = float(min(MAX_SNR_DB, 10.0 * np.log10(loud / max(quiet, 1e-10))))
    background = ""
    if snr < 25.0:
        background = _background_kind(frames[power <= np.percentile(power, 20)])
    return LineQuality(max(0.0, snr), clipped, dropped_ms, background)


def _background_kind(quiet_frames: np.ndarray) -> str:
    """Return 'talkers or music' (peaky spectrum) or 'steady noise' (flat) for the quietest frames."""
    if len(quiet_frames) == 0:
        return ""
    spectrum = np.abs(np.fft.rfft(quiet_frames * np.hanning(FRAME), axis=1)) ** 2 + 1e-12
    band = spectrum[:, 5:68]  # 250-3,400 Hz (50 Hz bins): what a phone line carries
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    return "talkers or music" if float(np.median(flatness)) < 0.25 else "steady noise"
