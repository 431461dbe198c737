"""Training augmentation on real speech: telephone band, and speed perturbation as asked."""

import numpy as np

from audio_models.training.augment import augment
from audio_models.training.features import clip_variants


def test_augmented_variants_are_telephone_band_and_use_the_given_speeds(angry_audio):
    rng = np.random.default_rng(0)
    lengths = {len(augment(angry_audio, rng, speed_factors=(1.25,))) for _ in range(12)}
    # unchanged (speed not drawn) or stretched by the one factor allowed (the 8 kHz trip may add a sample)
    assert len(lengths) == 2
    short, long = sorted(lengths)
    assert abs(short - len(angry_audio)) <= 2 and abs(long / len(angry_audio) - 1.25) < 1e-3
    variants = clip_variants(angry_audio, 4, seed=7)
    assert len(variants) == 4 and all(v.dtype == np.float32 and np.abs(v).max() <= 1.0 for v in variants)
    spectrum = np.abs(np.fft.rfft(variants[1][:16000]))
    # nothing survives above the 4 kHz Nyquist of the 8 kHz mu-law round trip
    assert spectrum[4200:].sum() < 0.01 * spectrum.sum()
