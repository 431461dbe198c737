"""What a noisy first utterance looks like to the language decision (issue #30 experiment).

For English callers (a set's first four requests per intent, in the given voices, 0.3 s / 0.5 s of
line around each) and for real speakers of the six other languages (the held-out speakers of the
nine corpora, four clips each: ``--clips even`` or ``odd`` of a fixed shuffle, so development and
verdict never share a clip), clean and under babble (four RAVDESS actors from ``--babble-actor``),
street noise and hiss at 0 / 5 / 10 dB, through the 8 kHz mu-law line: what the live first
utterance decides from, namely the line estimate, tiny.en's confidence and whether it returned
text, and the identifier's guess and its probability (``MultilingualWhisper.identify``). Writes
one JSON row per utterance and condition; ``choose.py`` replays the decision with other floors.

    PYTHONPATH=. python docs/experiments/noisy-line-language/collect.py --english benchmarks/data/intents_eval_2 \
        --voices flite-awb,flite-rms,flite-kal16,festival-slt-hts --babble-actor 9 --clips even --seed 1 --out dev.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.line_quality import assess
from audio_models.multilingual import MultilingualWhisper
from audio_models.training.corpora import ALL_CORPORA, held_out_speakers, list_corpora
from audio_models.training.language_id import CORPUS_LANGUAGE
from benchmarks.common import shipped_recogniser
from benchmarks.noisy_lines import SR, babble, mix, street
from router.policy import load_policy

CORPORA = Path(__file__).resolve().parents[4] / "shared" / "data"
CONDITIONS = [("clean", None, None)] + [(f"{kind} {snr} dB", kind, snr) for kind in ("babble", "street", "white")
                                        for snr in (0, 5, 10)]


def english(folder: Path, voices: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(id, 'en', wave) for the set's first four requests per intent in each voice, with line around them."""
    by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in csv.DictReader((folder / "sentences.csv").open()):
        by_intent[row["intent"]].append(row)
    out = []
    for rows in by_intent.values():
        for row in rows[:4]:
            for voice in voices:
                wave = load_audio(folder / f"{row['id']}-{voice}.wav")
                out.append((f"{row['id']}-{voice}", "en", np.concatenate(
                    [np.zeros(int(0.3 * SR), np.float32), wave, np.zeros(SR // 2, np.float32)])))
    return out


def other_languages(half: str) -> list[tuple[str, str, np.ndarray]]:
    """(clip key, language, wave) for four clips of every non-English held-out speaker (one half of eight)."""
    held = {s for speakers in held_out_speakers().values() for s in speakers}
    by_speaker: dict[str, list] = defaultdict(list)
    for clip in list_corpora(CORPORA, ALL_CORPORA):
        if clip.speaker in held and CORPUS_LANGUAGE[clip.corpus] != "en":
            by_speaker[clip.speaker].append(clip)
    rnd = random.Random(23)
    out = []
    for speaker in sorted(by_speaker):
        clips = sorted(by_speaker[speaker], key=lambda c: c.key)
        eight = rnd.sample(clips, min(8, len(clips)))
        for clip in eight[0::2] if half == "even" else eight[1::2]:
            wave = load_audio(clip.path)
            level = 0.05 / (np.sqrt(np.mean(wave**2)) + 1e-9)  # a caller's usual level
            out.append((clip.key, CORPUS_LANGUAGE[clip.corpus], (wave * level).astype(np.float32)))
    return out


def main() -> None:
    """Collect the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--english", type=Path, required=True)
    ap.add_argument("--voices", required=True)
    ap.add_argument("--babble-actor", type=int, required=True)
    ap.add_argument("--clips", choices=("even", "odd"), required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy()
    tiny = shipped_recogniser()
    model = MultilingualWhisper(languages=policy.languages.routes)
    rng = np.random.default_rng(args.seed)
    callers = english(args.english, args.voices.split(",")) + other_languages(args.clips)
    rows = []
    for name, kind, snr in CONDITIONS:
        for key, language, speech in callers:
            if kind is not None:
                noise = (babble(CORPORA, len(speech), first_actor=args.babble_actor) if kind == "babble"
                         else street(len(speech), rng) if kind == "street"
                         else rng.normal(size=len(speech)).astype(np.float32))
                speech = mix(speech, noise, snr)
            wave = telephone_round_trip(np.clip(speech, -1, 1))
            seg = tiny.transcribe(wave)
            guess = model.identify(wave)
            rows.append({"condition": name, "key": key, "language": language,
                         "snr_db": round(assess(wave).snr_db, 1), "tiny_text": bool(seg.text),
                         "tiny_confidence": seg.confidence, "guess": guess.code if guess else None,
                         "probability": guess.probability if guess else 0.0})
        print(name, len(rows), flush=True)
    args.out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
