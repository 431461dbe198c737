"""Training the speech-emotion model: ``emoroute train-emotion --data DIR --out DIR``.

Speaker-independent: the RAVDESS test actors (default 1, 2, 23, 24) and the
validation actors (default 19, 20) are never trained on. Every clip is heard
through an 8 kHz mu-law round trip; augmented variants add gain, band-limiting,
noise and speed changes. Features are cached, so a rerun costs minutes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from audio_models.emotion import DEFAULT_AFFECT_ANCHORS
from audio_models.nets import EmotionNet
from audio_models.training.corpora import (
    ASED_HELD_OUT,
    LABELS,
    NEMO_HELD_OUT,
    Clip,
    babble_clips,
    list_corpora,
    ravdess_speakers,
)
from audio_models.training.features import cached_features
from audio_models.training.metrics import classification_summary

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that determines a training run (written into hparams.yaml)."""

    train_corpora: tuple[str, ...] = ("ravdess", "tess")
    test_actors: tuple[int, ...] = (1, 2, 23, 24)
    val_actors: tuple[int, ...] = (19, 20)
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    max_frames: int = 300
    n_variants: int = 6
    speed_factors: tuple[float, ...] = (0.9, 0.95, 1.05, 1.1)
    seed: int = 1234
    balance_corpora: bool = True
    channels: int = 160
    emb_dim: int = 128
    norm: str = "cmn"
    babble: bool = False
    babble_share: float = 0.5
    frontend: str = "fbank"
    feature_cfg: dict[str, float] = field(
        default_factory=lambda: {"n_mels": 40, "f_min": 50.0, "f_max": 4000.0}
    )


