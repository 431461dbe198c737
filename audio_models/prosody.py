"""Pitch, loudness, voice-quality and rhythm statistics of one utterance, in numpy.

Whisper's hidden states carry the spectrum well but were trained to recognise words; how high,
how varied and how tense a voice is (the cues that carry valence and arousal across languages)
are only implicit there. These 24 per-utterance statistics are computed from the telephone-band
waveform alone (no statistics of other utterances of the same speaker), cheaply: one FFT
autocorrelation per 40 ms frame at 8 kHz, well under a millisecond per second of speech.

Every statistic is invariant to the line's gain (levels are in dB relative to the utterance's
own loudest frames) and none uses the utterance's length, which differs more between corpora
than between emotions.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
_FS = 8000  # the phone band: decimating the 16 kHz waveform by two loses nothing
_WIN, _HOP = 320, 80  # 40 ms windows every 10 ms
_F0_MIN, _F0_MAX = 60.0, 400.0
_VOICED_PERIODICITY = 0.45
_SILENCE_DB = 35.0

FEATURE_NAMES: tuple[str, ...] = (
    "voiced_share", "pause_share",
    "f0_median_st", "f0_p10_st", "f0_p90_st", "f0_range_st", "f0_iqr_st", "f0_std_st",
    "f0_slope_st_per_s", "f0_delta_abs_st", "f0_final_fall_st",
    "periodicity_mean", "periodicity_std",
    "level_std_db", "level_range_db", "voiced_level_db", "level_delta_abs_db",
    "tilt_db_mean", "tilt_db_std", "centroid_hz_mean", "centroid_hz_std",
    "high_band_db", "flatness_mean", "peaks_per_voiced_s",
)


def _frames(x: np.ndarray) -> np.ndarray:
    if x.size < _WIN:
        x = np.pad(x, (0, _WIN - x.size))
    n = 1 + (x.size - _WIN) // _HOP
    idx = np.arange(_WIN)[None, :] + _HOP * np.arange(n)[:, None]
    return x[idx]


def prosody_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the :data:`FEATURE_NAMES` statistics (float32) of one mono 16 kHz waveform."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"expected {SAMPLE_RATE} Hz audio, got {sample_rate}")
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty mono waveform, got shape {x.shape}")
    x = x[::2] - x.mean()
    frames = _frames(x) * np.hanning(_WIN)[None, :]
    power = np.fft.rfft(frames, n=2 * _WIN, axis=1)
    spec = np.abs(power) ** 2
    # autocorrelation of each frame (Wiener-Khinchin), normalised by the window's own
    lo, hi = int(_FS / _F0_MAX), int(_FS / _F0_MIN)
    ac = np.fft.irfft(spec, axis=1)[:, :hi + 2]
    win = np.hanning(_WIN)
    win_ac = np.correlate(win, win, "full")[_WIN - 1:_WIN + hi + 1]
    ac = ac / np.maximum(ac[:, :1], 1e-12) / (win_ac / win_ac[0])[None, :]
    # the shortest lag whose peak comes within 15 % of the highest: no period doubling
    seg = ac[:, lo:hi + 1]
    local = np.zeros_like(seg, dtype=bool)
    local[:, 1:-1] = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] >= seg[:, 2:])
    near = local & (seg >= 0.85 * seg.max(axis=1, keepdims=True))
    lag = lo + np.where(near.any(axis=1), np.argmax(near, axis=1), np.argmax(seg, axis=1))
    peak = ac[np.arange(len(ac)), lag]
    # parabolic interpolation of the peak lag
    left = ac[np.arange(len(ac)), np.maximum(lag - 1, 0)]
    right = ac[np.arange(len(ac)), lag + 1]
    denom = left - 2 * peak + right
    shift = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    f0 = _FS / (lag + np.clip(shift, -0.5, 0.5))
    level = 10 * np.log10(np.maximum(spec.sum(axis=1), 1e-12))
    level -= np.percentile(level, 95)
    speech = level > -_SILENCE_DB
    voiced = speech & (peak > _VOICED_PERIODICITY)
    freqs = np.fft.rfftfreq(2 * _WIN, 1 / _FS)
    low_band, high_band = (freqs >= 100) & (freqs < 1000), (freqs >= 1000) & (freqs < 3400)
    tilt = 10 * np.log10(np.maximum(spec[:, high_band].sum(1), 1e-12) / np.maximum(spec[:, low_band].sum(1), 1e-12))
    band = spec[:, (freqs >= 100) & (freqs < 3400)] + 1e-12
    centroid = (band * freqs[(freqs >= 100) & (freqs < 3400)]).sum(1) / band.sum(1)
    flatness = np.exp(np.log(band).mean(1)) / band.mean(1)
    hop_s = _HOP / _FS
    n_speech = max(int(speech.sum()), 1)
    out = dict.fromkeys(FEATURE_NAMES, 0.0)
    out["voiced_share"] = voiced.sum() / n_speech
    out["pause_share"] = 1.0 - speech.mean()
    if voiced.sum() >= 3:
        st = 12 * np.log2(f0[voiced] / 100.0)
        t = np.flatnonzero(voiced) * hop_s
        p10, p25, p50, p75, p90 = np.percentile(st, [10, 25, 50, 75, 90])
        out.update(f0_median_st=p50, f0_p10_st=p10, f0_p90_st=p90, f0_range_st=p90 - p10,
                   f0_iqr_st=p75 - p25, f0_std_st=st.std())
        out["f0_slope_st_per_s"] = float(np.polyfit(t - t.mean(), st, 1)[0]) if np.ptp(t) > 0 else 0.0
        steps = np.diff(st)[np.diff(np.flatnonzero(voiced)) == 1]
        out["f0_delta_abs_st"] = float(np.median(np.abs(steps))) if steps.size else 0.0
        tail = st[-max(3, st.size // 5):]
        out["f0_final_fall_st"] = float(tail[-1] - tail.max())
        out["periodicity_mean"], out["periodicity_std"] = peak[voiced].mean(), peak[voiced].std()
        out["voiced_level_db"] = level[voiced].mean()
    sp_level = level[speech]
    out["level_std_db"] = sp_level.std()
    out["level_range_db"] = np.percentile(sp_level, 95) - np.percentile(sp_level, 10)
    out["level_delta_abs_db"] = float(np.mean(np.abs(np.diff(level)))) if level.size > 1 else 0.0
    out["tilt_db_mean"], out["tilt_db_std"] = tilt[speech].mean(), tilt[speech].std()
    out["centroid_hz_mean"], out["centroid_hz_std"] = centroid[speech].mean(), centroid[speech].std()
    out["high_band_db"] = tilt[voiced].mean() if voiced.any() else tilt[speech].mean()
    out["flatness_mean"] = flatness[speech].mean()
    # syllable nuclei: local level maxima at least 3 dB above both neighbours 50 ms away, voiced
    if level.size > 10:
        mid = level[5:-5]
        nuclei = (mid > level[:-10] + 3) & (mid > level[10:] + 3) & (mid >= np.maximum(level[4:-6], level[6:-4]))
        out["peaks_per_voiced_s"] = float((nuclei & voiced[5:-5]).sum() / max(voiced.sum() * hop_s, 0.1))
    return np.array([out[k] for k in FEATURE_NAMES], dtype=np.float32)


def prosody_batch(waves: list[np.ndarray]) -> np.ndarray:
    """Return one row of :data:`FEATURE_NAMES` per waveform."""
    return np.stack([prosody_features(w) for w in waves]) if waves else np.zeros((0, len(FEATURE_NAMES)), np.float32)
