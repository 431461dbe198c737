r"""Emotion v3: which head input carries tone to corpora it never heard (rule: ../2026-12-06-emotion-v3-rule.md).

Reads the cached feature tables of the nine corpora (audio_models/training/feature_tables.py),
fits each candidate head on every leave-one-corpus-out fold and on the `all` fold, and prints one
JSON line per candidate: per-corpus UAR, angry heard as happy and sad recall, and the means. With
``--save-probs`` it also writes each candidate's out-of-corpus posteriors (the LOCO fold that never
heard the clip's corpus), which the policy selection reads.

    python docs/experiments/emotion-v3/loco_heads.py --data ../shared/data --save-probs var/v3-probs \
        > docs/experiments/emotion-v3/loco_heads.jsonl

A candidate may name the head's C after an "@" (``base-b1-3@0.1``; 1.0 otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from audio_models.training.corpora import ALL_CORPORA, LABELS, held_out_speakers  # noqa: E402
from audio_models.training.feature_tables import all_tables  # noqa: E402
from audio_models.training.metrics import classification_summary  # noqa: E402

CANDIDATES = ("tiny-b1", "tiny-b1-4+p", "base-b2", "base-b1-3", "base-b1-3+p")


def split_c(name: str) -> tuple[str, float]:
    """Read "base-b1-3+p@0.1" as the recipe and the head's C (1.0 when no "@" is given)."""
    recipe, _, c = name.partition("@")
    return recipe, float(c) if c else 1.0


def candidate_features(name: str, tables: dict[str, np.ndarray]) -> np.ndarray:
    """Return the matrix a candidate head reads (block means concatenated, prosody appended)."""
    enc, _, rest = split_c(name)[0].partition("-")
    blocks, _, extra = rest.partition("+")
    lo, _, hi = blocks[1:].partition("-")
    source = tables["tiny.en" if enc == "tiny" else "base"]
    parts = [source[:, b] for b in range(int(lo), int(hi or lo) + 1)]
    if extra == "p":
        parts.append(tables["prosody"])
    return np.concatenate(parts, axis=1)


def fit_head(x: np.ndarray, y: np.ndarray, corpus: np.ndarray, c: float = 1.0):  # noqa: ANN201
    """Return (mean, scale, classifier): standardised, class- and corpus-balanced logistic regression."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    names, counts = np.unique(corpus, return_counts=True)
    share = dict(zip(names, len(corpus) / (len(names) * counts), strict=True))
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit((x - mean) / scale, y, sample_weight=np.array([share[k] for k in corpus]))
    return mean, scale, clf


def posteriors(model, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Return P(label) in LABELS order."""
    mean, scale, clf = model
    p = clf.predict_proba((x - mean) / scale)
    out = np.zeros((len(x), len(LABELS)))
    for j, lab in enumerate(clf.classes_):
        out[:, LABELS.index(lab)] = p[:, j]
    return out


def scored(truth: list[str], probs: np.ndarray) -> dict[str, object]:
    """UAR over the classes present, angry heard as happy, sad recall."""
    present = tuple(lab for lab in LABELS if lab in truth)
    pred = [LABELS[i] for i in probs.argmax(axis=1)]
    s = classification_summary(truth, pred, LABELS)
    recall = {lab: float(np.mean([p == lab for p, t in zip(pred, truth, strict=True) if t == lab])) for lab in present}
    return {"n": len(truth), "uar": round(float(np.mean(list(recall.values()))), 4),
            "angry_as_happy": round(float(np.mean([p == "happy" for p, t in zip(pred, truth, strict=True)
                                                   if t == "angry"])), 4),
            "sad_recall": round(recall.get("sad", float("nan")), 4), "confusion": s["confusion"]}


def main() -> None:
    """Fit every candidate on every fold; print JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/emotion-features"))
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--save-probs", type=Path, help="folder for each candidate's out-of-corpus posteriors (.npz)")
    args = ap.parse_args()
    clips, tables = all_tables(args.data, ("tiny.en", "base", "prosody"), args.cache_dir)
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    y = np.array([c.label for c in clips])
    held = np.isin(speaker, [s for group in held_out_speakers().values() for s in group])
    for name in args.candidates.split(","):
        x = candidate_features(name, tables)
        c = split_c(name)[1]
        loco: dict[str, object] = {}
        oof = np.zeros((len(clips), len(LABELS)))
        for left in ALL_CORPORA:
            train = (corpus != left) & ~held
            model = fit_head(x[train], y[train], corpus[train], c)
            test = corpus == left
            oof[test] = posteriors(model, x[test])
            loco[left] = scored(list(y[test]), oof[test])
        model = fit_head(x[~held], y[~held], corpus[~held], c)
        within = {k: scored(list(y[held & (corpus == k)]), posteriors(model, x[held & (corpus == k)]))
                  for k in ALL_CORPORA if (held & (corpus == k)).any()}
        uars = [v["uar"] for v in loco.values()]  # type: ignore[index]
        print(json.dumps({
            "candidate": name, "dim": x.shape[1],
            "loco_mean_uar": round(float(np.mean(uars)), 4), "loco_min_uar": round(float(np.min(uars)), 4),
            "loco_max_angry_as_happy": max(v["angry_as_happy"] for v in loco.values()),  # type: ignore[index]
            "loco_mean_sad_recall": round(float(np.nanmean([v["sad_recall"] for v in loco.values()])), 4),  # type: ignore[index]
            "held_out_uar": {k: v["uar"] for k, v in within.items()},
            "loco": loco, "held_out": within}), flush=True)
        if args.save_probs:
            args.save_probs.mkdir(parents=True, exist_ok=True)
            np.savez(args.save_probs / f"{name}.npz", probs=oof, labels=y, corpus=corpus,
                     keys=np.array([c.key for c in clips]))


if __name__ == "__main__":
    main()
