"""The shipped model on real held-out speech, through the telephone band."""

from pathlib import Path

import numpy as np
import pytest

from audio_models.audio_io import load_audio
from audio_models.backends import load_emotion_model
from audio_models.emotion import (
    DEFAULT_MODEL_DIR,
    FBANK_MODEL_DIR,
    FUSED_MODEL_DIR,
    PASS_SIZE,
    EcapaEmotionModel,
    ModelLoadError,
)
from audio_models.g711 import telephone_round_trip
from audio_models.hub import SpeechBrainHubEmotionModel
from audio_models.training.metrics import classification_summary
from tests.conftest import ravdess_clip

HELD_OUT = (1, 2, 23, 24)


def phone(path: Path) -> np.ndarray:
    return telephone_round_trip(load_audio(path))


def test_shipped_model_is_small_and_speaker_independent(emotion_model):
    assert set(emotion_model.labels) >= {"angry", "happy", "neutral", "sad"}
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size < 20e6
    trained = set(emotion_model.hparams["training"]["train_speakers"])
    tested = set(emotion_model.hparams["split"]["test_speakers"]["ravdess"])
    assert tested == {f"ravdess-{a:02d}" for a in HELD_OUT}
    assert not trained & tested


@pytest.fixture(scope="module", params=["default", "ecapa-tdnn-alone", "fbank", "fbank-fused", "fused"])
def each_shipped_model(request, emotion_model):
    """The default (v3), and each other way the shipped weights can be loaded."""
    return {"default": lambda: emotion_model,
            "fused": lambda: load_emotion_model("whisper-head", "emotion-whisper-ecapa"),  # read the one way it can
            "ecapa-tdnn-alone": lambda: load_emotion_model("ecapa", FUSED_MODEL_DIR),
            "fbank": lambda: load_emotion_model("ecapa", FBANK_MODEL_DIR),
            "fbank-fused": lambda: load_emotion_model("ecapa-whisper", FBANK_MODEL_DIR)}[request.param]()


def test_strong_anger_and_neutral_of_unseen_speakers(each_shipped_model, corpora):
    emotion_model = each_shipped_model
    pairs = [(a, s) for a in HELD_OUT for s in ("01", "02")]
    angry = [phone(ravdess_clip(corpora, a, "05", statement=s)) for a, s in pairs]
    neutral = [phone(ravdess_clip(corpora, a, "01", intensity="01", statement=s)) for a, s in pairs]
    readings = emotion_model.classify_batch(angry + neutral)
    angry_r, neutral_r = readings[:8], readings[8:]
    assert sum(r.label == "angry" for r in angry_r) >= 6, [r.label for r in angry_r]
    assert sum(r.label in ("neutral", "sad") for r in neutral_r) >= 6, [r.label for r in neutral_r]
    # per speaker, anger scores higher on P(angry) and arousal than the same speaker's neutral
    for a, n in zip(angry_r, neutral_r, strict=True):
        assert a.probs["angry"] > n.probs["angry"]
        assert a.arousal > n.arousal


def test_reading_shape_and_ranges(emotion_model, angry_audio):
    r = emotion_model.classify(angry_audio)
    assert abs(sum(r.probs.values()) - 1) < 1e-3
    assert -1 <= r.arousal <= 1 and -1 <= r.valence <= 1
    assert r.model == emotion_model.name and r.model.startswith("emotion-v3")  # the default since 2026-12-07


def test_batch_of_different_lengths_matches_single_calls(emotion_model, angry_audio, neutral_audio):
    waves = [angry_audio, neutral_audio[: 16000 * 1], np.concatenate([neutral_audio, neutral_audio])]
    batch = emotion_model.classify_batch(waves)
    for wave, b in zip(waves, batch, strict=True):
        single = emotion_model.classify(wave)
        assert single.label == b.label
        # the ECAPA-TDNN's convolutions pad a waveform alone by reflection, in a batch with the
        # zeros after it: the 1 s clip here, padded to 7 s, moves by up to 0.06 (docs/MODEL_CARD.md)
        for k in single.probs:
            assert abs(single.probs[k] - b.probs[k]) < 0.1


def test_a_batch_larger_than_one_pass_comes_back_in_the_callers_order(emotion_model, corpora):
    # 12 real clips of 1-3.6 s, longest first, so the length-sorted passes of 8 reorder them
    paths = [ravdess_clip(corpora, a, e, intensity="01") for a in HELD_OUT for e in ("01", "05", "03")]
    waves = sorted((phone(p)[: 16000 + 4000 * i] for i, p in enumerate(paths)), key=len, reverse=True)
    assert len(waves) > PASS_SIZE
    batch = np.array([[r.probs[k] for k in emotion_model.labels] for r in emotion_model.classify_batch(waves)])
    alone = np.array([[r.probs[k] for k in emotion_model.labels] for w in waves for r in [emotion_model.classify(w)]])
    # each batched reading is nearest to its own waveform's reading alone: the order is kept
    distances = np.abs(batch[:, None, :] - alone[None, :, :]).sum(axis=2)
    assert list(distances.argmin(axis=1)) == list(range(len(waves)))
    # padding to the pass's longest moves a reading a little, most for the shortest utterances
    assert (batch.argmax(axis=1) == alone.argmax(axis=1)).sum() >= 10
    assert np.abs(batch - alone).max(axis=1).mean() < 0.05


