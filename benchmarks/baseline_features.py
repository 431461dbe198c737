"""The usual open-source SER baseline: librosa MFCC/mel/chroma/f0 statistics + an RBF SVM."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import librosa
import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import Clip


def librosa_features(wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Return utterance statistics: MFCC(40) mean/std, mel(64) mean, chroma mean, f0 and energy stats."""
    mfcc = librosa.feature.mfcc(y=wave, sr=sr, n_mfcc=40)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=wave, sr=sr, n_mels=64, fmax=4000))
    # tuning=0.0: estimate_tuning runs a numba gufunc that segfaults on some CPUs (numba 0.68.1, AMD EPYC),
    # taking the whole benchmark down; the baseline needs no tuning estimate
    chroma = librosa.feature.chroma_stft(y=wave, sr=sr, tuning=0.0)
    f0 = librosa.yin(wave, fmin=60, fmax=400, sr=sr)
    rms = librosa.feature.rms(y=wave)[0]
    return np.concatenate([
        mfcc.mean(1), mfcc.std(1), mel.mean(1), chroma.mean(1),
        [f0.mean(), f0.std(), np.median(f0), rms.mean(), rms.std()],
    ]).astype(np.float32)


def _clip_features(path: str) -> np.ndarray:
    return librosa_features(telephone_round_trip(load_audio(path)))


def baseline_features(clips: list[Clip], cache_dir: Path) -> dict[str, np.ndarray]:
    """Return {clip key: features} of the telephone-band clips, cached on disk."""
    digest = hashlib.sha256(json.dumps([c.key for c in clips] + ["v1"]).encode()).hexdigest()[:16]
    cache = cache_dir / f"baseline-{digest}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return {c.key: data[c.key] for c in clips}
    with ProcessPoolExecutor(max_workers=2) as pool:
        feats = list(pool.map(_clip_features, [str(c.path) for c in clips], chunksize=16))
    result = {c.key: f for c, f in zip(clips, feats, strict=True)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


def train_svm(x: np.ndarray, y: list[str]):  # type: ignore[no-untyped-def]
    """Return a fitted StandardScaler + RBF SVM (class-balanced)."""
    model = make_pipeline(StandardScaler(), SVC(C=10, gamma="scale", class_weight="balanced"))
    return model.fit(x, y)
