"""Emotion v3: the tone policy's parameters, chosen on out-of-corpus posteriors.

The rule: ../2026-12-06-emotion-v3-rule.md.

Reads one candidate's leave-one-corpus-out posteriors (``loco_heads.py --save-probs``), fits one
temperature on all of them, and routes every clip on tone alone with the shipped policy's
``decide`` (one reading per caller, as the first decision usually has), for each point of a grid of
``retention_min_anger`` x ``sales_min_happy`` (the sales floor) x the retention seat price x
``min_confidence``. Keeps the settings that
meet (1) non-angry -> retention <= 10 % on every corpus and (2) angry -> sales <= 3 % on every
corpus, and among them the highest mean right queue; prints the grid's best lines and the choice.

    python docs/experiments/emotion-v3/select_policy.py var/v3-probs/base-b1-3+p.npz

``--non-angry-limit``/``--sales-limit`` change the two limits (a margin for the live path) and
``--extended`` adds 0.95 to both floors (docs/experiments/2026-12-07-emotion-v3-routing-choice-rule.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from audio_models.calibration import (  # noqa: E402
    LOG_FLOOR,
    expected_calibration_error,
    fit_temperature,
    temperature_scale,
)
from audio_models.emotion_types import affect_from_probs  # noqa: E402
from audio_models.training.corpora import LABELS  # noqa: E402
from audio_models.training.head_v3 import ANCHORS  # noqa: E402
from router.policy import TrajectoryPoint, decide, load_policy  # noqa: E402

RIGHT = {"angry": "retention", "happy": "sales", "neutral": "general", "sad": "general"}


def route_all(probs: np.ndarray, policy) -> list[str]:  # noqa: ANN001
    """Return the queue each clip's single reading is sent to on tone alone."""
    out = []
    for row in probs:
        p = {lab: float(v) for lab, v in zip(LABELS, row, strict=True)}
        arousal, valence = affect_from_probs(p, ANCHORS)
        out.append(decide([TrajectoryPoint(1.0, p, arousal, valence)], None, policy).queue)
    return out


def figures(queues: list[str], labels: np.ndarray, corpus: np.ndarray) -> dict[str, dict[str, float]]:
    """Per corpus: right queue, non-angry to retention, angry to sales, angry to retention."""
    out = {}
    for k in dict.fromkeys(corpus):
        m = corpus == k
        q, y = np.array(queues)[m], labels[m]
        out[str(k)] = {
            "right_queue": round(float(np.mean([RIGHT[t] == g for g, t in zip(q, y, strict=True)])), 4),
            "non_angry_to_retention": round(float(np.mean(q[y != "angry"] == "retention")), 4),
            "angry_to_sales": round(float(np.mean(q[y == "angry"] == "sales")), 4),
            "angry_to_retention": round(float(np.mean(q[y == "angry"] == "retention")), 4)}
    return out


def main() -> None:
    """Search the grid, print JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probs", type=Path)
    ap.add_argument("--non-angry-limit", type=float, default=0.10, help="non-angry -> retention, every corpus")
    ap.add_argument("--sales-limit", type=float, default=0.03, help="angry -> sales, every corpus")
    ap.add_argument("--extended", action="store_true", help="add 0.95 to both floors' grids")
    ap.add_argument("--log-floor", type=float, default=LOG_FLOOR,
                    help="the calibration's log floor (default: 1e-8, the shipped one; try 3 used "
                         "2.2250738585072014e-308 with --highest 32)")
    ap.add_argument("--highest", type=float, default=8.0, help="the highest temperature tried (default: 8)")
    args = ap.parse_args()
    extra = (0.95,) if args.extended else ()
    z = np.load(args.probs)
    labels, corpus = z["labels"], z["corpus"]
    truth = np.array([LABELS.index(lab) for lab in labels])
    t = fit_temperature(z["probs"], truth, args.log_floor, args.highest)
    probs = temperature_scale(z["probs"], t, args.log_floor)
    print(json.dumps({"temperature": t, "ece_before": expected_calibration_error(z["probs"], truth),
                      "ece_after": expected_calibration_error(probs, truth)}))
    base = load_policy()
    rows = []
    grid = itertools.product((0.4, 0.5, 0.6, 0.7, 0.8, 0.9, *extra), (0.5, 0.6, 0.7, 0.8, 0.9, *extra),
                             (0.0, 0.5, 1.0, 2.0), (0.4, 0.5, 0.6))
    for min_anger, min_happy, seat, conf in grid:
        rules = base.emotion_routing.model_copy(update={
            "cost_aware": True, "retention_min_anger": min_anger, "sales_min_happy": min_happy,
            "seat_costs": {"retention": seat}, "min_confidence": conf, "frustration_to_anger_queue": False})
        policy = base.model_copy(update={"emotion_routing": rules})
        fig = figures(route_all(probs, policy), labels, corpus)
        ok = (all(v["non_angry_to_retention"] <= args.non_angry_limit for v in fig.values())
              and all(v["angry_to_sales"] <= args.sales_limit for v in fig.values()))
        rows.append({"retention_min_anger": min_anger, "sales_min_happy": min_happy, "retention_seat": seat,
                     "min_confidence": conf,
                     "meets_limits": ok,
                     "mean_right_queue": round(float(np.mean([v["right_queue"] for v in fig.values()])), 4),
                     "max_non_angry_to_retention": max(v["non_angry_to_retention"] for v in fig.values()),
                     "max_angry_to_sales": max(v["angry_to_sales"] for v in fig.values()), "per_corpus": fig})
    rows.sort(key=lambda r: (not r["meets_limits"], -r["mean_right_queue"]))
    for r in rows[:8]:
        print(json.dumps({k: v for k, v in r.items() if k != "per_corpus"}))
    print(json.dumps({"chosen": rows[0]}))


if __name__ == "__main__":
    main()