def test_short_and_long_inputs_are_accepted(emotion_model, angry_audio):
    assert emotion_model.classify(angry_audio[:3200]).label in emotion_model.labels  # 0.2 s, padded
    long = np.tile(angry_audio, 10)  # ~40 s, capped at 30 s
    assert emotion_model.classify(long).label in emotion_model.labels


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.full(16000, np.nan, dtype=np.float32), "NaN"),
        (np.zeros((2, 16000), dtype=np.float32), "mono"),
    ],
)
def test_malformed_waveforms_raise_clear_errors(emotion_model, wave, message):
    with pytest.raises(ValueError, match=message):
        emotion_model.classify(wave)


def test_missing_model_directory_says_how_to_train(tmp_path):
    with pytest.raises(ModelLoadError, match="emoroute train-emotion"):
        EcapaEmotionModel.from_dir(tmp_path)


def test_hub_backend_offline_names_what_to_download(tmp_path):
    with pytest.raises(ModelLoadError, match="huggingface.co/speechbrain/emotion-recognition-wav2vec2-IEMOCAP"):
        SpeechBrainHubEmotionModel.from_dir(tmp_path)


def test_per_utterance_normalisations_use_only_the_utterance(angry_audio):
    import torch

    from audio_models.nets import EmotionNet, utterance_mean_norm, utterance_mean_var_norm

    net = EmotionNet(n_classes=4)
    wav = torch.from_numpy(np.stack([angry_audio[:32000], np.pad(angry_audio[:16000], (0, 16000))]))
    lens = torch.tensor([1.0, 0.5])
    feats = net.features(wav) * torch.tensor([[[1.0]], [[3.0]]])  # the second "line" is louder and wider
    half = feats.shape[1] // 2
    cmn = utterance_mean_norm(feats, lens)
    cmvn = utterance_mean_var_norm(feats, lens)
    assert torch.allclose(cmn[0].mean(dim=0), torch.zeros(feats.shape[2]), atol=1e-4)
    assert torch.allclose(cmvn[0].std(dim=0, unbiased=False), torch.ones(feats.shape[2]), atol=1e-2)
    assert torch.allclose(cmvn[1, :half].std(dim=0, unbiased=False), torch.ones(feats.shape[2]), atol=1e-2)
    assert torch.count_nonzero(cmvn[1, half + 1:]) == 0  # padding stays zero
    with pytest.raises(ValueError, match="unknown feature normalisation 'zscore'"):
        EmotionNet(n_classes=4, norm="zscore")


def test_arousal_and_valence_figures_read_off_real_predictions(emotion_model, corpora):
    classes = {"05": "angry", "03": "happy", "01": "neutral", "04": "sad"}
    truth, waves = [], []
    for actor in HELD_OUT:
        for code, label in classes.items():
            waves.append(phone(ravdess_clip(corpora, actor, code, intensity="01")))
            truth.append(label)
    preds = [r.label for r in emotion_model.classify_batch(waves)]
    summary = classification_summary(truth, preds, emotion_model.labels)
    # merging classes into two sides can only forgive errors, never add them
    assert summary["arousal_uar"] >= summary["uar"] and summary["valence_uar"] >= summary["uar"], summary
    # a happy caller heard as angry: right on arousal, wrong on valence
    mixed = classification_summary(["happy", "angry"], ["angry", "angry"], emotion_model.labels)
    assert (mixed["arousal_uar"], mixed["valence_uar"]) == (1.0, 0.5)


def test_loading_a_model_leaves_numpys_blas_one_thread(emotion_model):
    # numpy's spinning OpenBLAS threads took the cores from torch's (audio_models/threads.py)
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info() if pool["internal_api"] == "openblas"]
    assert blas, "numpy's OpenBLAS was not found: the cap in audio_models/threads.py has nothing to act on"
    assert all(pool["num_threads"] == 1 for pool in blas)


def test_every_shipped_model_file_is_packaged():
    # a non-editable install (the Docker image) gets only package-data: the default needs head.npz
    # and calibration.json, the fused backend whisper_head.npz as much as its weights
    import tomllib

    root = DEFAULT_MODEL_DIR.parent.parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    packaged = {p for pattern in pyproject["tool"]["setuptools"]["package-data"]["audio_models"]
                for p in root.glob(pattern)}  # setuptools' glob: "*" stays within one folder
    files = {p for p in (root / "models").rglob("*") if p.is_file()}  # every model: emotion and band extender
    assert DEFAULT_MODEL_DIR / "head.npz" in files and FUSED_MODEL_DIR / "whisper_head.npz" in files
    assert root / "models" / "asr-band-extension" / "band_extender.npz" in files
    assert sorted(files - packaged) == []


