"""Emotion v2 run 6: which features the fused backend's linear head should read.

Per clip of the four corpora (4 classes, 8 kHz mu-law line, trimmed as in training): the mean
hidden state of Whisper tiny.en's encoder blocks 1-4 (cached as head training caches them) and
the 24 statistics of ``audio_models.prosody``. Each configuration (a feature set, optionally with
every training corpus weighted equally) is fitted as the shipped head is (standardised,
class-balanced logistic regression) on the training speakers of ``emoroute train-emotion``'s
splits: all four corpora, and each leave-one-corpus-out fold. Prints one JSON line per
configuration and fold, then a summary line. The rule: docs/experiments/2026-11-29-emotion-v2-head-features-rule.md

    python -m benchmarks.head_features --data ../shared/data > head-features.jsonl
    python -m benchmarks.head_features --data ../shared/data --sets b1,b1-4+p --fused var/emotion-v2-loco-{corpus}
    python -m benchmarks.head_features --data ../shared/data --encoder-dir var/whisper-base-ct2 --encoder-blocks 6 \
        --sets b1,b2,b3,b4,b5,b6,b1-6,b1-6+p

``--fused`` also scores each configuration fused with the ECAPA-TDNN of each finished LOCO run
(``{corpus}`` is the left-out corpus) at each of ``--weights`` (ECAPA's share; 0.75 is the
recipe's), and ``--fused-all`` with the ECAPA-TDNN of a run on all four corpora on the ``all``
fold (run 7: docs/experiments/2026-11-29-emotion-v2-fusion-weight-rule.md). The ECAPA posteriors
are cached next to the prosody statistics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audio_models.audio_io import load_audio
from audio_models.emotion_types import prepare_waveform
from audio_models.prosody import prosody_features
from audio_models.training.corpora import (
    ASED_HELD_OUT,
    LABELS,
    NEMO_HELD_OUT,
    Clip,
    list_corpora,
    ravdess_speakers,
)
from audio_models.training.features import clip_variants
from audio_models.training.metrics import classification_summary
from audio_models.training.whisper_head import BLOCKS, block_embedder, clip_embeddings
from audio_models.whisper_encoder import WhisperLayerEmbedder

CORPORA = ("ravdess", "tess", "nemo", "ased")
TEST_SPEAKERS = ravdess_speakers([1, 2, 23, 24]) | set(NEMO_HELD_OUT) | set(ASED_HELD_OUT)
VAL_SPEAKERS = ravdess_speakers([19, 20])
FEATURE_SETS = ("b1", "b2", "b3", "b4", "b1-4", "p", "b1+p", "b1-4+p")


def prosody_table(clips: list[Clip], cache: Path, seed: int) -> np.ndarray:
    """Return the prosody statistics of every clip's plain telephone round trip, cached in one file."""
    path = cache / f"prosody-{hashlib.sha1('|'.join(c.key for c in clips).encode()).hexdigest()[:12]}.npy"
    if path.is_file():
        return np.load(path)
    rows = []
    for clip in tqdm(clips, desc="prosody", unit="clip"):
        # variant 0 of clip_variants is deterministic (no augmentation): the seed does not enter it
        wave = clip_variants(load_audio(clip.path), 1, seed)[0]
        rows.append(prosody_features(prepare_waveform(wave)))
    table = np.stack(rows)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, table)
    return table


def features(name: str, emb: np.ndarray, pros: np.ndarray) -> np.ndarray:
    """Return the feature matrix of one feature set (emb: clips x 5 blocks x 384)."""
    parts: list[np.ndarray] = []
    blocks, _, extra = name.partition("+")
    if blocks.startswith("b"):
        lo, _, hi = blocks[1:].partition("-")
        parts += [emb[:, b] for b in range(int(lo), int(hi or lo) + 1)]
    if blocks == "p" or extra == "p":
        parts.append(pros)
    return np.concatenate(parts, axis=1)


