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
    spectrum = np.abs(np.fft.rfft(variants[1]))
    above = np.fft.rfftfreq(len(variants[1]), 1 / 16000) > 4200
    # nothing survives above the 4 kHz Nyquist of the 8 kHz mu-law round trip (over the whole
    # clip: a first second of near-silence lets the resampler's leakage reach about 1%)
    assert spectrum[above].sum() < 0.01 * spectrum.sum()


def test_babble_is_other_voices_at_the_asked_snr_and_never_the_evaluation_voices(corpora, angry_audio,
                                                                                 neutral_audio):
    from audio_models.training.augment import babble
    from audio_models.training.corpora import babble_clips, list_corpora
    from audio_models.training.evaluate import NoiseMixer

    rng = np.random.default_rng(3)
    noise = babble(32000, rng, [angry_audio, neutral_audio, angry_audio[::-1], neutral_audio[::-1]])
    assert noise.shape == (32000,) and abs(np.sqrt(np.mean(noise**2)) - 1) < 1e-6
    clips = list_corpora(corpora)
    speakers = sorted({c.speaker for c in clips if c.speaker not in {"ravdess-01", "ravdess-02"}})
    train_voices = {c.speaker for c in babble_clips(clips, speakers, "training")}
    eval_pool = babble_clips(clips, speakers, "evaluation")
    assert train_voices and eval_pool and not train_voices & {c.speaker for c in eval_pool}
    mixer = NoiseMixer("babble", 10.0, eval_pool[:8])
    noisy = mixer(angry_audio).astype(np.float64)
    added = noisy - angry_audio
    snr = 10 * np.log10(np.mean(angry_audio.astype(np.float64) ** 2) / np.mean(added**2))
    assert abs(snr - 10.0) < 0.5
    # with no babble voices given, augmentation draws exactly what it drew before babble existed
    a = augment(angry_audio, np.random.default_rng(5))
    b = augment(angry_audio, np.random.default_rng(5), babble_talkers=())
    assert np.array_equal(a, b)
    assert not np.array_equal(a, augment(angry_audio, np.random.default_rng(5), babble_talkers=[neutral_audio] * 4))


def test_a_noisy_line_is_at_its_snr_and_its_babble_never_a_held_out_or_benchmark_voice(corpora, angry_audio):
    """Emotion v3n's noisy tables: speech power over active frames against the background, one seeded draw."""
    from audio_models.training.augment import NOISY_SNR_DB, mix_at_snr, noisy_copy
    from audio_models.training.corpora import held_out_speakers, list_corpora
    from audio_models.training.feature_tables import BENCHMARK_BABBLE, babble_talkers, caller_wave

    rng = np.random.default_rng(3)
    noise = rng.standard_normal(len(angry_audio))
    speech = angry_audio * (0.2 / np.abs(angry_audio).max())  # room for the noise: no level change
    mixed = mix_at_snr(speech, noise, 10.0)
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320).astype(np.float64)
    power = (frames**2).mean(axis=1)
    active = power[power > power.max() * 1e-4].mean()
    added = mixed.astype(np.float64) - speech
    assert abs(10 * np.log10(active / np.mean(added**2)) - 10.0) < 0.05
    loud = mix_at_snr(angry_audio * 3, noise, 0.0)
    assert np.abs(loud).max() <= 0.99 + 1e-6  # never clipped by the line
    draws = {round(float(np.std(noisy_copy(angry_audio, np.random.default_rng(s)) - angry_audio)), 4)
             for s in range(6)}
    assert len(draws) == 6  # a draw per seed: levels differ within NOISY_SNR_DB
    assert NOISY_SNR_DB == (5.0, 25.0)
    clips = list_corpora(corpora, ("ravdess",))
    talkers = babble_talkers(clips)
    held = {s for group in held_out_speakers().values() for s in group}
    assert talkers and not (set(talkers) & (held | BENCHMARK_BABBLE))
    a, b = caller_wave(clips[0], talkers), caller_wave(clips[0], talkers)
    assert np.array_equal(a, b) and not np.array_equal(a[: len(caller_wave(clips[0]))], caller_wave(clips[0]))
