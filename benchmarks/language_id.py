"""Which language a caller speaks, from the first 3 s through the phone line (issue #30's headline figure).

Three populations, each scored by the shipped identifier (``audio_models.multilingual``: Whisper
base's language posterior read by the head in ``audio_models/models/language-id-v1``), the
candidates being the seven languages of ``shared/data`` (English, Polish, Amharic, Bangla,
Egyptian Arabic, Italian, Greek):

- real speakers: every held-out speaker of the nine corpora (the emotion models' fixed lists,
  never in the head's training), up to 24 clips each, first 3 s, 8 kHz mu-law round trip;
- espeak-ng voices (three variants) reading six caller sentences in each language
  (``benchmarks/data/language_id/espeak_sentences.csv``), outside every corpus;
- English callers in natural voices (the intent evaluation's 72 requests in six voices): how
  many are heard as another language (each one would be sent down the slower path).

Each population is scored twice: the identifier alone, and as a live call's first utterance is
decided (``LanguageAwareTranscriber.first_utterance``: another language only when the identifier
is at least the policy's ``min_probability`` sure and tiny.en was not confident of English).

Prints one JSON line: accuracy per language, mean and worst, English heard as another language,
and milliseconds per identification on one core.

    python -m benchmarks.language_id --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import LanguageAwareTranscriber, MultilingualWhisper
from audio_models.training.corpora import ALL_CORPORA, Clip, held_out_speakers, list_corpora
from audio_models.training.language_id import CORPUS_LANGUAGE, PER_SPEAKER
from benchmarks.common import shipped_recogniser
from router.policy import load_policy

HERE = Path(__file__).resolve().parent
SEVEN = ("en", "pl", "am", "bn", "ar", "it", "el")
ESPEAK_VARIANTS = ("m1", "f2", "m3")
NATURAL = ("flite", "festival", "piper")


def _score(model: MultilingualWhisper, waves: list[tuple[str, np.ndarray]],
           live: LanguageAwareTranscriber | None = None) -> tuple[dict[str, float], dict[str, float], list[float]]:
    hits: dict[str, list[bool]] = defaultdict(list)
    decided: dict[str, list[bool]] = defaultdict(list)
    times: list[float] = []
    for lang, wave in waves:
        t0 = time.perf_counter()
        guess = model.identify(wave)
        times.append(time.perf_counter() - t0)
        hits[lang].append(guess is not None and guess.code == lang)
        if live is not None:
            heard, _ = live.first_utterance(wave)
            decided[lang].append((heard.code if heard is not None else "en") == lang)

    def shares(d: dict[str, list[bool]]) -> dict[str, float]:
        return {k: round(float(np.mean(v)), 3) for k, v in sorted(d.items())}

    return shares(hits), shares(decided), times


def held_out_clips(root: Path) -> dict[str, list[Clip]]:
    """Return every held-out speaker's clips of the nine corpora, by speaker (sorted), each list sorted by key."""
    held = {s for speakers in held_out_speakers().values() for s in speakers}
    by_speaker: dict[str, list[Clip]] = defaultdict(list)
    for clip in list_corpora(root, ALL_CORPORA):
        if clip.speaker in held:
            by_speaker[clip.speaker].append(clip)
    return {speaker: sorted(by_speaker[speaker], key=lambda c: c.key) for speaker in sorted(by_speaker)}


def held_out_sample(clips: list[Clip], rnd: random.Random) -> list[Clip]:
    """Return the benchmark's sample of one speaker's clips (up to PER_SPEAKER, drawn by ``rnd`` in turn)."""
    return rnd.sample(clips, min(PER_SPEAKER, len(clips)))


def held_out_waves(root: Path) -> list[tuple[str, np.ndarray]]:
    """Return (language, 3 s phone-band wave) for up to PER_SPEAKER clips of every held-out speaker."""
    rnd = random.Random(11)
    out = []
    for clips in held_out_clips(root).values():
        for clip in held_out_sample(clips, rnd):
            out.append((CORPUS_LANGUAGE[clip.corpus], telephone_round_trip(load_audio(clip.path))[:48000]))
    return out


def espeak_waves() -> list[tuple[str, np.ndarray]]:
    """Return (language, wave) for the espeak-ng sentences in three voice variants, through the line."""
    rows = list(csv.DictReader((HERE / "data" / "language_id" / "espeak_sentences.csv").open(encoding="utf-8")))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        for row in rows:
            for variant in ESPEAK_VARIANTS:
                subprocess.run(["espeak-ng", "-v", f"{row['language']}+{variant}", "-w", str(wav), row["text"]],
                               check=True, capture_output=True)
                out.append((row["language"], telephone_round_trip(load_audio(wav))[:48000]))
    return out


def english_natural_waves() -> list[tuple[str, np.ndarray]]:
    """Return the intent evaluation's recordings in the six natural English voices (already phone band)."""
    return [("en", load_audio(p)[:48000]) for p in sorted((HERE / "data" / "intents_eval").glob("*.wav"))
            if p.stem.split("-", 1)[1].startswith(NATURAL)]


def main() -> None:
    """Score the three populations and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the corpora root (shared/data)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = MultilingualWhisper(languages=SEVEN[1:])
    live = LanguageAwareTranscriber(shipped_recogniser(), model,
                                    min_probability=load_policy().languages.min_probability)
    held, held_live, times = _score(model, held_out_waves(args.data), live)
    espeak, _, _ = _score(model, espeak_waves())
    english, english_live, _ = _score(model, english_natural_waves(), live)

    def mean(d: dict[str, float]) -> float:
        return round(float(np.mean(list(d.values()))), 3)

    print(json.dumps({
        "benchmark": "language_id", "window_s": 3.0, "candidates": list(SEVEN), "line": "8 kHz mu-law round trip",
        "held_out_speakers": held, "held_out_mean": mean(held), "held_out_min": min(held.values()),
        "held_out_as_decided": held_live, "held_out_as_decided_mean": mean(held_live),
        "held_out_as_decided_min": min(held_live.values()),
        "espeak_voices": espeak, "espeak_mean": mean(espeak),
        "english_natural_voices_heard_as_other": round(1.0 - english.get("en", 0.0), 3),
        "english_natural_voices_switched_as_decided": round(1.0 - english_live.get("en", 0.0), 3),
        "ms_per_identification_one_core": round(1000 * float(np.median(times)), 1),
        "target": "held-out speakers: mean >= 0.90, none below 0.75",
    }))


if __name__ == "__main__":
    main()