def fit_predict(x_train: np.ndarray, y: list[str], corpora: list[str], x_tests: dict[str, np.ndarray],
                balance_corpora: bool, c: float) -> dict[str, np.ndarray]:
    """Fit the head's recipe and return the test posteriors (columns in LABELS order)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    weight = None
    if balance_corpora:
        names, counts = np.unique(corpora, return_counts=True)
        share = dict(zip(names, len(corpora) / (len(names) * counts), strict=True))
        weight = np.array([share[k] for k in corpora])
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    clf.fit((x_train - mean) / scale, y, sample_weight=weight)
    order = [list(clf.classes_).index(lab) for lab in LABELS]
    return {k: clf.predict_proba((x - mean) / scale)[:, order] for k, x in x_tests.items()}


def scored(truth: list[str], probs: np.ndarray) -> dict[str, object]:
    """Return UAR, angry heard as happy and sad recall (plus the confusion) of one test set."""
    summary = classification_summary(truth, [LABELS[i] for i in probs.argmax(axis=1)], LABELS)
    m = np.asarray(summary["confusion"])
    return {"n": summary["n"], "uar": summary["uar"],
            "angry_as_happy": round(float(m[0, 1] / max(m[0].sum(), 1)), 4),
            "sad_recall": round(float(m[3, 3] / max(m[3].sum(), 1)), 4),
            "valence_uar": summary.get("valence_uar"), "confusion": summary["confusion"]}


def folds(clips: list[Clip]) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Return {fold: (training mask, {test set: mask})}, the splits of ``emoroute train-emotion``."""
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    held = np.isin(speaker, sorted(TEST_SPEAKERS))
    val = np.isin(speaker, sorted(VAL_SPEAKERS))
    out = {"all": (~held & ~val, {**{k: held & (corpus == k) for k in ("ravdess", "nemo", "ased")},
                                  "ravdess-val": val})}
    for left in CORPORA:
        out[f"loco-{left}"] = ((corpus != left) & ~held & ~val, {left: (corpus == left) & ~val})
    return out


def ecapa_posteriors(model_dir: Path, clips: list[Clip], cache: Path, seed: int) -> np.ndarray:
    """Return the ECAPA-TDNN's posteriors (LABELS order) for ``clips``' plain telephone round trips, cached."""
    from audio_models.emotion import EcapaEmotionModel

    tag = hashlib.sha1(f"{model_dir.resolve()}|{(model_dir / 'model.ckpt').stat().st_mtime}|"
                       f"{'|'.join(c.key for c in clips)}".encode()).hexdigest()[:12]
    path = cache / f"ecapa-{tag}.npy"
    if path.is_file():
        return np.load(path)
    ecapa = EcapaEmotionModel.from_dir(model_dir)
    order = [ecapa.labels.index(lab) for lab in LABELS]
    waves = [prepare_waveform(clip_variants(load_audio(c.path), 1, seed)[0]) for c in clips]
    probs = np.concatenate([ecapa.class_probs(waves[b:b + 64])[0] for b in
                            tqdm(range(0, len(waves), 64), desc=f"ecapa {model_dir.name}")])[:, order]
    np.save(path, probs)
    return probs


