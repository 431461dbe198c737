"""Transcribe a set of other-language recordings, or plain corpus calls, as the shipped path does (issue #30).

``set DIR``: every <id>-<voice>.wav of DIR's sentences.csv; ``plain``: the held-out speakers of the
six other languages' corpora, up to 15 clips each (the token-budget verdict's clips). One JSON line
per recording: what was heard (language, own words, translation) beside the truth.
Rule: docs/experiments/2026-12-07-own-words-intents-rule.md.

    PYTHONPATH=. python docs/experiments/own-words-intents/segments.py set benchmarks/data/intents_languages_mbrola
    PYTHONPATH=. python docs/experiments/own-words-intents/segments.py plain

``--keep-untranslated`` (first): utterances whose translation alone is under its floor come back
with their own words (docs/experiments/2026-12-07-own-words-untranslated-rule.md).
``--vocabulary FILE`` (first): prime the decode of the caller's own words with FILE's line for their
language (docs/experiments/2026-12-07-own-words-vocabulary-rule.md); the translation is unchanged.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from audio_models import multilingual  # noqa: E402
from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.multilingual import load_multilingual  # noqa: E402
from audio_models.training.corpora import held_out_speakers, list_corpora  # noqa: E402
from audio_models.training.language_id import CORPUS_LANGUAGE  # noqa: E402
from audio_models.transcribe import TranscriptSegment  # noqa: E402
from benchmarks.common import shipped_recogniser  # noqa: E402
from router.policy import load_policy  # noqa: E402

DATA = Path(os.environ.get("EMOROUTE_CORPORA", REPO.parent / "shared" / "data"))
CORPORA = ("nemo", "ased", "bangla", "eyase", "emovo", "aesdd")


def keep_untranslated() -> None:
    """Candidate K: an utterance whose translation alone is under its floor keeps its own words.

    The multilingual path checks the own words' floor, then the translation's, and returns an
    empty segment when the second fails; here the own words that passed are put into that segment.
    """
    passed: list[str] = []  # what each floor of the current decode let through ("" = under it)
    plain_finish, plain_segment = multilingual.finish_segments, multilingual.TranscriptSegment
    plain_transcribe = multilingual.MultilingualWhisper.transcribe

    def finish(segments: list, floor: float, name: str) -> TranscriptSegment:
        out = plain_finish(segments, floor, name)
        passed.append(out.text)
        return out

    def segment(text: str = "", **fields: object) -> TranscriptSegment:
        if not text and len(passed) == 2 and passed[0] and not passed[1] and "original" not in fields:
            fields["original"] = passed[0]  # own words passed, the translation did not
        return plain_segment(text, **fields)  # type: ignore[arg-type]

    def transcribe(self: object, *args: object, **kwargs: object) -> TranscriptSegment:
        passed.clear()
        try:
            return plain_transcribe(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            passed.clear()

    multilingual.finish_segments = finish  # type: ignore[assignment]
    multilingual.TranscriptSegment = segment  # type: ignore[assignment,misc]
    multilingual.MultilingualWhisper.transcribe = transcribe  # type: ignore[assignment,method-assign]


def prime(transcriber: object, vocabulary: dict[str, str]) -> None:
    """Make the multilingual model's own-words decodes start from ``vocabulary``'s line for their language."""
    model = transcriber.multilingual._model  # type: ignore[attr-defined]
    plain = model.get_prompt

    def primed(tok: object, previous: list[int], **kwargs: object) -> list[int]:
        words = vocabulary.get(tok.language_code, "")  # type: ignore[attr-defined]
        if words and not previous and tok.task == tok.transcribe:  # type: ignore[attr-defined]
            previous = tok.encode(" " + words)  # type: ignore[attr-defined]
        return plain(tok, previous, **kwargs)

    model.get_prompt = primed


def plain_population() -> list[tuple[dict[str, str], object]]:
    """Return (row, wave through the line) for up to 15 clips of each held-out speaker of the six corpora."""
    items: list[tuple[dict[str, str], object]] = []
    held = held_out_speakers()
    for corpus in CORPORA:
        by_speaker: dict[str, list] = defaultdict(list)
        for clip in list_corpora(DATA, (corpus,)):
            if clip.speaker in held[corpus]:
                by_speaker[clip.speaker].append(clip)
        for clips in by_speaker.values():
            chosen = clips[:: max(1, len(clips) // 15)][:15]
            items += [({"id": c.key, "language": CORPUS_LANGUAGE[corpus], "intent": "none", "queue": "general",
                        "voice": corpus}, telephone_round_trip(load_audio(c.path))) for c in chosen]
    return items


def main() -> None:
    """Print one JSON line per recording."""
    torch.set_num_threads(1)
    vocabulary: dict[str, str] = {}
    keep = sys.argv[1] == "--keep-untranslated"
    if keep:
        del sys.argv[1]
    if sys.argv[1] == "--vocabulary":
        vocabulary = yaml.safe_load(Path(sys.argv[2]).read_text(encoding="utf-8"))
        del sys.argv[1:3]
    policy = load_policy()
    serve = ["cs", "fi"] if len(sys.argv) > 2 and "festival" in sys.argv[2] else []
    transcriber = load_multilingual(shipped_recogniser(), [*policy.languages.routes, *serve],
                                    min_probability=policy.languages.min_probability)
    if vocabulary:
        prime(transcriber, vocabulary)
    if keep:
        keep_untranslated()
    items: list[tuple[dict[str, str], object]] = []
    if sys.argv[1] == "set":
        data = Path(sys.argv[2])
        for row in csv.DictReader((data / "sentences.csv").open(encoding="utf-8")):
            items += [({**row, "voice": p.stem}, load_audio(p)) for p in sorted(data.glob(f"{row['id']}-*.wav"))]
    else:
        items = plain_population()
    for row, wave in items:
        seg = transcriber.transcribe(wave)
        print(json.dumps({**row, "heard_language": seg.language, "language_probability": seg.language_probability,
                          "original": seg.original, "translation": seg.text,
                          "alternatives": list(seg.alternatives)}, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
