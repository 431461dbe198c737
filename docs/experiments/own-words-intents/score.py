"""Score candidates A (the translation, as shipped) and B (own words by e5, else A) on stored segments (issue #30).

Reads segments.py's JSON lines; prints one JSON line per file: exact intent and queue group per
candidate (overall and per language) for a request set, or calls given any intent for plain calls.
Rule: docs/experiments/2026-12-07-own-words-intents-rule.md.

    PYTHONPATH=. python docs/experiments/own-words-intents/score.py segments-mbrola.jsonl segments-plain.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from router.intent_model import fit_intent_model  # noqa: E402
from router.multilingual_encoder import MultilingualEncoder  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import intent_examples, load_text_analyser  # noqa: E402

FLOOR = 0.5


def main() -> None:
    """Print the figures."""
    policy = load_policy()
    rules = policy.text
    analyser = load_text_analyser(rules)
    order = list(rules.intent_routes)
    queue_of = {name: route.queue for name, route in rules.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    own = fit_intent_model(intent_examples(rules), MultilingualEncoder(threads=2), word_weights=False)

    def first(found: set[str] | frozenset[str]) -> str:
        return next((name for name in order if name in found), "general")

    for name in sys.argv[1:]:
        rows = [json.loads(line) for line in Path(name).read_text(encoding="utf-8").splitlines()]
        tally: dict[str, list[bool]] = defaultdict(list)
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            found, _ = analyser.intents_of_readings(row["translation"], tuple(row["alternatives"]))
            a = first(found)
            b = a
            if row["original"]:
                probs, requests = own.read([row["original"]])
                if requests[0] >= own.request_floor:
                    b = first({k for k, p in probs[0].items() if p >= FLOOR}) if max(probs[0].values()) >= FLOOR else a
            for cand, pred in (("A", a), ("B", b)):
                for key in ("all", row["language"]):
                    tally[f"{cand}|{key}|exact"].append(pred == label)
                    tally[f"{cand}|{key}|queue"].append(queue_of[pred] == row["queue"])
                    tally[f"{cand}|{key}|false_intent"].append(label == "general" and pred != "general")
        plain = all(row["intent"] == "none" for row in rows)
        out = {"file": Path(name).name, "recordings": len(rows)}
        for key, values in sorted(tally.items()):
            if plain and not key.endswith("false_intent"):
                continue
            out[key] = f"{sum(values)} of {len(values)}" if plain else round(float(np.mean(values)), 3)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