def main() -> None:
    """Print one JSON line per (configuration, fold), then the summary."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/whisper-embeddings"))
    ap.add_argument("--seed", type=int, default=1234, help="the head training's seed (its cache key)")
    ap.add_argument("--c", type=float, default=1.0, help="the logistic regression's C (the shipped head's)")
    ap.add_argument("--sets", default=",".join(FEATURE_SETS))
    ap.add_argument("--fused", default="", help="LOCO run directories, {corpus} for the left-out corpus")
    ap.add_argument("--fused-all", type=Path, default=None, help="a four-corpus run for the all fold")
    ap.add_argument("--weights", default="0.75", help="comma list of ECAPA weights to fuse at")
    ap.add_argument("--encoder-dir", type=Path, default=None,
                    help="another CTranslate2 Whisper model directory (run 9: multilingual base); default tiny.en")
    ap.add_argument("--encoder-blocks", type=int, default=BLOCKS, help="its encoder blocks (base: 6)")
    args = ap.parse_args()
    clips = [c for c in list_corpora(args.data, CORPORA) if c.label in LABELS]
    embedder = block_embedder()
    if args.encoder_dir is not None:
        embedder = WhisperLayerEmbedder(args.encoder_blocks, model_dir=args.encoder_dir)
        # the cache key names the encoder: never a tiny.en embedding under a base name, or back
        embedder.name = f"whisper-{args.encoder_dir.resolve().name}-block{args.encoder_blocks}"
    emb, owner = clip_embeddings(clips, embedder, args.cache_dir, 1, args.seed)
    assert owner == list(range(len(clips)))
    pros = prosody_table(clips, args.cache_dir.parent / "prosody", args.seed)
    labels = [c.label for c in clips]
    corpora = [c.corpus for c in clips]
    summary: dict[str, dict[str, float]] = {}
    weights = [float(w) for w in args.weights.split(",")]
    for name in args.sets.split(","):
        x = features(name, emb, pros)
        for balance in (False, True):
            config = name + ("/cb" if balance else "")
            row: dict[str, float] = {}
            loco: list[dict[str, float]] = []
            for fold, (train, tests) in folds(clips).items():
                started = time.time()
                idx = np.flatnonzero(train)
                probs = fit_predict(x[idx], [labels[i] for i in idx], [corpora[i] for i in idx],
                                    {k: x[m] for k, m in tests.items()}, balance, args.c)
                result = {k: scored([labels[i] for i in np.flatnonzero(tests[k])], p) for k, p in probs.items()}
                left = fold.removeprefix("loco-")
                run = args.fused_all if fold == "all" else Path(args.fused.format(corpus=left)) if args.fused else None
                if run is not None and (run / "model.ckpt").is_file():
                    for k in list(result):
                        test_clips = [clips[i] for i in np.flatnonzero(tests[k])]
                        p_ecapa = ecapa_posteriors(run, test_clips, args.cache_dir.parent / "prosody", args.seed)
                        truth = [c.label for c in test_clips]
                        result[f"{k}-ecapa"] = scored(truth, p_ecapa)
                        for w in weights:
                            result[f"{k}-fused@{w:g}"] = scored(truth, w * p_ecapa + (1 - w) * probs[k])
                            row[f"fused@{w:g}_{fold}_{k}"] = float(result[f"{k}-fused@{w:g}"]["uar"])  # type: ignore[arg-type]
                            row[f"fused@{w:g}_{fold}_{k}_a2h"] = float(
                                result[f"{k}-fused@{w:g}"]["angry_as_happy"])  # type: ignore[arg-type]
                print(json.dumps({"config": config, "fold": fold, "train_clips": int(train.sum()),
                                  "seconds": round(time.time() - started, 1), "test": result}), flush=True)
                if fold == "all":
                    row.update({f"all_{k}": float(v["uar"]) for k, v in result.items()})  # type: ignore[arg-type]
                else:
                    loco.append({k: float(v) for k, v in result[left].items()  # type: ignore[arg-type]
                                 if k in ("uar", "angry_as_happy")})
            row.update(loco_mean=round(float(np.mean([r["uar"] for r in loco])), 4),
                       loco_min=round(float(np.min([r["uar"] for r in loco])), 4),
                       loco_angry_as_happy=round(float(np.mean([r["angry_as_happy"] for r in loco])), 4),
                       **{f"loco_{c}": r["uar"] for c, r in zip(CORPORA, loco, strict=True)})
            for w in weights:
                done = [f"fused@{w:g}_loco-{c}_{c}" for c in CORPORA if f"fused@{w:g}_loco-{c}_{c}" in row]
                if done:
                    row[f"fused@{w:g}_loco_mean"] = round(float(np.mean([row[k] for k in done])), 4)
                    row[f"fused@{w:g}_loco_a2h"] = round(float(np.mean([row[f"{k}_a2h"] for k in done])), 4)
            summary[config] = row
    best = max(summary, key=lambda k: summary[k]["loco_mean"])
    print(json.dumps({"summary": summary, "candidate": best}), flush=True)


if __name__ == "__main__":
    main()
