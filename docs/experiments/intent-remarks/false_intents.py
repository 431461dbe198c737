"""False intents on the kept readings of plain calls (dump_readings.py), by corpus, for one or more policies.

Each clip's best reading and next-best readings are analysed as the live service analyses an
utterance (router.text.TextAnalyser.analyse: the policy's phrases, the classifier, the topics);
any intent or topic is a false one, since none of these sentences asks for anything.

    python docs/experiments/intent-remarks/false_intents.py readings.json policy-a.yaml [policy-b.yaml ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from router.policy import load_policy  # noqa: E402
from router.text import load_text_analyser  # noqa: E402


def main() -> None:
    """Print one JSON line per policy: false intents by corpus and the readings that gained one."""
    readings = json.loads(Path(sys.argv[1]).read_text())
    for policy_file in map(Path, sys.argv[2:]):
        analyser = load_text_analyser(load_policy(policy_file).text, policy_file)
        by_corpus: dict[str, list[int]] = {}
        examples = []
        for key, r in readings.items():
            corpus = key.split("/")[0]
            intents = analyser.analyse(r["text"], r["alternatives"]).intents
            tally = by_corpus.setdefault(corpus, [0, 0])
            tally[0] += bool(intents)
            tally[1] += 1
            if intents:
                examples.append({"key": key, "intents": sorted(intents), "text": r["text"]})
        total = [sum(v[0] for v in by_corpus.values()), sum(v[1] for v in by_corpus.values())]
        print(json.dumps({"readings": sys.argv[1], "policy": str(policy_file), "total": total,
                          "by_corpus": by_corpus, "examples": examples}, ensure_ascii=False))


if __name__ == "__main__":
    main()
