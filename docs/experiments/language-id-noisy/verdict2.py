r"""Second verdict for language-id v2 against v1: callers as the live first utterance decides (issue #30).

Fresh populations (none read when v2 was first judged): up to eight clips of every held-out
speaker of the nine corpora that ``benchmarks.language_id``'s sample did not take, and the intent
evaluation's sets 2 and 3 (their first four requests per intent) in the six natural English
voices; clean and under babble (RAVDESS actors 5-8) at 5 and 10 dB, street noise and hiss at 5 dB
(seed 13), through the 8 kHz line. Each utterance is decided as ``LanguageAwareTranscriber``
decides a first utterance, with the policy's languages as candidates: English when tiny.en is at
least 0.5 sure of a transcript, else the head's guess when at least 0.6 sure, else English as
unsure as the guess was sure; the listener keeps a language only at 0.6 or more. tiny.en and
Whisper base's language probabilities are computed once per utterance and read by both heads.

    PYTHONPATH=. python docs/experiments/language-id-noisy/verdict2.py --data ../shared/data \
        --v2 var/language-id-v2 > docs/experiments/language-id-noisy/verdict2.json
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
from noisy_features import noisy_line  # beside this script: the training lines' noise, drawn the same way

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import (
    DEFAULT_LANGUAGE_MODEL,
    LANGUAGE_HEAD_FILE,
    LanguageGuess,
    LanguageHead,
    MultilingualWhisper,
)
from audio_models.training.language_id import CORPUS_LANGUAGE
from benchmarks.common import shipped_recogniser
from benchmarks.language_id import held_out_clips, held_out_sample
from benchmarks.noisy_lines import SR, babble
from router.policy import load_policy

REPO = Path(__file__).resolve().parents[3]
CONDITIONS = [("clean", None, None), ("babble 5 dB", "babble", 5), ("babble 10 dB", "babble", 10),
              ("street 5 dB", "street", 5), ("white 5 dB", "white", 5)]
VOICES = ("flite-awb", "flite-rms", "flite-slt", "flite-kal16", "festival-slt-hts", "piper-joe")


def fresh_held_out(root: Path) -> list[tuple[str, np.ndarray]]:
    """(language, speech) for up to eight clips per held-out speaker outside language_id's sample."""
    rnd, fresh = random.Random(11), random.Random(31)
    out = []
    for clips in held_out_clips(root).values():
        taken = {c.key for c in held_out_sample(clips, rnd)}  # language_id's, drawn in its order
        rest = [c for c in clips if c.key not in taken]
        for clip in fresh.sample(rest, min(8, len(rest))):
            wave = load_audio(clip.path)
            out.append((CORPUS_LANGUAGE[clip.corpus], (wave * 0.05 / (np.sqrt(np.mean(wave**2)) + 1e-9)).astype(
                np.float32)))
    return out


def english() -> list[tuple[str, np.ndarray]]:
    """("en", speech) for sets 2 and 3's first four requests per intent in the six natural voices."""
    out = []
    for folder in ("intents_eval_2", "intents_eval_3"):
        data = REPO / "benchmarks" / "data" / folder
        by_intent: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in csv.DictReader((data / "sentences.csv").open()):
            by_intent[row["intent"]].append(row)
        for rows in by_intent.values():
            for row in rows[:4]:
                for voice in VOICES:
                    wave = load_audio(data / f"{row['id']}-{voice}.wav")
                    out.append(("en", np.concatenate([np.zeros(int(0.3 * SR), np.float32), wave,
                                                      np.zeros(SR // 2, np.float32)])))
    return out


def decided(text: bool, confidence: float, guess: LanguageGuess | None, floor: float) -> str:
    """The language a first utterance is kept as ('' = none yet), as the live path decides."""
    if text and confidence >= 0.5:
        return "en" if confidence >= floor else ""
    if guess is None:
        return ""
    if guess.code == "en" or guess.probability >= floor:
        return guess.code if guess.probability >= floor else ""
    return "en" if 1.0 - guess.probability >= floor else ""


def main() -> None:
    """Decide every utterance with both heads; print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--v2", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy()
    floor = policy.languages.min_probability
    heads = {"v1": LanguageHead.load(DEFAULT_LANGUAGE_MODEL / LANGUAGE_HEAD_FILE),
             "v2": LanguageHead.load(args.v2 / LANGUAGE_HEAD_FILE)}
    model = MultilingualWhisper(languages=policy.languages.routes, head_dir=None)
    tiny = shipped_recogniser()
    rng = np.random.default_rng(13)
    talkers = babble(args.data, SR * 120)
    callers = fresh_held_out(args.data) + english()
    out: dict[str, dict[str, object]] = {}
    for name, kind, snr in CONDITIONS:
        kept: dict[str, dict[str, list[bool]]] = {h: defaultdict(list) for h in heads}
        for language, speech in callers:
            wave = (noisy_line(speech, kind, snr, talkers, rng) if kind is not None
                    else telephone_round_trip(np.clip(speech, -1, 1)))
            seg = tiny.transcribe(wave)
            scores = model.language_scores(wave)
            for h, head in heads.items():
                got = decided(bool(seg.text), seg.confidence, head.choose(scores, model.languages), floor)
                if language == "en":
                    kept[h]["english_switched"].append(got not in ("", "en"))
                else:
                    kept[h][language].append(got == language)
        out[name] = {}
        for h in heads:
            per = {k: round(float(np.mean(v)), 3) for k, v in sorted(kept[h].items()) if k != "english_switched"}
            out[name][h] = {"held_out_kept_right": per, "mean": round(float(np.mean(list(per.values()))), 3),
                            "english_switched": int(np.sum(kept[h]["english_switched"])),
                            "english_calls": len(kept[h]["english_switched"])}
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps({"experiment": "language-id-noisy verdict 2", "conditions": out}))


if __name__ == "__main__":
    main()
