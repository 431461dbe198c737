"""The recogniser's band extender on real speech: what it detects, predicts and changes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from audio_models.audio_io import load_audio
from audio_models.band_extension import (
    DEFAULT_BAND_EXTENDER_DIR,
    BandExtenderLoadError,
    BandExtendingFeatures,
    MelBandExtender,
    is_narrowband,
)
from audio_models.g711 import StreamingUpsampler, mulaw_decode, mulaw_encode, resample, telephone_round_trip
from audio_models.transcribe import WhisperTranscriber, word_error_rate
from tests.conftest import ravdess_clip


@pytest.fixture(scope="module")
def extender() -> MelBandExtender:
    return MelBandExtender.load()


@pytest.fixture(scope="module")
def held_out_wave(corpora: Path) -> np.ndarray:
    # actor 23 is held out of the extender's training, like 1, 2 and 24
    return load_audio(ravdess_clip(corpora, 23, "03", "02", "02"))


def _live_path(wave: np.ndarray) -> np.ndarray:
    """What the service hears: 8 kHz mu-law in 20 ms frames, upsampled frame by frame."""
    line = mulaw_encode(resample(wave, 16000, 8000))
    upsampler = StreamingUpsampler()
    return np.concatenate([upsampler.process(mulaw_decode(line[i:i + 160])) for i in range(0, len(line), 160)])


def test_phone_band_audio_is_told_from_wideband(held_out_wave):
    assert not is_narrowband(held_out_wave)
    assert is_narrowband(telephone_round_trip(held_out_wave))
    assert is_narrowband(_live_path(held_out_wave))
    assert not is_narrowband(np.zeros(16000, dtype=np.float32))
    assert not is_narrowband(np.zeros(0, dtype=np.float32))


def test_predicted_upper_bands_are_closer_to_the_real_ones_than_an_empty_band(extender, held_out_wave):
    fe = FeatureExtractor(feature_size=80)
    wide, phone = fe(held_out_wave), fe(telephone_round_trip(held_out_wave))
    n = min(wide.shape[1], phone.shape[1])
    wide, phone = wide[:, :n], phone[:, :n]
    extended = extender.extend(phone)
    lo = extender.low_bin
    empty_error = float(((phone[lo:] - wide[lo:]) ** 2).mean())
    predicted_error = float(((extended[lo:] - wide[lo:]) ** 2).mean())
    assert predicted_error < 0.5 * empty_error, (predicted_error, empty_error)
    np.testing.assert_array_equal(extended[:lo], phone[:lo])  # the bands the line kept are untouched
    assert extended.min() >= phone.min() and extended.max() <= phone.max()


def test_wideband_features_pass_through_untouched(extender, held_out_wave):
    fe = FeatureExtractor(feature_size=80)
    wrapped = BandExtendingFeatures(fe, extender)
    np.testing.assert_array_equal(wrapped(held_out_wave), fe(held_out_wave))
    phone = telephone_round_trip(held_out_wave)
    assert not np.array_equal(wrapped(phone), fe(phone))
    assert wrapped.hop_length == fe.hop_length  # faster-whisper reads the extractor's attributes


def test_transcriber_with_band_extension_hears_held_out_phone_calls(corpora):
    # actors held out of the extender's training, through the live path (20 ms mu-law frames)
    whisper = WhisperTranscriber(word_timestamps=False, band_extension=True)
    assert whisper.name.endswith("+band-extension")
    refs = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
    clips = [(actor, emo, st) for actor in (1, 23) for emo in ("01", "03", "05") for st in ("01", "02")]
    hyps = [whisper.transcribe(_live_path(load_audio(ravdess_clip(corpora, actor, emo, "01" if emo == "01" else "02",
                                                                  st)))).text for actor, emo, st in clips]
    assert word_error_rate([refs[st] for _, _, st in clips], hyps) <= 0.1, hyps


def test_a_missing_extender_fails_with_what_to_do(tmp_path):
    with pytest.raises(BandExtenderLoadError, match="train-band-extender"):
        MelBandExtender.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"low_bin": 58, "hidden": 8}))
    np.savez(tmp_path / "band_extender.npz", **{"0.weight": np.zeros((8, 80, 5), dtype=np.float32)})
    with pytest.raises(BandExtenderLoadError, match="do not match"):
        MelBandExtender.load(tmp_path)


def test_shipped_extender_records_how_it_was_trained():
    info = json.loads((DEFAULT_BAND_EXTENDER_DIR / "config.json").read_text())
    assert info["val_mse"] < 0.5 * info["val_mse_band_left_empty"]
    assert "training_log.txt" in {p.name for p in DEFAULT_BAND_EXTENDER_DIR.iterdir()}


def test_train_band_extender_command_writes_a_loadable_extender(corpora, tmp_path):
    # a few real clips in the corpora's layout: two training actors, a validation actor, TESS
    data = tmp_path / "data"
    for actor in (3, 19):
        folder = data / "ravdess" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for clip in sorted((corpora / "ravdess" / f"Actor_{actor:02d}").glob("*.flac"))[:3]:
            (folder / clip.name).symlink_to(clip)
    (data / "tess" / "OAF").mkdir(parents=True)
    for clip in sorted((corpora / "tess" / "OAF").glob("*.flac"))[1:3]:
        (data / "tess" / "OAF" / clip.name).symlink_to(clip)
    out = tmp_path / "extender"
    done = subprocess.run([sys.executable, "-m", "emoroute.cli", "train-band-extender", "--data", str(data),
                           "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--steps", "3",
                           "--hidden", "8"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["val_clips"] == 3 and summary["train_clips"] >= 3
    loaded = MelBandExtender.load(out)
    assert loaded.info["hidden"] == 8 and (out / "training_log.txt").read_text().startswith("clips:")


def test_train_band_extender_refuses_an_empty_corpus_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "emoroute.cli", "train-band-extender", "--data", str(tmp_path),
                           "--out", str(tmp_path / "out"), "--steps", "1"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "no RAVDESS or TESS clips" in done.stderr
