"""Fitting the ``ecapa-whisper`` backend's head: logistic regression on Whisper embeddings.

The head is fitted on exactly the speakers the ECAPA model in ``model_dir`` was trained on
(its ``hparams.yaml``), each clip heard through the 8 kHz mu-law round trip (``n_variants`` > 1
adds ECAPA's noise/band/gain augmentation; measured on the final-layer head, it lowered the
cross-corpus UAR, so the default is 1), and scored on that model's held-out speakers: ECAPA
alone, head alone, and fused. The mean hidden state of every encoder block is cached per clip,
so any block can be fitted (and ``benchmarks/fusion_selection.py`` can choose one) from one pass.
The defaults (block 1, C 0.1, ECAPA weight 0.25) are the ones chosen on validation actors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from audio_models.audio_io import load_audio
from audio_models.emotion import EcapaEmotionModel, prepare_waveform
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import Clip, list_corpora
from audio_models.training.features import clip_variants
from audio_models.training.metrics import classification_summary
from audio_models.whisper_encoder import WhisperLayerEmbedder
from audio_models.whisper_head import HEAD_FILE, LinearHead

log = logging.getLogger(__name__)
METRICS_FILE = "whisper_head_metrics.json"


BLOCKS = 4  # Whisper tiny.en has four encoder blocks; all are cached
# The default model's head: block 1, C and the ECAPA-TDNN's weight chosen on RAVDESS validation
# actors 19+20 (benchmarks/fusion_selection.py --blocks 1 --noise). The Fbank model's head was
# chosen the same way on clean audio: C 0.1, weight 0.25.
DEFAULT_BLOCK, DEFAULT_C, DEFAULT_ECAPA_WEIGHT = 1, 1.0, 0.75


def block_embedder() -> WhisperLayerEmbedder:
    """Return the embedder that caches every block's hidden state (the whole encoder)."""
    return WhisperLayerEmbedder(BLOCKS)


def clip_embeddings(clips: list[Clip], embedder: WhisperLayerEmbedder, cache: Path, n_variants: int,
                    seed: int) -> tuple[np.ndarray, list[int]]:
    """Return (rows x (blocks + 1) x dim embeddings, clip index per row) for every variant, cached."""
    cache.mkdir(parents=True, exist_ok=True)
    rows: list[np.ndarray] = []
    owner: list[int] = []
    for i, clip in enumerate(tqdm(clips, desc="whisper embeddings", unit="clip")):
        # variant 0 is the plain telephone round trip; more variants reuse a longer cached run
        tag = hashlib.sha1(f"{clip.key}|{seed}|{embedder.name}|all-blocks".encode()).hexdigest()[:16]
        path = cache / f"{tag}.npy"
        emb = np.load(path) if path.is_file() else np.zeros((0, 0))
        if len(emb) >= n_variants:
            emb = emb[:n_variants]
        else:
            clip_seed = seed + int(hashlib.sha1(clip.key.encode()).hexdigest()[:8], 16)
            variants = clip_variants(load_audio(clip.path), n_variants, clip_seed)
            emb = embedder.embed_batch([prepare_waveform(v) for v in variants], all_blocks=True)
            np.save(path, emb)
        rows.append(emb)
        owner += [i] * len(emb)
    return np.concatenate(rows), owner


def fit_head(x: np.ndarray, y: list[str], labels: tuple[str, ...], *, block: int, c: float = 0.1,
             ecapa_weight: float = 0.25) -> LinearHead:
    """Return a standardised, class-balanced multinomial logistic regression on ``x`` (block ``block``)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    clf.fit((x - mean) / scale, y)
    order = [list(clf.classes_).index(lab) for lab in labels]
    return LinearHead(mean, scale, clf.coef_[order], clf.intercept_[order], labels, block=block,
                      ecapa_weight=ecapa_weight)


def train_whisper_head(data: Path, model_dir: Path, *, cache_dir: Path, n_variants: int = 1,
                       seed: int = 1234, block: int = DEFAULT_BLOCK, c: float = DEFAULT_C,
                       ecapa_weight: float = DEFAULT_ECAPA_WEIGHT) -> dict[str, Any]:
    """Fit, save and score the head for the ECAPA model in ``model_dir``; return the metrics."""
    started = time.time()
    torch.manual_seed(seed)
    ecapa = EcapaEmotionModel.from_dir(model_dir)
    split = ecapa.hparams["split"]
    train_speakers = set(ecapa.hparams["training"]["train_speakers"])
    test_speakers: dict[str, list[str]] = split["test_speakers"]
    # the corpora the ECAPA model was trained and scored on (a speaker id starts with its corpus)
    known = train_speakers | {s for group in test_speakers.values() for s in group}
    clips = list_corpora(data, tuple(sorted({s.split("-")[0] for s in known})))
    train = [c for c in clips if c.speaker in train_speakers and c.label in ecapa.labels]
    if not train:
        raise ValueError(f"no clips of the model's training speakers under {data}")
    if not 0 <= block <= BLOCKS:
        raise ValueError(f"block must be 0..{BLOCKS}, got {block}")
    if not 0 <= ecapa_weight <= 1:
        raise ValueError(f"the ECAPA weight must lie in [0, 1], got {ecapa_weight}")
    embedder = block_embedder()
    x, owner = clip_embeddings(train, embedder, cache_dir, n_variants, seed)
    head = fit_head(x[:, block], [train[i].label for i in owner], ecapa.labels, block=block, c=c,
                    ecapa_weight=ecapa_weight)
    head.save(model_dir / HEAD_FILE)
    live = WhisperLayerEmbedder(block)
    metrics: dict[str, Any] = {"train_clips": len(train), "train_rows": len(x), "variants": n_variants,
                               "seed": seed, "block": block, "C": c, "ecapa_weight": ecapa_weight,
                               "encoder": live.name, "test": {}}
    for corpus, speakers in test_speakers.items():
        test = [c for c in clips if c.corpus == corpus and c.speaker in set(speakers)]
        waves = [prepare_waveform(telephone_round_trip(load_audio(c.path))) for c in test]
        p_ecapa = np.array([[r.probs[k] for k in ecapa.labels] for b in range(0, len(waves), 32)
                            for r in ecapa.classify_batch(waves[b:b + 32])])
        p_head = head.probs(np.concatenate([live.embed_batch(waves[b:b + 32]) for b in range(0, len(waves), 32)]))
        truth = [c.label for c in test]
        scored = {"ecapa": p_ecapa, "whisper_head": p_head,
                  "fused": ecapa_weight * p_ecapa + (1 - ecapa_weight) * p_head}
        metrics["test"][corpus] = {
            name: classification_summary(truth, [ecapa.labels[i] for i in p.argmax(axis=1)], ecapa.labels)
            for name, p in scored.items()}
        log.info("%s: UAR ecapa %.3f, whisper head %.3f, fused %.3f", corpus,
                 *(metrics["test"][corpus][k]["uar"] for k in ("ecapa", "whisper_head", "fused")))
    metrics["seconds"] = round(time.time() - started, 1)
    (model_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
    return metrics
