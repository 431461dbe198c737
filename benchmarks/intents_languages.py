"""Callers in other languages: identified, translated, understood and routed (issue #30).

The set: benchmarks/data/intents_languages (36 caller requests written for it in Spanish, Italian
and Polish, two per intent and two general-service requests per language, the intents of the
English evaluation), each spoken by three espeak-ng voices (m1, f2, m3) and made telephone-like
(8 kHz mu-law WAV). A second set, benchmarks/data/intents_languages_festival (18 requests in each of
Italian, Czech and Finnish, spoken by Debian's recorded-diphone festival voices: 2, 3 and 2 per
language), runs with ``--data`` and ``--serve cs fi``; a third, benchmarks/data/intents_languages_mbrola
(12 requests in each of Spanish, Italian, Polish and Greek, written on 2026-12-07, spoken by espeak-ng
driving Debian's recorded-diphone mbrola voices: 2, 4, 1 and 2 per language), with ``--data``.
Every recording goes through what a live
call's first utterance goes through:
the shipped transcriber settings behind language identification (the policy's languages), the
multilingual path when the caller is not English (Whisper base: their words and the English
translation), and the shipped text analyser on both: the caller's own words read by the multilingual
intent model (router.own_words), the translation's reading where they name nothing.

Prints one JSON line: the language identified, exact intent and queue group from what was heard,
the language route right (the caller's own language, so its skill and hold message), per
language, the misses, and the multilingual path's time per utterance on one core. espeak-ng is far
harder than people through an 8 kHz line (the English evaluation: 0.833 vs 0.891 for the natural
voices), so these are lower bounds.

    python -m benchmarks.intents_languages
    python -m benchmarks.intents_languages --data benchmarks/data/intents_languages_festival --serve cs fi
    python -m benchmarks.intents_languages --data benchmarks/data/intents_languages_mbrola
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.multilingual import load_multilingual
from benchmarks.common import shipped_recogniser
from router.policy import load_policy
from router.text import load_text_analyser

DATA = Path(__file__).resolve().parent / "data" / "intents_languages"


def main() -> None:
    """Transcribe and translate each recording, analyse it, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA,
                    help="the set's folder: sentences.csv and <id>-<voice>.wav (every voice found is scored)")
    ap.add_argument("--serve", nargs="*", default=[], metavar="CODE",
                    help="languages served besides the policy's (as a centre with those agents would add "
                         "to policy.yaml's languages), e.g. cs fi")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    if analyser.own_words is not None:
        analyser.own_words.wait()
    transcriber = load_multilingual(shipped_recogniser(), [*policy.languages.routes, *args.serve],
                                    min_probability=policy.languages.min_probability)
    rows = list(csv.DictReader((args.data / "sentences.csv").open(encoding="utf-8")))
    order = list(policy.text.intent_routes)
    queue_of = {name: route.queue for name, route in policy.text.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    tally: dict[str, list[bool]] = defaultdict(list)
    misses, seconds = [], []
    voices: set[str] = set()
    for row in rows:
        label = "general" if row["intent"] == "none" else row["intent"]
        lang = row["language"]
        for path in sorted(args.data.glob(f"{row['id']}-*.wav")):
            voice = path.stem.removeprefix(f"{row['id']}-")
            voices.add(voice)
            wave = load_audio(path)
            start = time.perf_counter()
            seg = transcriber.transcribe(wave)
            seconds.append(time.perf_counter() - start)
            found = analyser.analyse(seg.text, seg.alternatives, original=seg.original).intents
            pred = next((name for name in order if name in found), "general")
            heard_as = seg.language if seg.language_probability >= policy.languages.min_probability else "en"
            for key in ("all", lang, voice):
                tally[f"{key}_language"].append(heard_as == lang)
                tally[f"{key}_exact"].append(pred == label)
                tally[f"{key}_queue"].append(queue_of[pred] == row["queue"])
            if pred != label or heard_as != lang:
                misses.append({"id": row["id"], "voice": voice, "label": label, "pred": pred, "language": heard_as,
                               "said": seg.original, "translation": seg.text})

    def share(key: str) -> float:
        return round(float(np.mean(tally[key])), 3)

    languages = sorted({row["language"] for row in rows})
    print(json.dumps({
        "benchmark": "intents_languages", "sentences": len(rows), "voices": sorted(voices), "languages": languages,
        "served_besides_policy": args.serve, "recordings": len(seconds),
        "language_identified": share("all_language"), "exact_intent": share("all_exact"),
        "queue_group": share("all_queue"),
        "per_language": {lang: {"language_identified": share(f"{lang}_language"),
                                "exact_intent": share(f"{lang}_exact"), "queue_group": share(f"{lang}_queue")}
                         for lang in languages},
        "exact_intent_per_voice": {voice: share(f"{voice}_exact") for voice in sorted(voices)},
        "seconds_per_utterance_1_core_median": round(float(np.median(seconds)), 2),
        "seconds_per_utterance_1_core_p95": round(float(np.percentile(seconds, 95)), 2),
        "target": "intents from translated speech >= 0.85; right queue by language >= 0.95",
        "misses": misses}, ensure_ascii=False))


if __name__ == "__main__":
    main()
