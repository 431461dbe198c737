"""The emotion network's two front ends: Fbank, and Whisper tiny.en's encoder block 1."""

import numpy as np
import pytest
import torch
import yaml

from audio_models.audio_io import load_audio
from audio_models.emotion import prepare_waveform
from audio_models.g711 import telephone_round_trip
from audio_models.nets import WHISPER_DIM, EmotionNet
from audio_models.training.features import _whisper_frames, clip_variants
from audio_models.whisper_encoder import WhisperLayerEmbedder
from tests.conftest import ravdess_clip


def test_whisper_frontend_keeps_its_training_statistics_with_the_weights(tmp_path):
    net = EmotionNet(n_classes=4, channels=32, emb_dim=16, frontend="whisper-block1")
    mean, std = torch.linspace(-1, 1, WHISPER_DIM), torch.linspace(0.5, 2, WHISPER_DIM)
    net.set_feature_statistics(mean, std)
    torch.save(net.state_dict(), tmp_path / "model.ckpt")
    again = EmotionNet(n_classes=4, channels=32, emb_dim=16, frontend="whisper-block1")
    again.load_state_dict(torch.load(tmp_path / "model.ckpt", weights_only=True))
    assert torch.equal(again.feat_mean, mean) and torch.equal(again.feat_std, std)
    net.eval()
    again.eval()
    frames, lens = torch.randn(2, 60, WHISPER_DIM), torch.tensor([1.0, 0.5])
    assert torch.allclose(net.forward_features(frames, lens), again.forward_features(frames, lens))
    # standardisation uses the stored statistics and zeroes the padded frames
    normed = net.norm(frames, lens)
    assert torch.allclose(normed[0], (frames[0] - mean) / std, atol=1e-5)
    assert torch.count_nonzero(normed[1, 30:]) == 0
    with pytest.raises(RuntimeError, match="whisper-block1"):
        net.features(torch.zeros(1, 16000))


def test_unknown_frontend_is_refused():
    with pytest.raises(ValueError, match="unknown front end 'wav2vec'"):
        EmotionNet(n_classes=4, frontend="wav2vec")


def test_training_frames_are_the_frames_inference_computes(corpora):
    raw = load_audio(ravdess_clip(corpora, 2, "05"))
    trained = _whisper_frames(clip_variants(raw, 1, seed=0)[0])  # variant 0: the telephone round trip
    frames, lens = WhisperLayerEmbedder(1).frames_batch([prepare_waveform(telephone_round_trip(raw))])
    assert trained.shape[1] == WHISPER_DIM and float(lens[0]) == 1.0
    assert trained.shape == tuple(frames.shape[1:])
    assert np.abs(trained - frames[0].numpy()).max() < 1e-3


def test_fused_whisper_frontend_model_reads_its_head_from_the_same_frames(tmp_path, corpora):
    from audio_models.emotion import DEFAULT_AFFECT_ANCHORS, FBANK_MODEL_DIR, EcapaEmotionModel
    from audio_models.whisper_head import FusedEmotionModel, LinearHead

    torch.manual_seed(0)
    labels = ["angry", "happy", "neutral", "sad"]
    model = {"n_classes": 4, "channels": 32, "emb_dim": 16, "frontend": "whisper-block1"}
    torch.save(EmotionNet(**model).state_dict(), tmp_path / "model.ckpt")
    hparams = {"name": "tiny-test", "version": "0", "labels": labels, "model": model,
               "affect_anchors": DEFAULT_AFFECT_ANCHORS}
    (tmp_path / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    rng = np.random.default_rng(0)
    head = LinearHead(rng.standard_normal(WHISPER_DIM), rng.uniform(0.5, 2, WHISPER_DIM),
                      rng.standard_normal((4, WHISPER_DIM)), rng.standard_normal(4), labels, block=1, ecapa_weight=0.75)
    head.save(tmp_path / "whisper_head.npz")
    fused = FusedEmotionModel.from_dir(tmp_path)
    assert fused.shares_frames and fused.embedder is fused.ecapa.whisper_frontend
    # clips of different lengths, more than one pass
    waves = [prepare_waveform(telephone_round_trip(load_audio(ravdess_clip(corpora, a, e))))[: int(16000 * s)]
             for a, e, s in [(1, "05", 3.0), (2, "02", 1.2), (23, "03", 2.0), (24, "04", 3.5), (1, "02", 0.8),
                             (2, "05", 2.5), (23, "02", 1.6), (24, "03", 2.9), (1, "04", 1.9)]]
    probs, means = fused.ecapa.class_probs(waves, frame_means=True)
    assert means is not None
    assert np.abs(means - WhisperLayerEmbedder(1).embed_batch(waves)).max() < 1e-4
    separate = FusedEmotionModel(fused.ecapa, fused.head, WhisperLayerEmbedder(1))
    assert not separate.shares_frames
    one, two = fused.classify_batch(waves), separate.classify_batch(waves)
    assert [r.label for r in one] == [r.label for r in two]
    assert max(abs(a.probs[k] - b.probs[k]) for a, b in zip(one, two, strict=True) for k in labels) < 1e-3
    with pytest.raises(ValueError, match="whisper-block1"):
        EcapaEmotionModel.from_dir(FBANK_MODEL_DIR).class_probs(waves, frame_means=True)
