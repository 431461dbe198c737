"""Choose the likeliest intent's floor on the training file alone (the validation split of train-intents).

Fits the shipped examples' four fifths (router.intent_model.validate's split) and reads the held-out
fifth: for each candidate floor, the exact primary intent (first in the policy's intent_routes
order among those named, else general) against the sentence's labels.

    python docs/experiments/intent-top-floor/choose.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from router.intent_model import _FOLDS, IntentExamples, _folds, fit_intent_model  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.semantic import SentenceEncoder  # noqa: E402
from router.text import intent_examples  # noqa: E402

CANDIDATES = (0.5, 0.45, 0.4, 0.35, 0.3)


def main() -> None:
    """Print the held-out exact primary intent for each candidate floor, and the chosen one."""
    policy = load_policy()
    rules = policy.text.intent_model
    assert rules is not None
    order = list(policy.text.intent_routes)
    examples = intent_examples(policy.text)
    fold = _folds(len(examples.texts), _FOLDS, seed=1)
    remark_fold = _folds(len(examples.remarks), _FOLDS, seed=1)
    train = [i for i in range(len(examples.texts)) if fold[i] != 0]
    test = [i for i in range(len(examples.texts)) if fold[i] == 0]
    part = IntentExamples(tuple(examples.texts[i] for i in train), tuple(examples.labels[i] for i in train),
                          examples.intents, tuple(r for r, f in zip(examples.remarks, remark_fold, strict=True) if f))
    model = fit_intent_model(part, SentenceEncoder(rules.encoder))
    probs, requests = model.read([examples.texts[i] for i in test])

    def primary(names: set[str]) -> str:
        return next((k for k in order if k in names), "general")

    truth = [primary(set(examples.labels[i])) for i in test]
    scores = {}
    for floor in CANDIDATES:
        right = 0
        for row, request, label in zip(probs, requests, truth, strict=True):
            named: set[str] = set()
            if request >= model.request_floor:
                named = {k for k, p in row.items() if p >= rules.min_probability}
                top = max(row, key=row.__getitem__)
                if not named and row[top] >= floor:
                    named = {top}
            right += primary(named) == label
        scores[floor] = round(right / len(test), 4)
    chosen = max(CANDIDATES, key=lambda f: (scores[f], f))
    print(json.dumps({"held_out_sentences": len(test), "exact_by_floor": scores, "chosen": chosen}))


if __name__ == "__main__":
    main()
