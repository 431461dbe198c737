"""The four corpora as EmoRoute reads them: labels, speakers and the fixed held-out speakers (real files)."""

from collections import Counter

import pytest

from audio_models.audio_io import load_audio
from audio_models.training.corpora import (
    ASED_HELD_OUT,
    LABELS,
    NEMO_HELD_OUT,
    list_ased,
    list_corpora,
    list_nemo,
)


def test_nemo_maps_four_emotions_of_nine_polish_actors(corpora):
    clips = list_nemo(corpora)
    assert {c.label for c in clips} == set(LABELS)
    assert len({c.speaker for c in clips}) == 9
    assert len(clips) == 749 + 749 + 809 + 769  # anger, happiness, neutral, sadness; fear and surprise left out
    assert set(NEMO_HELD_OUT) <= {c.speaker for c in clips}
    assert all(c.transcript for c in clips)  # the Polish sentence spoken
    assert load_audio(clips[0].path).size > 8000  # Ogg Opus, read by soundfile


def test_ased_speakers_are_gender_and_number_and_the_held_out_ten_are_balanced(corpora):
    clips = list_ased(corpora)
    assert {c.label for c in clips} == set(LABELS) and len(clips) == 2474 - 510  # fearful left out
    speakers = Counter(c.speaker for c in clips)
    held = [s for s in ASED_HELD_OUT if s in speakers]
    assert held == list(ASED_HELD_OUT)
    assert sum(s.startswith("ased-f") for s in held) == 5 and sum(s.startswith("ased-m") for s in held) == 5
    assert sum(speakers[s] for s in held) >= 400


def test_unknown_corpora_and_missing_folders_fail_clearly(corpora, tmp_path):
    with pytest.raises(ValueError, match="unknown corpus"):
        list_corpora(corpora, ("klingon",))
    with pytest.raises(FileNotFoundError, match="no nemo clips"):
        list_corpora(tmp_path, ("nemo",))


def test_a_four_corpus_run_never_trains_on_any_corpus_held_out_speakers(corpora):
    from audio_models.training.train import TrainConfig, corpora_for, split_clips

    cfg = TrainConfig(train_corpora=("ravdess", "tess", "nemo", "ased"))
    assert corpora_for(cfg, corpora) == ("ravdess", "tess", "nemo", "ased")
    train, val, tests = split_clips(list_corpora(corpora, corpora_for(cfg, corpora)), cfg)
    trained = {c.speaker for c in train}
    assert set(tests) == {"ravdess", "nemo", "ased"}  # TESS's two speakers are all trained on
    assert {c.speaker for c in tests["nemo"]} == set(NEMO_HELD_OUT)
    assert {c.speaker for c in tests["ased"]} == set(ASED_HELD_OUT)
    assert not trained & {c.speaker for v in tests.values() for c in v}
    assert not trained & {c.speaker for c in val}
    # a corpus left out of training is read all the same, and scored on all of its speakers
    loco = TrainConfig(train_corpora=("ravdess", "tess", "nemo"))
    assert corpora_for(loco, corpora) == ("ravdess", "tess", "nemo", "ased")
    _, _, out = split_clips(list_corpora(corpora, corpora_for(loco, corpora)), loco)
    assert len({c.speaker for c in out["ased"]}) >= 60
    # leaving RAVDESS out scores every RAVDESS actor but the validation ones; leaving TESS out, both speakers
    no_ravdess = TrainConfig(train_corpora=("tess", "nemo", "ased"))
    train, val, out = split_clips(list_corpora(corpora, corpora_for(no_ravdess, corpora)), no_ravdess)
    assert {c.speaker for c in out["ravdess"]} == {f"ravdess-{a:02d}" for a in range(1, 25) if a not in (19, 20)}
    assert not {c.corpus for c in train} & {"ravdess"} and {c.speaker for c in val} == {"ravdess-19", "ravdess-20"}
    no_tess = TrainConfig(train_corpora=("ravdess", "nemo", "ased"))
    _, _, out = split_clips(list_corpora(corpora, corpora_for(no_tess, corpora)), no_tess)
    assert {c.speaker for c in out["tess"]} == {"tess-OAF", "tess-YAF"}
