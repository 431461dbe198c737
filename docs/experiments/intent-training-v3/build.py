"""Write the training-v3 candidates from the shipped training file (issue #29 experiment).

``training-v3.yaml``: the shipped file plus every sentence of evaluation sets 1-5 under the label
it was written with. ``training-v3-try2.yaml``: that plus the remarks in remarks-added.txt.

    python docs/experiments/intent-training-v3/build.py var/v3train
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SETS = ("intents_eval", "intents_eval_2", "intents_eval_3", "intents_eval_4", "intents_eval_5")


def main() -> None:
    """Write both candidates into the folder named on the command line."""
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((ROOT / "router" / "intents" / "training.yaml").read_text())
    for name in SETS:
        with (ROOT / "benchmarks" / "data" / name / "sentences.csv").open() as fh:
            for row in csv.DictReader(fh):
                sentences = data["intents"].setdefault(row["intent"], [])
                if row["text"] not in sentences:
                    sentences.append(row["text"])
    (out / "training-v3.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200))
    added = [s.strip() for s in (Path(__file__).parent / "remarks-added.txt").read_text().splitlines() if s.strip()]
    data["remarks"] = [*data["remarks"], *added]
    (out / "training-v3-try2.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=200))


if __name__ == "__main__":
    main()
