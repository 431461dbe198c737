"""Callers taken for the wrong language who key their own: heard again in it, or their words set aside (issue #30).

Rule: docs/experiments/2026-12-08-keyed-language-rehear-rule.md. For every recording of a set
(``set DIR``) or the plain calls of held-out real speakers of the six other languages (``plain``,
the own-words rule's 345 clips), the live path's first utterance (the shipped transcriber behind
language identification); when it is taken, surely enough, for a served language other than the
caller's own, the same audio transcribed again in the caller's language (what a key now does). One
JSON line per recording in that population: the truth, the wrong take and its reading's intents,
the re-heard reading's intents, and the re-hearing's seconds on one core.

    PYTHONPATH=. python docs/experiments/keyed-language/rehear.py set benchmarks/data/intents_languages_mbrola
    PYTHONPATH=. python docs/experiments/keyed-language/rehear.py plain
    python docs/experiments/keyed-language/rehear.py score docs/experiments/keyed-language/*.jsonl
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs" / "experiments" / "own-words-intents"))


def recordings(kind: str, data: Path | None) -> list[tuple[dict[str, str], object]]:
    """Return (row, wave) for a set's recordings, or the plain calls of held-out real speakers."""
    from segments import plain_population  # the own-words rule's plain population

    from audio_models.audio_io import load_audio

    items: list[tuple[dict[str, str], object]] = []
    if kind == "set":
        assert data is not None
        for row in csv.DictReader((data / "sentences.csv").open(encoding="utf-8")):
            if "festival" in data.name and row["language"] != "it":  # the policy serves no Czech or Finnish
                continue
            items += [({**row, "set": data.name, "voice": p.stem}, load_audio(p))
                      for p in sorted(data.glob(f"{row['id']}-*.wav"))]
        return items
    return [({**row, "set": "plain"}, wave) for row, wave in plain_population()]


def collect(kind: str, data: Path | None) -> None:
    """Print one JSON line per recording taken for a wrong served language."""
    import torch

    from audio_models.multilingual import load_multilingual
    from benchmarks.common import shipped_recogniser
    from router.policy import load_policy
    from router.text import load_text_analyser

    torch.set_num_threads(1)
    policy = load_policy()
    rules = policy.languages
    analyser = load_text_analyser(policy.text)
    if analyser.own_words is not None:
        analyser.own_words.wait()
    transcriber = load_multilingual(shipped_recogniser(), rules.routes, min_probability=rules.min_probability)
    total = 0
    for row, wave in recordings(kind, data):
        total += 1
        seg = transcriber.transcribe(wave)
        own = row["language"]
        if (seg.language in ("", "en", own) or seg.language_probability < rules.min_probability
                or own not in rules.routes):
            continue
        start = time.perf_counter()
        again = transcriber.transcribe(wave, own)
        seconds = time.perf_counter() - start
        before = analyser.analyse(seg.text, seg.alternatives, original=seg.original).intents
        after = analyser.analyse(again.text, again.alternatives, original=again.original).intents
        print(json.dumps({**row, "taken_for": seg.language, "probability": seg.language_probability,
                          "wrong_original": seg.original, "wrong_translation": seg.text,
                          "wrong_intents": sorted(before), "original": again.original, "translation": again.text,
                          "intents": sorted(after), "seconds": round(seconds, 3)}, ensure_ascii=False), flush=True)
    print(json.dumps({"recordings": total, "set": row["set"] if total else ""}), flush=True)


def score(paths: list[Path]) -> None:
    """Print the rule's figures from the collected lines."""
    from router.policy import load_policy

    policy = load_policy()
    order = list(policy.text.intent_routes)
    queue_of = {name: route.queue for name, route in policy.text.intent_routes.items()}

    def first(found: list[str]) -> str:
        return next((name for name in order if name in found), "general")

    def queue(found: list[str]) -> str:
        return queue_of.get(first(found), policy.default_queue)

    rows, totals = [], {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if "taken_for" in item:
                rows.append(item)
            else:
                totals[item["set"]] = item["recordings"]
    synthetic = [r for r in rows if r["set"] != "plain"]
    plain = [r for r in rows if r["set"] == "plain"]
    label = {id(r): "general" if r["intent"] == "none" else r["intent"] for r in rows}
    out = {
        "population_per_set": {s: sum(r["set"] == s for r in rows) for s in sorted({r["set"] for r in rows})},
        "recordings_per_set": totals,
        "synthetic_queue_group_B": round(sum(queue(r["wrong_intents"]) == r["queue"] for r in synthetic)
                                         / max(1, len(synthetic)), 3),
        "synthetic_queue_group_R": round(sum(queue(r["intents"]) == r["queue"] for r in synthetic)
                                         / max(1, len(synthetic)), 3),
        "synthetic_exact_B": round(sum(label[id(r)] == "general" for r in synthetic) / max(1, len(synthetic)), 3),
        "synthetic_exact_R": round(sum(first(r["intents"]) == label[id(r)] for r in synthetic)
                                   / max(1, len(synthetic)), 3),
        "plain_taken_wrong": len(plain),
        "plain_routed_by_words_B": sum(queue(r["wrong_intents"]) != policy.default_queue for r in plain),
        "plain_routed_by_words_R": sum(queue(r["intents"]) != policy.default_queue for r in plain),
        "rehear_seconds_median": sorted(r["seconds"] for r in rows)[len(rows) // 2] if rows else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "score":
        score([Path(p) for p in sys.argv[2:]])
    else:
        collect(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else None)
