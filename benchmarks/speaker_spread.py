"""Checking #21's instrument: how much the fixed held-out nEMO and ASED speakers decide the figures.

From the cached per-clip features of the head (Whisper tiny.en encoder blocks through the 8 kHz
mu-law line, ``benchmarks.head_features``), the head recipe (standardised, class-balanced logistic
regression) is fitted and scored per clip, head alone (a proxy for the fused model, labelled so):

1. every pair of nEMO's nine speakers held out in turn from the four-corpus training speakers;
2. the same head trained on nEMO's seven training speakers alone, on the fixed pair (a ceiling);
3. random draws of ten ASED speakers (five women, five men) held out in turn;
4. a clip-bootstrap 95 % interval for the fixed sets' figures.

Prints one JSON line per measurement and feature set, then a summary line. The rule:
docs/experiments/2026-11-29-emotion-v2-instrument-check.md

    python -m benchmarks.speaker_spread --data ../shared/data > speaker-spread.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from audio_models.training.corpora import ASED_HELD_OUT, LABELS, NEMO_HELD_OUT, list_corpora
from audio_models.training.metrics import classification_summary
from audio_models.training.whisper_head import block_embedder, clip_embeddings
from benchmarks.head_features import CORPORA, TEST_SPEAKERS, VAL_SPEAKERS, features, fit_predict, prosody_table


def uar(truth: np.ndarray, probs: np.ndarray) -> float:
    """Return the unweighted average recall of ``probs``' top labels."""
    return float(classification_summary(list(truth), [LABELS[i] for i in probs.argmax(axis=1)], LABELS)["uar"])


def bootstrap(truth: np.ndarray, probs: np.ndarray, rng: np.random.Generator, n: int = 1000) -> list[float]:
    """Return the 2.5 % and 97.5 % quantiles of the UAR over clip resamples."""
    picks = [rng.integers(0, len(truth), len(truth)) for _ in range(n)]
    values = [uar(truth[p], probs[p]) for p in picks]
    return [round(float(q), 4) for q in np.quantile(values, [0.025, 0.975])]


def rank_of(value: float, values: list[float]) -> int:
    """Return ``value``'s rank among ``values`` (1 = the highest)."""
    return 1 + sum(v > value for v in values)


def spread(values: list[float]) -> dict[str, float]:
    """Return the mean, median, minimum and maximum of ``values``."""
    return {"mean": round(float(np.mean(values)), 4), "median": round(float(np.median(values)), 4),
            "min": round(float(np.min(values)), 4), "max": round(float(np.max(values)), 4)}


def main() -> None:
    """Print the measurements as JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/whisper-embeddings"))
    ap.add_argument("--seed", type=int, default=1234, help="the head training's seed (its cache key)")
    ap.add_argument("--sets", default="b1,b1-4")
    ap.add_argument("--draws", type=int, default=50, help="random ASED ten-speaker sets")
    args = ap.parse_args()
    clips = [c for c in list_corpora(args.data, CORPORA) if c.label in LABELS]
    emb, owner = clip_embeddings(clips, block_embedder(), args.cache_dir, 1, args.seed)
    assert owner == list(range(len(clips)))
    pros = prosody_table(clips, args.cache_dir.parent / "prosody", args.seed)
    labels = np.array([c.label for c in clips])
    corpus = np.array([c.corpus for c in clips])
    speaker = np.array([c.speaker for c in clips])
    # the four-corpus training speakers of `emoroute train-emotion` (all held-out sets and the validation actors out)
    base = ~np.isin(speaker, sorted(TEST_SPEAKERS | VAL_SPEAKERS))
    nemo_speakers = sorted(set(speaker[corpus == "nemo"]))
    ased_speakers = sorted(set(speaker[corpus == "ased"]))
    rng = np.random.default_rng(21)
    draws: list[tuple[str, ...]] = []
    women = [s for s in ased_speakers if s.startswith("ased-f")]
    men = [s for s in ased_speakers if s.startswith("ased-m")]
    while len(draws) < args.draws:
        pick = tuple(sorted([*rng.choice(women, 5, replace=False), *rng.choice(men, 5, replace=False)]))
        if pick != tuple(sorted(ASED_HELD_OUT)) and pick not in draws:
            draws.append(pick)
    summary: dict[str, dict[str, object]] = {}

    def score(x: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[float, np.ndarray]:
        idx = np.flatnonzero(train)
        probs = fit_predict(x[idx], list(labels[idx]), list(corpus[idx]), {"t": x[test]}, False, 1.0)["t"]
        return uar(labels[test], probs), probs

    for name in args.sets.split(","):
        x = features(name, emb, pros)
        # 1. every nEMO pair held out, the other seven nEMO speakers trained on
        pairs: dict[str, float] = {}
        for pair in itertools.combinations(nemo_speakers, 2):
            test = np.isin(speaker, pair)
            train = (base | (corpus == "nemo")) & ~test  # the fixed pair swapped back in
            pairs["+".join(pair)], _ = score(x, train, test)
        fixed = "+".join(sorted(NEMO_HELD_OUT))
        row = {"set": name, "measure": "nemo_pairs", "fixed_pair": fixed, "fixed": round(pairs[fixed], 4),
               "rank": rank_of(pairs[fixed], list(pairs.values())), "of": len(pairs), **spread(list(pairs.values())),
               "per_pair": {k: round(v, 4) for k, v in sorted(pairs.items(), key=lambda kv: -kv[1])}}
        print(json.dumps(row), flush=True)
        summary[name] = {k: row[k] for k in ("fixed", "rank", "of", "mean", "median", "min", "max")}
        # 2. the nEMO-only ceiling on the fixed pair, and the four-corpus head on it with its interval
        test = np.isin(speaker, NEMO_HELD_OUT)
        only, _ = score(x, (corpus == "nemo") & ~test, test)
        four, probs = score(x, base, test)
        row = {"set": name, "measure": "nemo_fixed_pair", "four_corpora": round(four, 4),
               "four_corpora_clip_ci95": bootstrap(labels[test], probs, rng), "nemo_only": round(only, 4)}
        print(json.dumps(row), flush=True)
        summary[name].update(nemo_only=row["nemo_only"], nemo_ci95=row["four_corpora_clip_ci95"])
        # 3. the ASED ten: the fixed set against random ten-speaker sets
        test = np.isin(speaker, ASED_HELD_OUT)
        fixed_ased, probs = score(x, base, test)
        drawn = []
        for pick in draws:
            test_d = np.isin(speaker, pick)
            train = (base | np.isin(speaker, ASED_HELD_OUT)) & ~test_d  # the fixed ten swapped back in
            drawn.append(score(x, train, test_d)[0])
        row = {"set": name, "measure": "ased_tens", "fixed": round(fixed_ased, 4),
               "fixed_clip_ci95": bootstrap(labels[test], probs, rng),
               "rank": rank_of(fixed_ased, drawn), "of": len(drawn) + 1, **spread(drawn)}
        print(json.dumps(row), flush=True)
        summary[name].update(ased={k: row[k] for k in ("fixed", "fixed_clip_ci95", "rank", "of", "mean", "min", "max")})
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
