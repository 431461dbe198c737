"""Split the festival-voice set's misses into not identified / misheard / lost in translation (issue #30).

Reads the benchmark's JSON line (intents_languages-festival.json, beside this file) and the set's
sentences; a miss whose transcript in the caller's language is within a character error rate of
0.25 (and, as a second reading, 0.5) of the sentence counts as heard, so its intent was lost in
translation or by the analyser. Prints one JSON line.

    python docs/experiments/languages-festival/split.py
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SET = HERE.parents[2] / "benchmarks" / "data" / "intents_languages_festival" / "sentences.csv"
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parent / "languages-instrument"))

from real_speakers import cer  # noqa: E402  (the instrument record's character error rate)


def main() -> None:
    """Print the split at both closeness floors."""
    result = json.loads((HERE / "intents_languages-festival.json").read_text())
    text = {row["id"]: row for row in csv.DictReader(SET.open(encoding="utf-8"))}
    out: dict[str, object] = {"recordings": result["recordings"], "exact_intent": result["exact_intent"]}
    intent_misses = [m for m in result["misses"] if m["pred"] != m["label"]]
    out["intent_misses"] = len(intent_misses)
    for floor in (0.25, 0.5):
        split: Counter[str] = Counter()
        for miss in intent_misses:
            row = text[miss["id"]]
            if miss["language"] != row["language"]:
                why = "not identified"
            elif not miss["said"] or cer(row["text"], miss["said"]) > floor:
                why = "misheard or no transcript"
            else:
                why = "heard, lost in translation or by the analyser"
            split[why] += 1
            split[f"{row['language']}: {why}"] += 1
        out[f"split_cer_{floor}"] = dict(sorted(split.items()))
    heard = [cer(text[m["id"]]["text"], m["said"]) for m in result["misses"]
             if m["said"] and m["language"] == text[m["id"]]["language"]]
    out["identified_misses_with_text_median_cer"] = round(sorted(heard)[len(heard) // 2], 3) if heard else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
