"""The early-block Whisper encoder that the ecapa-whisper head reads, on real speech."""

import struct

import ctranslate2
import numpy as np
import pytest
import torch

from audio_models.emotion import ModelLoadError, prepare_waveform
from audio_models.whisper_encoder import (
    WhisperEarlyEncoder,
    WhisperLayerEmbedder,
    default_model_dir,
    read_ctranslate2_tensors,
)
from tests.conftest import ravdess_clip
from tests.test_emotion_model import phone


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    return read_ctranslate2_tensors(default_model_dir() / "model.bin")


@pytest.fixture(scope="module")
def speech(corpora) -> list[np.ndarray]:
    # different lengths: an angry and a neutral line of two actors, and one cut short
    paths = [ravdess_clip(corpora, a, e, intensity="01") for a in (1, 24) for e in ("01", "05")]
    waves = [prepare_waveform(phone(p)) for p in paths]
    return [*waves, waves[0][:12000]]


def test_all_four_blocks_reproduce_ctranslate2s_own_encoder(tensors, speech):
    """Four blocks plus the final layer norm must equal CTranslate2's float32 encoder output."""
    embedder = WhisperLayerEmbedder(4)
    mel = embedder.log_mel(speech[1])
    reference = ctranslate2.models.Whisper(str(default_model_dir()), device="cpu", compute_type="float32")
    expected = np.asarray(reference.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])),
                                           to_cpu=True))[0]
    with torch.inference_mode():
        states, _ = embedder.encoder.hidden_states(torch.from_numpy(mel[None]), torch.tensor([mel.shape[1]]))
        ours = torch.nn.functional.layer_norm(states[-1], (embedder.dim,),
                                              torch.from_numpy(tensors["encoder/layer_norm/gamma"].astype(np.float32)),
                                              torch.from_numpy(tensors["encoder/layer_norm/beta"].astype(np.float32)))
    assert ours.shape[1:] == expected.shape
    assert np.abs(ours[0].numpy() - expected).max() < 1e-2


def test_an_embedding_does_not_depend_on_the_rest_of_the_batch(speech):
    embedder = WhisperLayerEmbedder(1)
    alone = np.stack([embedder.embed_batch([w])[0] for w in speech])
    together = embedder.embed_batch(speech)
    assert together.shape == (len(speech), 384)
    assert np.abs(together - alone).max() < 1e-4
    every = embedder.embed_batch(speech, all_blocks=True)
    assert every.shape == (len(speech), 2, 384) and np.abs(every[:, 1] - alone).max() < 1e-4
    # and the embedding does tell an angry line from a neutral one of the same actor
    assert np.linalg.norm(alone[0] - alone[1]) > 0.1 * np.linalg.norm(alone[0])


def test_a_truncated_model_file_is_a_clear_load_error(tmp_path):
    data = (default_model_dir() / "model.bin").read_bytes()
    cut = tmp_path / "model.bin"
    cut.write_bytes(data[:1000])
    with pytest.raises(ModelLoadError, match="truncated or not a CTranslate2 model"):
        read_ctranslate2_tensors(cut)
    old = tmp_path / "old.bin"
    old.write_bytes(struct.pack("I", 3) + data[4:1000])
    with pytest.raises(ModelLoadError, match="version 3 is not supported"):
        read_ctranslate2_tensors(old)


def test_missing_encoder_tensors_are_named(tensors):
    partial = {k: v for k, v in tensors.items() if "layer_0/ffn" not in k}
    with pytest.raises(ModelLoadError, match="layer_0/ffn"):
        WhisperEarlyEncoder(partial, 1)
    # the convolutions alone need no block tensors
    assert WhisperEarlyEncoder(partial, 0).n_blocks == 0
