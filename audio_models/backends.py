"""Loading an emotion backend by name: the one module that knows every backend."""

from __future__ import annotations

from pathlib import Path

from audio_models.emotion import EcapaEmotionModel
from audio_models.emotion_types import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL_DIR, EmotionModel, ModelLoadError
from audio_models.multilingual_head import HEAD_FILE, WhisperHeadEmotionModel
from audio_models.whisper_head import HEAD_FILE as FUSED_HEAD_FILE
from audio_models.whisper_head import FusedEmotionModel


def shipped_model_dir(source: str | Path) -> Path:
    """Return ``source``, or the shipped model directory of that name when ``source`` is no path here."""
    path = Path(source)
    shipped = DEFAULT_MODEL_DIR.parent / path.name
    if not path.exists() and path.name == str(source) and shipped.is_dir():
        return shipped
    return path


def load_emotion_model(backend: str = DEFAULT_BACKEND, source: str | Path = DEFAULT_MODEL_DIR) -> EmotionModel:
    """Return the named backend loaded from ``source``.

    'whisper-head' (the default): model v3's head on Whisper block means (``head.npz``);
    'ecapa': the directory's ECAPA-TDNN alone; 'ecapa-whisper': fused with the block-1 head in
    the same directory (``whisper_head.npz``). A directory that can be read one way only is read
    that way whatever the backend says: a v3 directory as 'whisper-head', an ECAPA directory asked
    for 'whisper-head' as 'ecapa-whisper' (or 'ecapa' without a head). ``source`` may also be the
    bare name of a shipped model directory (``emotion-whisper-ecapa``, ``emotion-v2-four-corpora``,
    ``emotion-ecapa``).
    """
    source = shipped_model_dir(source)
    ecapa_dir = (source / "model.ckpt").is_file()
    if (source / HEAD_FILE).is_file() and not ecapa_dir:
        backend = "whisper-head"  # the directory can only be read one way
    elif backend == "whisper-head" and ecapa_dir:
        backend = "ecapa-whisper" if (source / FUSED_HEAD_FILE).is_file() else "ecapa"
    if backend == "ecapa":
        return EcapaEmotionModel.from_dir(source)
    if backend == "ecapa-whisper":
        return FusedEmotionModel.from_dir(source)
    if backend == "whisper-head":
        return WhisperHeadEmotionModel.from_dir(source)
    raise ModelLoadError(f"unknown emotion backend {backend!r}: choose one of {', '.join(BACKENDS)}")
