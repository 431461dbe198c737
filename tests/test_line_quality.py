"""Line quality per reading: noise, other talkers, clipping and lost media, on real speech."""

import numpy as np
import pytest

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.line_quality import assess
from benchmarks.noisy_lines import babble, mix
from router.policy import load_policy
from tests.conftest import ravdess_clip

FLOOR = load_policy().line


def _speech(corpora, actor: int) -> np.ndarray:
    return load_audio(ravdess_clip(corpora, actor, "01", intensity="01"))


def test_clean_speech_on_the_phone_line_is_usable(corpora):
    for actor in (1, 2, 23, 24):
        q = assess(telephone_round_trip(_speech(corpora, actor)))
        assert q.snr_db >= FLOOR.min_snr_db + 5 and q.usable(FLOOR.min_snr_db), (actor, q)
        assert q.clipped == 0 and q.background == ""


def test_four_background_talkers_at_0_db_make_tone_unusable_and_are_named(corpora):
    speech = _speech(corpora, 1)
    noisy = telephone_round_trip(mix(speech, babble(corpora, len(speech), 4, first_actor=3), 0.0))
    q = assess(noisy)
    assert q.snr_db < FLOOR.min_snr_db and not q.usable(FLOOR.min_snr_db), q
    assert q.background == "talkers or music"
    # louder background, lower estimate: the estimate follows the line
    better = assess(telephone_round_trip(mix(speech, babble(corpora, len(speech), 4, first_actor=3), 20.0)))
    assert better.snr_db > q.snr_db + 5


def test_hiss_is_steady_noise(corpora):
    speech = _speech(corpora, 2)
    hiss = np.random.default_rng(0).normal(size=len(speech)).astype(np.float32)
    q = assess(telephone_round_trip(mix(speech, hiss, 5.0)))
    assert q.background == "steady noise" and not q.usable(FLOOR.min_snr_db), q


def test_an_overdriven_handset_and_lost_media_are_unusable(corpora):
    speech = _speech(corpora, 23)
    clipped = np.clip(speech * 40.0, -1.0, 1.0)
    q = assess(clipped)
    assert q.clipped > FLOOR.max_clipped and not q.usable(FLOOR.min_snr_db, FLOOR.max_clipped), q
    seconds = len(speech) / 16000
    lossy = assess(telephone_round_trip(speech), dropped_ms=int(seconds * 1000 * 0.4))
    assert lossy.dropped_ms > 0 and not lossy.usable(FLOOR.min_snr_db, FLOOR.max_clipped,
                                                     FLOOR.max_dropped_share, seconds=seconds)
    assert lossy.as_dict()["dropped_ms"] == lossy.dropped_ms


def test_bad_input_is_refused_and_a_short_stretch_counts_as_clean():
    with pytest.raises(ValueError):
        assess(np.full(16000, np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        assess(np.zeros((2, 16000), dtype=np.float32))
    assert assess(np.zeros(1000, dtype=np.float32)).usable(FLOOR.min_snr_db)
