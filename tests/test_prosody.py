"""The pitch and voice-quality statistics (audio_models.prosody) on tones of known pitch and on real voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_models.audio_io import load_audio
from audio_models.emotion_types import prepare_waveform
from audio_models.g711 import telephone_round_trip
from audio_models.prosody import FEATURE_NAMES, prosody_features
from tests.conftest import ravdess_clip

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _voice_like(f0: float, seconds: float = 2.0, gain: float = 0.1) -> np.ndarray:
    """A harmonic tone gliding ±5 % around ``f0``, through the phone line."""
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * t))) / 16000
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * gain
    return prepare_waveform(telephone_round_trip(np.asarray(wave, dtype=np.float32)))


@pytest.mark.parametrize("f0", [90.0, 140.0, 220.0, 320.0])
def test_pitch_of_a_harmonic_tone_through_the_phone_line(f0: float) -> None:
    # the fundamental of 90 Hz is below the line's 300 Hz: the pitch is read from the harmonics
    v = prosody_features(_voice_like(f0))
    assert v[F["voiced_share"]] > 0.9
    assert v[F["f0_median_st"]] == pytest.approx(12 * np.log2(f0 / 100), abs=1.0)
    assert v[F["f0_range_st"]] < 3.0


def test_gain_does_not_change_the_statistics() -> None:
    quiet, loud = prosody_features(_voice_like(150.0, gain=0.02)), prosody_features(_voice_like(150.0, gain=0.3))
    assert np.allclose(quiet, loud, atol=0.35), dict(zip(FEATURE_NAMES, np.round(loud - quiet, 2), strict=True))


def test_real_voices_lower_and_higher(corpora: Path) -> None:
    # RAVDESS actor 1 is a man, actor 2 a woman; the same neutral sentence
    man = prosody_features(prepare_waveform(telephone_round_trip(load_audio(ravdess_clip(corpora, 1, "01", "01")))))
    woman = prosody_features(prepare_waveform(telephone_round_trip(load_audio(ravdess_clip(corpora, 2, "01", "01")))))
    assert woman[F["f0_median_st"]] - man[F["f0_median_st"]] > 6  # at least half an octave apart
    # the same man shouting in anger: higher, more varied pitch than his neutral reading
    angry = prosody_features(prepare_waveform(telephone_round_trip(load_audio(ravdess_clip(corpora, 1, "05")))))
    assert angry[F["f0_median_st"]] > man[F["f0_median_st"]] + 3


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="16000"):
        prosody_features(np.zeros(8000, dtype=np.float32), sample_rate=8000)
    with pytest.raises(ValueError, match="mono"):
        prosody_features(np.zeros((2, 100), dtype=np.float32))
    assert np.all(np.isfinite(prosody_features(np.zeros(16000, dtype=np.float32))))
