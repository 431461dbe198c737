"""Optional backend: SpeechBrain's wav2vec2 IEMOCAP emotion model, from a local copy only.

It is never the default and never downloads anything: the hub weights are far
larger than our shipped model and the machines this runs on are offline. When
the local copy (or ``transformers`` and the wav2vec2-base weights it needs) is
missing, loading fails with a message that says exactly what to fetch and where.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audio_models.emotion import DEFAULT_AFFECT_ANCHORS, EmotionReading, ModelLoadError, affect_from_probs

HUB_SOURCE = "speechbrain/emotion-recognition-wav2vec2-IEMOCAP"
REQUIRED_FILES = ("hyperparams.yaml", "custom_interface.py", "wav2vec2.ckpt", "model.ckpt", "label_encoder.txt")
IEMOCAP_TO_OURS = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}


def _how_to_get(local_dir: Path) -> str:
    return (
        f"the optional speechbrain-hub backend needs a local copy of {HUB_SOURCE}: download "
        f"{', '.join(REQUIRED_FILES)} from https://huggingface.co/{HUB_SOURCE} into {local_dir}, put the "
        "facebook/wav2vec2-base weights in the Hugging Face cache (HF_HOME) and `pip install transformers`. "
        "The default backend (the models shipped in audio_models/models) needs none of this."
    )


class SpeechBrainHubEmotionModel:
    """Wraps SpeechBrain's ``CustomEncoderWav2vec2Classifier`` behind the EmotionModel interface."""

    labels: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

    def __init__(self, classifier: Any) -> None:
        """Wrap a loaded SpeechBrain classifier."""
        self.classifier = classifier
        self.name = f"speechbrain-hub:{HUB_SOURCE.split('/')[1]}"
        encoder = classifier.hparams.label_encoder
        self._index_labels = [IEMOCAP_TO_OURS.get(encoder.ind2lab[i], encoder.ind2lab[i])
                              for i in range(len(encoder.ind2lab))]

    @classmethod
    def from_dir(cls, local_dir: str | Path) -> SpeechBrainHubEmotionModel:
        """Load from ``local_dir``; raise ModelLoadError saying what to download when absent."""
        src = Path(local_dir)
        missing = [f for f in REQUIRED_FILES if not (src / f).is_file()]
        if missing:
            raise ModelLoadError(f"{src} lacks {', '.join(missing)}: {_how_to_get(src)}")
        try:
            import transformers  # noqa: F401 - speechbrain's wav2vec2 lobe needs it
        except ImportError as exc:
            raise ModelLoadError(f"transformers is not installed: {_how_to_get(src)}") from exc
        from speechbrain.inference.interfaces import foreign_class

        try:
            classifier = foreign_class(source=str(src), savedir=str(src), pymodule_file="custom_interface.py",
                                       classname="CustomEncoderWav2vec2Classifier")
        except Exception as exc:  # noqa: BLE001 - any failure here is "cannot load", with the fix named
            raise ModelLoadError(f"could not load {HUB_SOURCE} from {src} ({exc}): {_how_to_get(src)}") from exc
        return cls(classifier)

    def classify_batch(self, waves: Sequence[np.ndarray]) -> list[EmotionReading]:
        """Return one reading per 16 kHz waveform."""
        if not waves:
            return []
        longest = max(len(w) for w in waves)
        batch = torch.zeros(len(waves), longest)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
        lens = torch.tensor([len(w) / longest for w in waves])
        out_prob, _, _, _ = self.classifier.classify_batch(batch, lens)
        probs = torch.softmax(out_prob, dim=-1).numpy()
        readings = []
        for row in probs:
            p = {lab: 0.0 for lab in self.labels}
            for i, v in enumerate(row):
                if self._index_labels[i] in p:
                    p[self._index_labels[i]] += float(v)
            total = sum(p.values()) or 1.0
            p = {k: round(v / total, 4) for k, v in p.items()}
            arousal, valence = affect_from_probs(p, DEFAULT_AFFECT_ANCHORS)
            readings.append(EmotionReading(p, round(arousal, 4), round(valence, 4), self.name))
        return readings
