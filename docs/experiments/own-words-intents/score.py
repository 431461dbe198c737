"""Score candidates A (the translation, as shipped) and B (own words by e5, else A) on stored segments (issue #30).

Reads segments.py's JSON lines; prints one JSON line per file: exact intent and queue group per
candidate (overall and per language) for a request set, or calls given any intent for plain calls.
Rule: docs/experiments/2026-12-07-own-words-intents-rule.md. With ``--examples2 FILE``, a third
candidate B2: B with the own-words model fitted on the training file plus FILE (the rule
docs/experiments/2026-12-07-own-words-examples-rule.md), and for a request set each model's exact
intent from the written sentences (``text|B``, ``text|B2``: the ceiling without hearing).

    PYTHONPATH=. python docs/experiments/own-words-intents/score.py segments-mbrola.jsonl segments-plain.jsonl
    PYTHONPATH=. python docs/experiments/own-words-intents/score.py \
        --examples2 docs/experiments/own-words-examples/training-languages.yaml \
        segments-mbrola-2.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from router.intent_model import IntentExamples, IntentVocabularyError, fit_intent_model, read_examples  # noqa: E402
from router.multilingual_encoder import MultilingualEncoder  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import intent_examples, load_text_analyser  # noqa: E402

FLOOR = 0.5


def merge_examples(first: IntentExamples, *others: IntentExamples) -> IntentExamples:
    """Return the examples of every set together (a sentence in several keeps the union of its intents)."""
    by_text: dict[str, set[str]] = {}
    for examples in (first, *others):
        for text, labels in zip(examples.texts, examples.labels, strict=True):
            by_text.setdefault(text, set()).update(labels)
    remarks = tuple(dict.fromkeys(r for examples in (first, *others) for r in examples.remarks))
    mixed = sorted(set(remarks) & set(by_text))
    if mixed:
        raise IntentVocabularyError(f"these sentences are both requests and remarks: {mixed[:3]}")
    intents = tuple(sorted({i for labels in by_text.values() for i in labels}))
    return IntentExamples(tuple(by_text), tuple(frozenset(v) for v in by_text.values()), intents, remarks)


def main() -> None:
    """Print the figures."""
    policy = load_policy()
    rules = policy.text
    analyser = load_text_analyser(rules)
    order = list(rules.intent_routes)
    queue_of = {name: route.queue for name, route in rules.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    encoder = MultilingualEncoder(threads=2)
    args = sys.argv[1:]
    models = {"B": fit_intent_model(intent_examples(rules), encoder, word_weights=False)}
    if args[:1] == ["--examples2"]:
        extra = read_examples(Path(args[1]))
        models["B2"] = fit_intent_model(merge_examples(intent_examples(rules), extra), encoder, word_weights=False)
        args = args[2:]

    def own_reading(model: object, text: str, fallback: str) -> str:
        probs, requests = model.read([text])  # type: ignore[attr-defined]
        if requests[0] < model.request_floor or max(probs[0].values()) < FLOOR:  # type: ignore[attr-defined]
            return fallback
        return first({k for k, p in probs[0].items() if p >= FLOOR})

    def first(found: set[str] | frozenset[str]) -> str:
        return next((name for name in order if name in found), "general")

    for name in args:
        rows = [json.loads(line) for line in Path(name).read_text(encoding="utf-8").splitlines()]
        tally: dict[str, list[bool]] = defaultdict(list)
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            found, _ = analyser.intents_of_readings(row["translation"], tuple(row["alternatives"]))
            a = first(found)
            preds = {"A": a, **{cand: own_reading(model, row["original"], a) if row["original"] else a
                                for cand, model in models.items()}}
            if "text" in row:
                for cand, model in models.items():
                    tally[f"text|{cand}|{row['language']}"].append(own_reading(model, row["text"], "general") == label)
                    tally[f"text|{cand}|all"].append(own_reading(model, row["text"], "general") == label)
            for cand, pred in preds.items():
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
