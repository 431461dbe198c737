"""Leave-one-corpus-out posteriors of v3 and v3n, clean and on noisy lines; v3n's temperature (issue #28 experiment).

For each candidate (``v3``: the shipped recipe tiny-b1-4+p on clean clips; ``v3n``: the same with
every training clip once more on a noisy line) and each of the nine corpora, the head is fitted by
the shipped fitter (audio_models.training.head_v3.fit_block_head) on the other eight corpora's
training speakers and scores every clip of the left-out corpus, clean and on its noisy line
(feature_tables' noisy tables). The temperature is fitted on the clean posteriors, as v3's was.
Offline tone-only routing with the shipped policy (select_policy.route_all) is printed for both
conditions: a diagnostic; the verdict is the live path (benchmarks.loco_live, benchmarks.noisy_lines).

    python docs/experiments/emotion-v3-noisy/loco_noisy.py --save var/v3n-probs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "experiments" / "emotion-v3"))

from select_policy import RIGHT, route_all  # noqa: E402

from audio_models.calibration import LOG_FLOOR, fit_temperature, temperature_scale  # noqa: E402
from audio_models.training.corpora import ALL_CORPORA, LABELS  # noqa: E402
from audio_models.training.feature_tables import all_tables  # noqa: E402
from audio_models.training.head_v3 import NOISY_WEIGHT, Recipe, fit_block_head, training_rows  # noqa: E402
from router.policy import load_policy  # noqa: E402

RECIPES = {"v3": "tiny-b1-4+p", "v3n": "tiny-b1-4+p+n"}


def summary(probs: np.ndarray, y: np.ndarray, corpus: np.ndarray, policy) -> dict[str, object]:  # noqa: ANN001
    """UAR, angry heard as happy, sad recall and tone-only routing per corpus."""
    pred = np.array(LABELS)[probs.argmax(axis=1)]
    queues = np.array(route_all(probs, policy))
    out: dict[str, object] = {}
    for k in ALL_CORPORA:
        m = corpus == k
        rec = {lab: float(np.mean(pred[m & (y == lab)] == lab)) for lab in LABELS if (m & (y == lab)).any()}
        angry = m & (y == "angry")
        calm = m & (y != "angry")
        right = [RIGHT[t] == q for t, q in zip(y[m], queues[m], strict=True)]
        out[k] = {"uar": round(float(np.mean(list(rec.values()))), 4),
                  "angry_as_happy": round(float(np.mean(pred[angry] == "happy")), 4) if angry.any() else None,
                  "right_queue": round(float(np.mean(right)), 4),
                  "angry_to_retention": round(float(np.mean(queues[angry] == "retention")), 4) if angry.any() else None,
                  "non_angry_to_retention": round(float(np.mean(queues[calm] == "retention")), 4)}
    vals = list(out.values())
    out["mean"] = {key: round(float(np.mean([v[key] for v in vals if v[key] is not None])), 4)  # type: ignore[index]
                   for key in ("uar", "right_queue", "angry_to_retention")}
    out["max_non_angry_to_retention"] = max(v["non_angry_to_retention"] for v in vals)  # type: ignore[index]
    return out


def main() -> None:
    """Fit both candidates' folds, print one JSON line each, save their posteriors."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "emotion-features")
    ap.add_argument("--save", type=Path, required=True)
    ap.add_argument("--noisy-weight", type=float, default=NOISY_WEIGHT,
                    help="noisy rows' weight (try 1 and 2: 1.0; try 3 and the code since: 0.3)")
    ap.add_argument("--candidates", default="v3,v3n")
    args = ap.parse_args()
    policy = load_policy()
    sources = ("tiny.en", "prosody")
    clips, clean = all_tables(args.data, sources, args.cache_dir)
    noisy = all_tables(args.data, sources, args.cache_dir, noisy=True)[1]
    y = np.array([c.label for c in clips])
    corpus = np.array([c.corpus for c in clips])
    args.save.mkdir(parents=True, exist_ok=True)
    for name in args.candidates.split(","):
        recipe_name = RECIPES[name]
        recipe = Recipe.parse(recipe_name)
        x, xn = recipe.features(clean), recipe.features(noisy)
        p_clean, p_noisy = np.zeros((len(y), 4)), np.zeros((len(y), 4))
        for left in ALL_CORPORA:
            train = training_rows(clips, left)
            xs, ys, cs, w = x[train], y[train], corpus[train], None
            if recipe.noisy:
                xs, ys, cs = np.vstack([xs, xn[train]]), np.r_[ys, ys], np.r_[cs, cs]
                w = np.r_[np.ones(int(train.sum())), np.full(int(train.sum()), args.noisy_weight)]
            head = fit_block_head(xs, ys, cs, recipe, row_weight=w)
            test = corpus == left
            p_clean[test], p_noisy[test] = head.probs(x[test]), head.probs(xn[test])
            print(json.dumps({"candidate": name, "fold": left}), file=sys.stderr, flush=True)
        truth = np.array([LABELS.index(v) for v in y])
        t = fit_temperature(p_clean, truth, LOG_FLOOR, 8.0)
        np.savez(args.save / f"{name}.npz", clean=p_clean, noisy=p_noisy, labels=y, corpus=corpus,
                 keys=np.array([c.key for c in clips]), temperature=t)
        cal_clean, cal_noisy = temperature_scale(p_clean, t, LOG_FLOOR), temperature_scale(p_noisy, t, LOG_FLOOR)
        print(json.dumps({"candidate": name, "recipe": recipe_name, "temperature": t,
                          "noisy_weight": args.noisy_weight if recipe.noisy else None,
                          "clean": summary(cal_clean, y, corpus, policy),
                          "noisy": summary(cal_noisy, y, corpus, policy)}), flush=True)


if __name__ == "__main__":
    main()
