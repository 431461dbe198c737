"""Hardship from natural voices: callers who say they are bereaved, ill or cannot pay, and controls.

The sets: benchmarks/data/hardship_voices (set 1) and hardship_voices_2 (set 2), development data
now, and hardship_voices_3 (set 3, the test of the hardship cue): 16 hardship sentences and 16
controls that share their words each, spoken by seven voices of four families through the 8 kHz
mu-law line (``record_natural_voices --data …``). Each recording is transcribed once with the
shipped recogniser settings and read by the shipped analyser; a call counts as hardship when the
analysis names the ``hardship`` topic (the agent then gets its cue). ``routing_changed`` counts
recordings whose routing intent differs from the same analyser's with no topics (it must be 0:
a topic routes nothing). Natural voices (flite, festival, piper) are the headline, espeak-ng a
diagnostic. The rule: docs/experiments/2026-11-29-hardship-cue-rule.md (sets 1-2 judged the
earlier hardship intent, docs/experiments/2026-11-29-hardship-intent-rule.md, whose code is in
that record's commits).

    python -m benchmarks.hardship_voices [--data benchmarks/data/hardship_voices_3] [--policy FILE]

No topic ships, so the judged phrases are read from the policy as it was judged:
``git show 516d75d:router/policy.yaml > /tmp/hardship-policy.yaml`` and ``--policy`` it.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import torch

from audio_models.audio_io import load_audio
from benchmarks.common import shipped_recogniser
from benchmarks.intent_voices import NATURAL
from benchmarks.record_natural_voices import VOICES
from router.policy import load_policy
from router.text import TextAnalyser, load_text_analyser

DATA = Path(__file__).resolve().parent / "data" / "hardship_voices"


def main() -> None:
    """Transcribe, analyse, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="the set's folder (default: set 1; the test: "
                    "benchmarks/data/hardship_voices_3)")
    ap.add_argument("--policy", type=Path, default=None, help="a policy file (default: the shipped one)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rules = load_policy(args.policy).text
    analyser = load_text_analyser(rules)
    plain = load_text_analyser(rules.model_copy(update={"topics": {}, "no_topic_phrases": []}))
    order = list(rules.intent_routes)

    def routing_intent(a: TextAnalyser, text: str, alternatives: tuple[str, ...] = ()) -> str:
        found = a.analyse(text, alternatives).intents
        return next((name for name in order if name in found), "general")

    changed = 0
    whisper = shipped_recogniser()
    with (args.data / "sentences.csv").open() as fh:
        sentences = list(csv.DictReader(fh))
    hits: dict[str, list[bool]] = defaultdict(list)
    wrong = []
    for row in sentences:
        kind = row["intent"]  # hardship | control
        hits[f"text:{kind}"].append("hardship" in analyser.analyse(row["text"]).intents)
        for voice, family in VOICES.items():
            seg = whisper.transcribe(load_audio(args.data / f"{row['id']}-{voice}.wav"))
            said = analyser.analyse(seg.text, seg.alternatives).intents
            hit = "hardship" in said
            changed += routing_intent(analyser, seg.text, seg.alternatives) != routing_intent(
                plain, seg.text, seg.alternatives)
            hits[f"{family}:{kind}"].append(hit)
            hits[f"{voice}:{kind}"].append(hit)
            if family in NATURAL:
                hits[f"natural:{kind}"].append(hit)
                if hit != (kind == "hardship"):
                    wrong.append({"id": row["id"], "voice": voice, "kind": kind, "read_as": sorted(said),
                                  "heard": seg.text})

    def share(key: str) -> float:
        return round(sum(hits[key]) / len(hits[key]), 4)

    print(json.dumps({
        "benchmark": "hardship_voices", "set": args.data.name, "recogniser": whisper.name,
        "n_sentences": len(sentences),
        "natural_recall_audio": share("natural:hardship"),
        "natural_false_on_controls_audio": share("natural:control"),
        "natural_false_controls_count": sum(hits["natural:control"]), "natural_controls": len(hits["natural:control"]),
        "routing_changed": changed, "recordings": len(sentences) * len(VOICES),
        "recall_text": share("text:hardship"), "false_on_controls_text": share("text:control"),
        "per_family_recall_audio": {f: share(f"{f}:hardship") for f in dict.fromkeys(VOICES.values())},
        "per_voice_recall_audio": {v: share(f"{v}:hardship") for v in VOICES},
        "errors_natural": wrong,
    }))


if __name__ == "__main__":
    main()
