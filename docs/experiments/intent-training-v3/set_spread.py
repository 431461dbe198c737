"""How far one evaluation set of 72 requests moves the shipped analyser's figure (issue #29 instrument check).

Scores every request of the eight evaluation sets from its kept transcripts in the six natural
voices (a request's share of voices read right), then prints each set's exact intent, the spread
between sets, and the bootstrap standard error of one 72-request set drawn from all 576.

    python docs/experiments/intent-training-v3/set_spread.py
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "experiments" / "intent-tuned-encoder"))

from evaluate import NATURAL, SETS, TRANSCRIPTS, analyser_for  # noqa: E402

from benchmarks.record_natural_voices import VOICES  # noqa: E402
from benchmarks.transcription_benchmark import primary_intent  # noqa: E402


def main() -> None:
    """Print one JSON line."""
    policy, analyser = analyser_for("all-MiniLM-L6-v2", None, Path(tempfile.mkdtemp()),
                                    ROOT / "router" / "intents" / "training.yaml")
    order = list(policy.text.intent_routes)
    per_set: dict[int, list[float]] = {}
    for s in sorted(SETS):
        rows = list(csv.DictReader((ROOT / "benchmarks" / "data" / SETS[s] / "sentences.csv").open()))
        heard = json.loads((ROOT / "docs" / "experiments" / TRANSCRIPTS[s] / "transcripts.json").read_text())
        scores = []
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            right = [primary_intent(analyser, heard[f"{row['id']}-{v}"][0], order,
                                    tuple(heard[f"{row['id']}-{v}"][1])) == label
                     for v, family in VOICES.items() if family in NATURAL]
            scores.append(float(np.mean(right)))
        per_set[s] = scores
    pooled = np.concatenate([np.array(v) for v in per_set.values()])
    rng = np.random.default_rng(0)
    draws = [float(rng.choice(pooled, 72, replace=True).mean()) for _ in range(5000)]
    means = {s: round(float(np.mean(v)), 3) for s, v in per_set.items()}
    print(json.dumps({"per_set_exact": means, "between_sets_sd": round(float(np.std(list(means.values()), ddof=1)), 3),
                      "all_576": round(float(pooled.mean()), 4),
                      "one_set_of_72_bootstrap_se": round(float(np.std(draws)), 3),
                      "one_set_95pct_range": [round(float(np.percentile(draws, 2.5)), 3),
                                              round(float(np.percentile(draws, 97.5)), 3)]}))


if __name__ == "__main__":
    main()
