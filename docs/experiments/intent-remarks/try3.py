"""Try 3 offline: the next-best readings read only when the best reading passes the request gate.

Patches ``TextAnalyser.intents_of_readings`` in this process only and scores the same populations
as false_intents.py and the four intent evaluation sets from their kept transcripts.

    python docs/experiments/intent-remarks/try3.py
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from benchmarks.record_natural_voices import VOICES  # noqa: E402
from benchmarks.transcription_benchmark import primary_intent  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import TextAnalyser, load_text_analyser  # noqa: E402

SETS = {1: ("intents_eval", "intent-eval"), 2: ("intents_eval_2", "intent-eval-2"),
        3: ("intents_eval_3", "intent-eval-3"), 4: ("intents_eval_4", "intent-eval-4")}
ORIGINAL = TextAnalyser.intents_of_readings


def gated(self: TextAnalyser, text: str, alternatives=()):  # type: ignore[no-untyped-def]
    """The shipped method, but alternatives only when the best reading is a request."""
    if alternatives and text.strip() and self.classifier is not None:
        model = self.classifier.model
        if model.read([text])[1][0] < model.request_floor and not self.phrase_intents(text)[0]:
            alternatives = ()
    return ORIGINAL(self, text, alternatives)


def score(analyser: TextAnalyser, order: list[str], queue_of: dict[str, str]) -> dict:
    """Return false intents per population and exact / queue per set."""
    out: dict = {}
    for name in ("judge", "dev"):
        readings = json.loads((ROOT / f"docs/experiments/intent-remarks/readings-{name}.json").read_text())
        by: dict[str, int] = {}
        for key, r in readings.items():
            by[key.split("/")[0]] = by.get(key.split("/")[0], 0) + bool(
                analyser.analyse(r["text"], r["alternatives"]).intents)
        out[name] = {"total": sum(by.values()), "by_corpus": by}
    for n, (data, logs) in SETS.items():
        rows = list(csv.DictReader((ROOT / "benchmarks/data" / data / "sentences.csv").open()))
        heard = json.loads((ROOT / "docs/experiments" / logs / "transcripts.json").read_text())
        exact = queue = total = 0
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            for voice, family in VOICES.items():
                if family == "espeak-ng":
                    continue
                text, alts = heard[f"{row['id']}-{voice}"]
                pred = primary_intent(analyser, text, order, tuple(alts))
                exact += pred == label
                queue += queue_of[pred] == row["queue"]
                total += 1
        out[f"set{n}"] = {"exact": round(exact / total, 4), "queue": round(queue / total, 4)}
    return out


def main() -> None:
    """Print the shipped and try-3 figures as two JSON lines."""
    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    order = list(policy.text.intent_routes)
    queue_of = {k: r.queue for k, r in policy.text.intent_routes.items()} | {"general": policy.default_queue}
    print(json.dumps({"variant": "shipped", **score(analyser, order, queue_of)}))
    TextAnalyser.intents_of_readings = gated  # type: ignore[method-assign]
    print(json.dumps({"variant": "try 3", **score(analyser, order, queue_of)}))


if __name__ == "__main__":
    main()
