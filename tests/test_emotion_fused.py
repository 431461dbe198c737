"""The ecapa-whisper backend (the default until 2026-12-07): an ECAPA-TDNN fused with its Whisper block-1 head."""

import json
import shutil

import numpy as np
import pytest

from audio_models.backends import load_emotion_model
from audio_models.emotion import (
    FBANK_MODEL_DIR,
    FUSED_MODEL_DIR,
    ModelLoadError,
    prepare_waveform,
)
from audio_models.whisper_head import HEAD_FILE, FusedEmotionModel, LinearHead
from emoroute.cli import main
from tests.conftest import ravdess_clip
from tests.test_emotion_model import HELD_OUT, phone


@pytest.fixture(scope="module")
def fused() -> FusedEmotionModel:
    model = load_emotion_model("ecapa-whisper", FUSED_MODEL_DIR)
    assert isinstance(model, FusedEmotionModel)
    return model


def test_head_ships_small_and_was_fitted_on_the_models_training_speakers():
    head_file = FUSED_MODEL_DIR / HEAD_FILE
    assert head_file.stat().st_size < 100_000
    metrics = json.loads((FUSED_MODEL_DIR / "whisper_head_metrics.json").read_text())
    assert metrics["test"]["ravdess"]["fused"]["n"] == 144


def test_fused_posterior_lies_between_its_two_parts(fused, corpora):
    # (anger against neutral, per shipped model: tests/test_emotion_model.py)
    angry = [phone(ravdess_clip(corpora, a, "05")) for a in HELD_OUT]
    readings = fused.classify_batch(angry)
    for r in readings:
        assert abs(sum(r.probs.values()) - 1) < 1e-3 and -1 <= r.arousal <= 1 and -1 <= r.valence <= 1
        assert r.model.endswith("+whisper-head")
    # the fused posterior lies between its two parts
    ecapa = fused.ecapa.classify_batch(angry[:1])[0].probs["angry"]
    head = float(fused.head.probs(fused.embedder.embed_batch([prepare_waveform(angry[0])]))[0, 0])
    assert min(ecapa, head) - 1e-3 <= readings[0].probs["angry"] <= max(ecapa, head) + 1e-3


def test_head_round_trips_through_its_file(tmp_path):
    head = LinearHead.load(FUSED_MODEL_DIR / HEAD_FILE)
    head.save(tmp_path / HEAD_FILE)
    again = LinearHead.load(tmp_path / HEAD_FILE)
    x = np.random.default_rng(0).standard_normal((5, head.mean.size)).astype(np.float32)
    assert again.labels == head.labels and np.allclose(again.probs(x), head.probs(x))


@pytest.mark.parametrize(("model_dir", "chosen"),
                         [(FUSED_MODEL_DIR, (1, 1.0, 0.75)), (FBANK_MODEL_DIR, (1, 0.1, 0.25))])
def test_each_head_reads_the_settings_chosen_on_validation_actors(model_dir, chosen):
    model = load_emotion_model("ecapa-whisper", model_dir)
    assert isinstance(model, FusedEmotionModel)
    metrics = json.loads((model_dir / "whisper_head_metrics.json").read_text())
    assert (metrics["block"], metrics["C"], metrics["ecapa_weight"]) == chosen
    assert (model.head.block, model.ecapa_weight) == (chosen[0], chosen[2])
    assert model.embedder.block == 1 and model.embedder.encoder.n_blocks == 1
    # the fused model's ECAPA-TDNN reads Whisper frames itself, so the head shares its pass
    assert model.shares_frames == (model_dir == FUSED_MODEL_DIR)


def test_a_head_from_before_blocks_must_be_refitted(tmp_path):
    for name in ("hparams.yaml", "model.ckpt"):
        shutil.copy(FUSED_MODEL_DIR / name, tmp_path / name)
    head = LinearHead.load(FUSED_MODEL_DIR / HEAD_FILE)
    np.savez(tmp_path / HEAD_FILE, mean=head.mean, scale=head.scale, coef=head.coef, intercept=head.intercept,
             labels=np.array(head.labels))
    with pytest.raises(ModelLoadError, match="final encoder output.*emoroute train-emotion-head"):
        FusedEmotionModel.from_dir(tmp_path)


def test_missing_head_says_how_to_fit_it(tmp_path):
    for name in ("hparams.yaml", "model.ckpt"):
        shutil.copy(FUSED_MODEL_DIR / name, tmp_path / name)
    with pytest.raises(ModelLoadError, match="emoroute train-emotion-head"):
        FusedEmotionModel.from_dir(tmp_path)


def test_classify_cli_with_the_fused_backend(corpora, capsys):
    path = ravdess_clip(corpora, 24, "05")
    assert main(["classify", "--backend", "ecapa-whisper", "--model", str(FUSED_MODEL_DIR), "--telephone", "--json",
                 str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label"] == "angry" and result["model"].endswith("+whisper-head")


def test_the_four_corpus_model_loads_by_name_and_hears_amharic_anger(corpora):
    # shipped beside the default for lines with Polish or Amharic callers
    # (docs/experiments/2026-11-29-emotion-v2-ship-rule.md)
    from audio_models.training.corpora import ASED_HELD_OUT, list_corpora

    model = load_emotion_model("ecapa-whisper", "emotion-v2-four-corpora")
    assert isinstance(model, FusedEmotionModel) and "emotion-v2-run1" in model.name
    assert set(model.hparams["training"]["train_corpora"]) == {"ravdess", "tess", "nemo", "ased"}
    trained = set(model.hparams["training"]["train_speakers"])
    angry = [c for c in list_corpora(corpora, ("ased",)) if c.speaker in ASED_HELD_OUT and c.label == "angry"][::12]
    assert len(angry) >= 10 and not trained & {c.speaker for c in angry}
    from audio_models.audio_io import load_audio
    from audio_models.g711 import telephone_round_trip

    heard = [max(r.probs, key=lambda k: r.probs[k]) for r in
             model.classify_batch([telephone_round_trip(load_audio(c.path)) for c in angry])]
    assert heard.count("angry") >= 0.8 * len(heard) and "happy" not in heard, heard
    with pytest.raises(ModelLoadError):
        load_emotion_model("ecapa-whisper", "no-such-model")
