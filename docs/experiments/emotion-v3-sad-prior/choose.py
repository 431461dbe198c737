"""Nested choice of a sad prior offset on v3's out-of-corpus posteriors.

The rule: ../2026-12-07-emotion-v3-sad-prior-rule.md. Prints one JSON object:

    PYTHONPATH=. python docs/experiments/emotion-v3-sad-prior/choose.py var/v3r-probs/tiny-b1-4+p.npz \
        > docs/experiments/emotion-v3-sad-prior/choose.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

from audio_models.training.corpora import LABELS

GRID = [round(0.25 * i, 2) for i in range(13)]
SAD = LABELS.index("sad")


def figures(logp: np.ndarray, y: np.ndarray, delta: float) -> dict[str, float | None]:
    """UAR, sad / neutral / angry recall, angry heard as happy for one corpus at offset ``delta``."""
    shifted = logp.copy()
    shifted[:, SAD] += delta
    pred = np.array(LABELS)[shifted.argmax(axis=1)]
    recall = {lab: float(np.mean(pred[y == lab] == lab)) for lab in LABELS if (y == lab).any()}
    return {"uar": float(np.mean(list(recall.values()))), "sad": recall.get("sad"),
            "neutral": recall.get("neutral"), "angry": recall.get("angry"),
            "angry_as_happy": float(np.mean(pred[y == "angry"] == "happy")) if (y == "angry").any() else None}


def mean(rows: list[dict[str, float | None]], key: str) -> float:
    """The mean of ``key`` over rows that have it."""
    return float(np.mean([r[key] for r in rows if r[key] is not None]))


def choose(per: dict[str, tuple[np.ndarray, np.ndarray]], corpora: list[str]) -> float:
    """The smallest δ at which ``corpora`` reach mean sad recall 0.60 within 0.005 of δ=0's mean UAR (3.0 if none)."""
    base = mean([figures(*per[c], 0.0) for c in corpora], "uar")
    for delta in GRID:
        rows = [figures(*per[c], delta) for c in corpora]
        if mean(rows, "sad") >= 0.60 and mean(rows, "uar") >= base - 0.005:
            return delta
    return GRID[-1]


def main() -> None:
    """Print the nested and the all-corpora choice with their figures."""
    z = np.load(sys.argv[1], allow_pickle=False)
    logp, y, corpus = np.log(np.clip(z["probs"], 1e-8, 1.0)), z["labels"], z["corpus"]
    names = sorted(set(corpus.tolist()))
    per = {c: (logp[corpus == c], y[corpus == c]) for c in names}
    nested = {c: choose(per, [o for o in names if o != c]) for c in names}
    out = {"delta_all": choose(per, names), "nested_delta": nested, "per_corpus": {}}
    at0, atn = [], []
    for c in names:
        f0, fn = figures(*per[c], 0.0), figures(*per[c], nested[c])
        at0.append(f0)
        atn.append(fn)
        out["per_corpus"][c] = {"delta_0": f0, "nested": fn}
    for name, rows in (("delta_0", at0), ("nested", atn)):
        out[name] = {"uar_mean": mean(rows, "uar"), "uar_min": min(r["uar"] for r in rows),  # type: ignore[type-var]
                     "sad_mean": mean(rows, "sad"), "neutral_mean": mean(rows, "neutral"),
                     "angry_mean": mean(rows, "angry"),
                     "angry_as_happy_max": max(r["angry_as_happy"] for r in rows)}  # type: ignore[type-var]
    print(json.dumps(out, indent=1, default=lambda v: round(v, 4)))


if __name__ == "__main__":
    main()