def _pad(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(f) for f in batch)
    out = np.zeros((len(batch), longest, batch[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(batch):
        out[i, : len(f)] = f
    lens = torch.tensor([len(f) / longest for f in batch], dtype=torch.float32)
    return torch.from_numpy(out), lens


def _spec_augment(feats: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    feats = feats.clone()
    n_frames, n_mels = feats.shape[1], feats.shape[2]
    for i in range(feats.shape[0]):
        for _ in range(2):
            width = int(rng.integers(0, 6))
            start = int(rng.integers(0, max(n_mels - width, 1)))
            feats[i, :, start : start + width] = 0.0
            width = int(rng.integers(0, 25))
            start = int(rng.integers(0, max(n_frames - width, 1)))
            feats[i, start : start + width, :] = 0.0
    return feats


def _epoch_order(train: list[Clip], rng: np.random.Generator) -> np.ndarray:
    """Return a shuffled epoch in which no corpus gives more clips than the smallest one.

    TESS has 1,600 clips from 2 speakers, RAVDESS about 650 from 18: without the
    cap the model would mostly learn two voices.
    """
    by_corpus: dict[str, list[int]] = {}
    for i, c in enumerate(train):
        by_corpus.setdefault(c.corpus, []).append(i)
    cap = min(len(v) for v in by_corpus.values())
    chosen = [rng.choice(v, size=cap, replace=False) for v in by_corpus.values()]
    return rng.permutation(np.concatenate(chosen))


def predict_features(
    model: EmotionNet, feats: list[np.ndarray], batch_size: int = 64
) -> np.ndarray:
    """Return class posteriors for full-length features, batched by similar length."""
    order = np.argsort([len(f) for f in feats])
    n_classes = int(model.head[-1].out_features)  # type: ignore[arg-type]
    probs = np.zeros((len(feats), n_classes), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, lens = _pad([feats[i].astype(np.float32) for i in idx])
            probs[idx] = torch.softmax(model.forward_features(x, lens), dim=-1).numpy()
    return probs


def _evaluate(
    model: EmotionNet, clips: list[Clip], feats: dict[str, list[np.ndarray]]
) -> dict[str, object]:
    probs = predict_features(model, [feats[c.key][0] for c in clips])
    preds = [LABELS[i] for i in probs.argmax(axis=1)]
    return classification_summary([c.label for c in clips], preds, LABELS)


def corpora_for(cfg: TrainConfig, data: Path) -> tuple[str, ...]:
    """Return the corpora a run reads: RAVDESS, TESS, those it trains on, and nEMO and ASED when present.

    A corpus left out of training is then scored on all its speakers (leave-one-corpus-out).
    """
    present = tuple(c for c in ("nemo", "ased") if (data / c / "labels.tsv").exists())
    return tuple(dict.fromkeys(("ravdess", "tess", *cfg.train_corpora, *present)))


def split_clips(
    clips: list[Clip], cfg: TrainConfig
) -> tuple[list[Clip], list[Clip], dict[str, list[Clip]]]:
    """Return (train, validation, {corpus: held-out test clips}) with no shared speaker."""
    # the fixed held-out speakers of every corpus (audio_models.training.corpora) are never trained on
    test_spk = ravdess_speakers(list(cfg.test_actors)) | set(NEMO_HELD_OUT) | set(ASED_HELD_OUT)
    val_spk = ravdess_speakers(list(cfg.val_actors))
    train = [
        c for c in clips
        if c.corpus in cfg.train_corpora and c.speaker not in test_spk | val_spk
    ]
    val = [c for c in clips if c.speaker in val_spk]
    trained_speakers = {c.speaker for c in train}
    tests: dict[str, list[Clip]] = {}
    for c in clips:
        # a trained corpus is scored on its fixed held-out speakers (comparable across runs); a corpus
        # left out of training is scored on all of its speakers but the validation ones.
        held_out = c.speaker in test_spk or (c.corpus not in cfg.train_corpora and c.speaker not in val_spk)
        if held_out and c.speaker not in trained_speakers:
            tests.setdefault(c.corpus, []).append(c)
    return train, val, tests


def train_emotion(data: Path, out: Path, cfg: TrainConfig, cache_dir: Path) -> dict[str, object]:
    """Train, evaluate on held-out speakers, and write the model directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    file_log = logging.FileHandler(out / "train_log.txt", mode="w")
    file_log.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(file_log)
    try:
        return _train(data, out, cfg, cache_dir)
    finally:
        log.removeHandler(file_log)
        file_log.close()


def _train(data: Path, out: Path, cfg: TrainConfig, cache_dir: Path) -> dict[str, object]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    torch.set_num_threads(2)
    log.info("config: %s", json.dumps(asdict(cfg)))
    clips = list_corpora(data, corpora_for(cfg, data))
    train, val, tests = split_clips(clips, cfg)
    log.info("train %d clips, val %d, test %s", len(train), len(val),
             {k: len(v) for k, v in tests.items()})
    babble = babble_clips(clips, sorted({c.speaker for c in train}), "training") if cfg.babble else []
    if babble:
        log.info("babble noise from %d clips of %s", len(babble), sorted({c.speaker for c in babble}))
    feats = cached_features(
        clips, cache_dir=cache_dir, n_variants=cfg.n_variants,
        feature_cfg=cfg.feature_cfg, seed=cfg.seed, speed_factors=cfg.speed_factors, babble=babble,
        babble_share=cfg.babble_share, frontend=cfg.frontend,
    )
    model_cfg: dict[str, Any] = {"n_classes": len(LABELS), "channels": cfg.channels, "emb_dim": cfg.emb_dim,
                                 **cfg.feature_cfg, **({"norm": cfg.norm} if cfg.norm != "cmn" else {}),
                                 **({"frontend": cfg.frontend} if cfg.frontend != "fbank" else {})}
    model = EmotionNet(**model_cfg)
    max_frames = cfg.max_frames
    if cfg.frontend == "whisper-block1":
        # Whisper's encoder gives 50 frames/s against Fbank's 100: the same 3 s crops
        max_frames = cfg.max_frames // 2
        frames = torch.from_numpy(np.concatenate([feats[c.key][0] for c in train]).astype(np.float32))
        model.set_feature_statistics(frames.mean(dim=0), frames.std(dim=0))
    y = np.array([LABELS.index(c.label) for c in train])
    counts = np.bincount(y, minlength=len(LABELS)).astype(np.float32)
    weights = torch.tensor(counts.sum() / (len(LABELS) * counts), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(_epoch_order(train, rng)) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    history = []
    started = time.time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = _epoch_order(train, rng) if cfg.balance_corpora else rng.permutation(len(train))
        steps_per_epoch = math.ceil(len(order) / cfg.batch_size)
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", leave=False)
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            batch = []
            for i in idx:
                f = feats[train[i].key][int(rng.integers(cfg.n_variants))]
                if len(f) > max_frames:
                    start = int(rng.integers(0, len(f) - max_frames + 1))
                    f = f[start : start + max_frames]
                batch.append(f.astype(np.float32))
            x, lens = _pad(batch)
            x = _spec_augment(x, rng)
            target = torch.from_numpy(y[idx])
            logits = model.forward_features(x, lens)
            loss = loss_fn(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
            correct += int((logits.argmax(dim=1) == target).sum())
        val_summary = _evaluate(model, val, feats) if val else {}
        entry = {"epoch": epoch, "loss": round(total_loss / seen, 4),
                 "train_acc": round(correct / seen, 4), "val_uar": val_summary.get("uar"),
                 "elapsed_s": round(time.time() - started, 1)}
        history.append(entry)
        log.info("epoch %(epoch)d loss %(loss).4f train_acc %(train_acc).3f val_uar %(val_uar)s "
                 "(%(elapsed_s)ss)", entry)
    results: dict[str, object] = {corpus: _evaluate(model, test, feats) for corpus, test in tests.items()}
    if val:
        results["validation"] = _evaluate(model, val, feats)
    log.info("held-out results: %s", json.dumps(results))
    torch.save(model.state_dict(), out / "model.ckpt")
    hparams = {
        "name": "emoroute-ecapa-emotion",
        "version": out.name,
        "labels": list(LABELS),
        "model": model_cfg,
        "affect_anchors": DEFAULT_AFFECT_ANCHORS,
        "training": {**asdict(cfg), "train_clips": len(train),
                     "train_speakers": sorted({c.speaker for c in train})},
        "split": {"test_speakers": {k: sorted({c.speaker for c in v}) for k, v in tests.items()},
                  "val_speakers": sorted({c.speaker for c in val})},
    }
    (out / "hparams.yaml").write_text(yaml.safe_dump(hparams, sort_keys=False))
    (out / "metrics.json").write_text(json.dumps({"results": results, "history": history}, indent=1))
    return results
