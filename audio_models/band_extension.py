"""Restoring, for the recogniser, the 4-8 kHz band that a phone line removes.

Whisper was trained on wideband audio. A call arrives as 8 kHz mu-law, so the top quarter of
Whisper's 80 log-mel bands (above ~3.4 kHz) is empty. Real speech survives that well enough
(WER 0.083 on RAVDESS's held-out actors), but the same espeak-ng caller utterances that
Whisper tiny hears with a WER of 0.11 at full band come back at 0.24-0.26 through the phone line;
mu-law alone costs nothing (0.12), the lost band is what costs (docs/MODEL_CARD.md,
"Transcription").

:class:`MelBandExtender` is a small 1-D convolutional network that predicts the upper bands of
Whisper's normalised log-mel features from the whole narrowband spectrogram around each frame.
It was trained on real speech only (RAVDESS training actors and TESS, never the held-out
actors, the benchmark's TESS sample or any synthetic voice), each clip's wideband features
being the target for its own telephone round trip (``emoroute train-band-extender``). The
recogniser's feature extractor is wrapped by :class:`BandExtendingFeatures`, which leaves
wideband input untouched: only audio with almost no energy above 4.3 kHz is extended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
DEFAULT_BAND_EXTENDER_DIR = Path(__file__).resolve().parent / "models" / "asr-band-extension"
WEIGHTS_FILE = "band_extender.npz"
CONFIG_FILE = "config.json"
N_MELS = 80
KERNEL = 5
DILATIONS = (1, 2, 1)
NARROWBAND_CUTOFF_HZ = 4300.0
NARROWBAND_MAX_SHARE = 5e-4  # phone-band audio: < 5e-5 measured; wideband speech: > 2.8e-3


class BandExtenderLoadError(RuntimeError):
    """The band extender's directory is missing or holds something else."""


def build_network(low_bin: int, hidden: int) -> Any:
    """Return the (untrained) torch module: narrowband features (B, 80, T) -> bands ``low_bin``.. (B, 80-low_bin, T)."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = N_MELS
    for dilation in DILATIONS:
        layers += [nn.Conv1d(channels, hidden, KERNEL, padding=dilation * (KERNEL // 2), dilation=dilation), nn.GELU()]
        channels = hidden
    layers.append(nn.Conv1d(hidden, N_MELS - low_bin, 1))
    return nn.Sequential(*layers)


def is_narrowband(audio: np.ndarray) -> bool:
    """Return True when ``audio`` (16 kHz) has almost no energy above 4.3 kHz, as after a phone line."""
    if len(audio) < 400:
        return False
    power = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return False
    cut = int(len(power) * NARROWBAND_CUTOFF_HZ / (SAMPLE_RATE / 2))
    return float(power[cut:].sum()) / total < NARROWBAND_MAX_SHARE


class MelBandExtender:
    """Predict Whisper's upper log-mel bands of phone-band speech from its lower ones."""

    def __init__(self, network: Any, low_bin: int, info: dict[str, Any]) -> None:
        """Keep a trained network (see :func:`build_network`) and the first band it predicts."""
        self.network = network.eval()
        self.low_bin = low_bin
        self.info = info

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_BAND_EXTENDER_DIR) -> MelBandExtender:
        """Load ``config.json`` and ``band_extender.npz`` from ``model_dir``."""
        import torch

        config_path, weights_path = model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise BandExtenderLoadError(
                f"{model_dir}: no band extender here (needs {CONFIG_FILE} and {WEIGHTS_FILE}); train one with "
                "`emoroute train-band-extender --data ../shared/data --out DIR`, or set the policy's "
                "text.asr_band_extension to false")
        info = json.loads(config_path.read_text())
        network = build_network(int(info["low_bin"]), int(info["hidden"]))
        with np.load(weights_path, allow_pickle=False) as z:
            state = {name: torch.from_numpy(z[name]) for name in z.files}
        try:
            network.load_state_dict(state)
        except RuntimeError as exc:
            raise BandExtenderLoadError(f"{weights_path}: weights do not match {config_path}: {exc}") from exc
        return cls(network, int(info["low_bin"]), info)

    def save(self, model_dir: Path) -> None:
        """Write the weights and the config (with ``info``) to ``model_dir``."""
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez(model_dir / WEIGHTS_FILE,
                 **{name: t.detach().cpu().numpy() for name, t in self.network.state_dict().items()})
        (model_dir / CONFIG_FILE).write_text(json.dumps(self.info | {"low_bin": self.low_bin}, indent=2) + "\n")

    def extend(self, features: np.ndarray) -> np.ndarray:
        """Return Whisper-normalised log-mel ``features`` (80, T) with the upper bands predicted.

        The prediction is kept within the utterance's own range (Whisper clamps each utterance to
        8 decades below its loudest band), so it never outshouts what was actually heard.
        """
        import torch

        if features.ndim != 2 or features.shape[0] != N_MELS or features.shape[1] == 0:
            return features
        with torch.inference_mode():
            upper = self.network(torch.from_numpy(np.ascontiguousarray(features[None], dtype=np.float32)))[0].numpy()
        out = features.astype(np.float32, copy=True)
        out[self.low_bin:] = np.clip(upper, features.min(), features.max())
        return out


class BandExtendingFeatures:
    """faster-whisper's feature extractor, with phone-band input's upper bands restored.

    Everything but the call is the wrapped extractor's (faster-whisper reads its hop length,
    sampling rate and frame counts).
    """

    def __init__(self, extractor: Any, extender: MelBandExtender) -> None:
        """Wrap ``extractor`` (a ``faster_whisper.feature_extractor.FeatureExtractor``)."""
        self._extractor = extractor
        self.extender = extender

    def __getattr__(self, name: str) -> Any:
        """Delegate the extractor's attributes."""
        return getattr(self._extractor, name)

    def __call__(self, waveform: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """Return the log-mel features; extended when ``waveform`` is phone-band."""
        features = self._extractor(waveform, *args, **kwargs)
        return self.extender.extend(features) if is_narrowband(waveform) else features
