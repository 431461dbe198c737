"""Telephone-realistic augmentation: gain, band-limiting, noise, speed, then 8 kHz mu-law."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, sosfilt

from audio_models.g711 import resample, telephone_round_trip

_BANDPASS = butter(4, [300, 3400], btype="bandpass", fs=16000, output="sos")


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Return unit-RMS white, pink or brown noise of ``n`` samples."""
    white = rng.standard_normal(n)
    kind = rng.integers(3)
    if kind == 0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(1, len(spectrum) + 1, dtype=np.float64)
        spectrum /= freqs ** (0.5 if kind == 1 else 1.0)
        noise = np.fft.irfft(spectrum, n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


SPEED_FACTORS = (0.9, 0.95, 1.05, 1.1)
BABBLE_TALKERS = 4


def babble(n: int, rng: np.random.Generator, talkers: Sequence[np.ndarray]) -> np.ndarray:
    """Return ``n`` samples of unit-RMS babble: ``BABBLE_TALKERS`` clips, each looped from a random offset."""
    mix = np.zeros(n)
    for i in rng.choice(len(talkers), min(BABBLE_TALKERS, len(talkers)), replace=False):
        talker = talkers[i].astype(np.float64)
        talker = np.resize(talker / (np.sqrt(np.mean(talker**2)) + 1e-9), n)
        mix += np.roll(talker, int(rng.integers(n)))
    return mix / (np.sqrt(np.mean(mix**2)) + 1e-12)


def augment(wave: np.ndarray, rng: np.random.Generator,
            speed_factors: tuple[float, ...] = SPEED_FACTORS, babble_talkers: Sequence[np.ndarray] = (),
            babble_share: float = 0.5) -> np.ndarray:
    """Return one random telephone-band variant of a clean 16 kHz clip.

    Speed perturbation resamples, so it moves pitch and formants together (a different voice).
    With ``babble_talkers``, a ``babble_share`` of the noisy variants get babble (other voices)
    instead of coloured noise; without, the random draws are exactly those of the recipe before babble.
    """
    out = wave.astype(np.float64)
    if rng.random() < 0.5:
        out = resample(out, 16000, int(16000 * rng.choice(speed_factors))).astype(np.float64)
    if rng.random() < 0.5:
        out = sosfilt(_BANDPASS, out)
    if rng.random() < 0.7:
        snr_db = rng.uniform(5.0, 30.0)
        speech_rms = np.sqrt(np.mean(out**2)) + 1e-9
        use_babble = bool(babble_talkers) and rng.random() < babble_share
        noise = babble(len(out), rng, babble_talkers) if use_babble else coloured_noise(len(out), rng)
        out = out + noise * speech_rms / (10 ** (snr_db / 20))
    peak = np.max(np.abs(out)) + 1e-9
    gain_db = rng.uniform(-18.0, 6.0)
    out = out / peak * 0.7 * 10 ** (gain_db / 20)
    return telephone_round_trip(np.clip(out, -1.0, 1.0).astype(np.float32))


ACTIVE_FRAME = 320  # 20 ms at 16 kHz
NOISY_SNR_DB = (5.0, 25.0)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Return ``speech`` plus ``noise`` at ``snr_db``: speech power over its active 20 ms frames, kept under 1.0."""
    frames = speech[: len(speech) // ACTIVE_FRAME * ACTIVE_FRAME].reshape(-1, ACTIVE_FRAME).astype(np.float64)
    power = (frames**2).mean(axis=1) if len(frames) else np.array([np.mean(speech.astype(np.float64) ** 2)])
    p_speech = float(power[power > power.max() * 1e-4].mean()) if power.max() > 0 else 1e-8
    noise = np.resize(noise.astype(np.float64), speech.shape)
    out = speech + noise * np.sqrt(p_speech / (np.mean(noise**2) + 1e-12) / 10 ** (snr_db / 10))
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    return (out / peak * 0.99 if peak > 0.99 else out).astype(np.float32)


def noisy_copy(wave: np.ndarray, rng: np.random.Generator, talkers: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Return a clean 16 kHz clip with background mixed in, as a caller on a noisy line (before the phone line).

    Half the draws get babble of ``talkers`` (when given), the rest white, pink or brown noise; the
    SNR is uniform over ``NOISY_SNR_DB`` (emotion v3n: docs/experiments/2026-12-07-emotion-v3-noisy-rule.md).
    """
    snr_db = rng.uniform(*NOISY_SNR_DB)
    use_babble = len(talkers) >= BABBLE_TALKERS and rng.random() < 0.5
    noise = babble(len(wave), rng, talkers) if use_babble else coloured_noise(len(wave), rng)
    return mix_at_snr(wave, noise, snr_db)
