"""Computing and caching the features of every clip and its augmented variants.

Fbank features (the ``fbank`` front end) or the hidden state of Whisper tiny.en's encoder
block 1 (the ``whisper-block1`` front end).

Features are computed once (2 CPU cores) and stored as float16 in one ``.npz``
per (clip list, variant count, feature settings) so retraining costs seconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.augment import SPEED_FACTORS, augment
from audio_models.training.corpora import Clip
from audio_models.trim import trim_silence

_FBANK: dict[str, torch.nn.Module] = {}


def _fbank(feature_cfg: dict[str, float]) -> torch.nn.Module:
    key = json.dumps(feature_cfg, sort_keys=True)
    if key not in _FBANK:
        from speechbrain.lobes.features import Fbank

        torch.set_num_threads(1)
        _FBANK[key] = Fbank(sample_rate=16000, **feature_cfg)
    return _FBANK[key]


_BABBLE: dict[tuple[str, ...], list[np.ndarray]] = {}
_WHISPER: dict[int, object] = {}


def _whisper_frames(wave: np.ndarray) -> np.ndarray:
    """Return the (frames, 384) block-1 hidden state of one trimmed telephone-band waveform."""
    from audio_models.emotion import prepare_waveform
    from audio_models.whisper_encoder import WhisperLayerEmbedder

    if 1 not in _WHISPER:
        torch.set_num_threads(1)
        _WHISPER[1] = WhisperLayerEmbedder(1)
    embedder = _WHISPER[1]
    assert isinstance(embedder, WhisperLayerEmbedder)
    x, _ = embedder.frames_batch([prepare_waveform(wave)])
    return x[0].numpy()


def _babble_talkers(paths: tuple[str, ...]) -> list[np.ndarray]:
    """Load the babble clips once per worker process."""
    if paths not in _BABBLE:
        _BABBLE[paths] = [load_audio(p) for p in paths]
    return _BABBLE[paths]


def clip_variants(wave: np.ndarray, n_variants: int, seed: int,
                  speed_factors: tuple[float, ...] = SPEED_FACTORS,
                  babble_talkers: Sequence[np.ndarray] = (), babble_share: float = 0.5) -> list[np.ndarray]:
    """Return the clean telephone round trip followed by ``n_variants - 1`` augmented ones."""
    rng = np.random.default_rng(seed)
    variants = [telephone_round_trip(wave)]
    variants += [augment(wave, rng, speed_factors, babble_talkers, babble_share) for _ in range(n_variants - 1)]
    return [trim_silence(v) for v in variants]


def _clip_features(args: tuple[str, int, int, dict[str, float], tuple[float, ...], tuple[str, ...], float, str]
                   ) -> list[np.ndarray]:
    path, n_variants, seed, feature_cfg, speed_factors, babble_paths, babble_share, frontend = args
    wave = load_audio(path)
    talkers = _babble_talkers(babble_paths) if babble_paths else []
    out = []
    with torch.no_grad():
        for variant in clip_variants(wave, n_variants, seed, speed_factors, talkers, babble_share):
            if frontend == "whisper-block1":
                feats = _whisper_frames(variant)
            else:
                feats = _fbank(feature_cfg)(torch.from_numpy(variant)[None, :])[0].numpy()
            out.append(feats.astype(np.float16))
    return out


def cached_features(
    clips: list[Clip],
    *,
    cache_dir: Path,
    n_variants: int,
    feature_cfg: dict[str, float],
    seed: int,
    workers: int = 2,
    speed_factors: tuple[float, ...] = SPEED_FACTORS,
    babble: Sequence[Clip] = (),
    babble_share: float = 0.5,
    frontend: str = "fbank",
) -> dict[str, list[np.ndarray]]:
    """Return {clip key: [features of variant 0..n-1]}, computing what is not cached.

    ``babble``: clips whose voices may be mixed into a ``babble_share`` of the noisy augmented
    variants as babble noise.
    """
    recipe: dict[str, object] = {"clips": [c.key for c in clips], "n": n_variants, "cfg": feature_cfg,
                                 "seed": seed, "v": 2}
    if tuple(speed_factors) != SPEED_FACTORS:  # the default keeps the key of caches made before it existed
        recipe["speeds"] = list(speed_factors)
    if babble:
        recipe["babble"] = [c.key for c in babble]
        if babble_share != 0.5:  # the first babble recipe's share keeps its cache key
            recipe["babble_share"] = babble_share
    if frontend != "fbank":
        recipe["frontend"] = frontend
    ident = json.dumps(recipe, sort_keys=True)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    cache_file = cache_dir / f"features-{digest}.npz"
    if cache_file.exists():
        with np.load(cache_file) as data:
            return {c.key: [data[f"{i}::{c.key}"] for i in range(n_variants)] for c in clips}
    cache_dir.mkdir(parents=True, exist_ok=True)
    babble_paths = tuple(str(c.path) for c in babble)
    jobs = [(str(c.path), n_variants, seed + i, feature_cfg, tuple(speed_factors), babble_paths, babble_share,
             frontend) for i, c in enumerate(clips)]
    result: dict[str, list[np.ndarray]] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        progress = tqdm(pool.map(_clip_features, jobs, chunksize=8), total=len(jobs), desc="features")
        for clip, feats in zip(clips, progress, strict=True):
            result[clip.key] = feats
    flat = {f"{i}::{k}": f for k, fs in result.items() for i, f in enumerate(fs)}
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, **flat)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    tmp.rename(cache_file)
    return result
