"""Hardship from natural voices: callers who say they are bereaved, ill or cannot pay, and controls.

The sets: benchmarks/data/hardship_voices (set 1, now development data) and hardship_voices_2
(set 2, the test): 16 hardship sentences and 16 controls that share their words each, spoken by
seven voices of four families through the 8 kHz mu-law line (``record_natural_voices --data …``).
Each recording is transcribed once with the shipped recogniser settings and read by the shipped
analyser; a call counts as hardship when the routing-order first intent is ``hardship`` (it is
routed first). Natural voices (flite, festival, piper) are the headline, espeak-ng a diagnostic.
The rule that judged it: docs/experiments/2026-11-29-hardship-intent-rule.md.

    python -m benchmarks.hardship_voices [--data benchmarks/data/hardship_voices_2]
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
from benchmarks.transcription_benchmark import primary_intent
from router.policy import load_policy
from router.text import load_text_analyser

DATA = Path(__file__).resolve().parent / "data" / "hardship_voices"


def main() -> None:
    """Transcribe, analyse, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="the set's folder (default: set 1; set 2: "
                    "benchmarks/data/hardship_voices_2)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rules = load_policy().text
    analyser = load_text_analyser(rules)
    order = list(rules.intent_routes)
    whisper = shipped_recogniser()
    with (args.data / "sentences.csv").open() as fh:
        sentences = list(csv.DictReader(fh))
    hits: dict[str, list[bool]] = defaultdict(list)
    wrong = []
    for row in sentences:
        kind = row["intent"]  # hardship | control
        hits[f"text:{kind}"].append(primary_intent(analyser, row["text"], order) == "hardship")
        for voice, family in VOICES.items():
            seg = whisper.transcribe(load_audio(args.data / f"{row['id']}-{voice}.wav"))
            said = primary_intent(analyser, seg.text, order, seg.alternatives)
            hit = said == "hardship"
            hits[f"{family}:{kind}"].append(hit)
            hits[f"{voice}:{kind}"].append(hit)
            if family in NATURAL:
                hits[f"natural:{kind}"].append(hit)
                if hit != (kind == "hardship"):
                    wrong.append({"id": row["id"], "voice": voice, "kind": kind, "read_as": said, "heard": seg.text})

    def share(key: str) -> float:
        return round(sum(hits[key]) / len(hits[key]), 4)

    print(json.dumps({
        "benchmark": "hardship_voices", "set": args.data.name, "recogniser": whisper.name,
        "n_sentences": len(sentences),
        "natural_recall_audio": share("natural:hardship"),
        "natural_false_on_controls_audio": share("natural:control"),
        "natural_false_controls_count": sum(hits["natural:control"]), "natural_controls": len(hits["natural:control"]),
        "recall_text": share("text:hardship"), "false_on_controls_text": share("text:control"),
        "per_family_recall_audio": {f: share(f"{f}:hardship") for f in dict.fromkeys(VOICES.values())},
        "per_voice_recall_audio": {v: share(f"{v}:hardship") for v in VOICES},
        "errors_natural": wrong,
    }))


if __name__ == "__main__":
    main()