def test_model_directories_hold_only_what_loading_and_citing_needs():
    root = DEFAULT_MODEL_DIR.parent
    needed = {"hparams.yaml", "model.ckpt", "metrics.json", "train_log.txt", "whisper_head.npz",
              "whisper_head_log.txt", "whisper_head_metrics.json", "band_extender.npz", "config.json",
              "training_log.txt", "head.npz", "calibration.json", "language_head.npz"}
    models = [d for d in root.iterdir() if d.is_dir()]
    assert {d.name for d in models} == {"emotion-whisper-ecapa", "emotion-ecapa", "emotion-v2-four-corpora",
                                        "emotion-v3-nine-corpora", "asr-band-extension", "language-id-v1"}
    extra = sorted(str(p.relative_to(root)) for d in models for p in d.rglob("*") if p.is_dir() or p.name not in needed)
    assert extra == []  # experiment records live in docs/experiments/, benchmark tables in benchmarks/results/


def test_v3_is_trained_on_nine_corpora_and_never_on_a_held_out_speaker():
    from audio_models.multilingual_head import WhisperHeadEmotionModel
    from audio_models.training.corpora import ALL_CORPORA, held_out_speakers

    model = load_emotion_model("ecapa", "emotion-v3-nine-corpora")  # the directory picks its backend
    assert isinstance(model, WhisperHeadEmotionModel) and model.temperature and model.temperature > 1
    training = model.hparams["training"]
    assert training["corpora"] == list(ALL_CORPORA) and training["leave_out"] is None
    held = {s for group in held_out_speakers().values() for s in group}
    assert held and not held & set(training["train_speakers"])
    assert {s.split("-")[0] for s in training["train_speakers"]} == set(ALL_CORPORA)


def test_v3_reads_a_language_it_was_trained_on_through_the_phone_line(corpora):
    # EYASE's held-out man (Egyptian Arabic TV speech): the calibrated anger reading of his angry clips
    # stands above his neutral ones on average
    model = load_emotion_model("whisper-head", "emotion-v3-nine-corpora")
    angry = sorted((corpora / "eyase" / "Male03").glob("ml03_ang_*.ogg"))[:8]
    calm = sorted((corpora / "eyase" / "Male03").glob("ml03_neu_*.ogg"))[:8]
    assert len(angry) == len(calm) == 8
    readings = model.classify_batch([phone(p) for p in angry + calm])
    p_angry = [r.probs["angry"] for r in readings]
    assert np.mean(p_angry[:8]) > np.mean(p_angry[8:]) + 0.05
    assert all(abs(sum(r.probs.values()) - 1) < 1e-3 and -1 <= r.valence <= 1 for r in readings)


def test_recipes_parse_and_refuse_nonsense():
    from audio_models.training.head_v3 import Recipe

    assert Recipe.parse("tiny-b1-4+p") == Recipe("tiny.en", (1, 2, 3, 4), True)
    assert Recipe.parse("base-b2") == Recipe("base", (2,), False)
    assert Recipe.parse("tiny-b1-4+p+n") == Recipe("tiny.en", (1, 2, 3, 4), True, noisy=True)
    for nonsense in ("large-b9", "tiny-b1+x", "tiny-b1+p+p"):
        with pytest.raises(ValueError, match="base-b1-3"):
            Recipe.parse(nonsense)


def test_the_service_names_a_tone_floor_the_default_model_can_never_reach(emotion_model, angry_audio, caplog):
    # v3's calibration caps its anger and happiness readings at 0.863 (audio_models.calibration: the
    # log floor, and the sad prior that lifts sadness's cap to 0.898): the shipped sales floor (0.9)
    # is out of reach, and the server says so at start; the retention floor (0.8) is not
    from emoroute.services import _warn_unreachable_floors
    from router.policy import load_policy

    policy = load_policy()
    cap = emotion_model.highest_of("angry")
    sad_cap = emotion_model.highest_of("sad")
    assert cap == emotion_model.highest_of("happy") < sad_cap == emotion_model.highest_probability
    assert policy.emotion_routing.retention_min_anger < cap < policy.emotion_routing.sales_min_happy
    assert cap == pytest.approx(0.863, abs=1e-3) and emotion_model.highest_probability == pytest.approx(0.898, abs=1e-3)
    assert 0.8 < max(emotion_model.classify(angry_audio).probs.values()) <= cap + 1e-4  # strong anger meets the cap
    with caplog.at_level("WARNING", logger="emoroute.services"):
        _warn_unreachable_floors(emotion_model, policy)
    assert [r.getMessage().split(" is ")[0] for r in caplog.records] == ["emotion_routing.sales_min_happy"]
