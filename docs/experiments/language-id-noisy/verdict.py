r"""Verdict for language-id v2 against v1, clean and on noisy lines (issue #30 experiment).

The populations of ``benchmarks.language_id`` (held-out speakers of the nine corpora, up to 24
clips each, and the intent evaluation's English requests in six natural voices), clean and under
babble (RAVDESS actors 5-8, the benchmark's), street noise and hiss at 0, 5 and 10 dB (seed 9),
mixed into the clips already through the 8 kHz line and put through it again. Whisper base's 99
language probabilities are computed once per clip and condition and read by both heads among
the seven languages (as ``MultilingualWhisper.identify`` does): held-out speakers identified,
per language and mean; English voices taken for another language at P >= 0.6 (the policy's
floor). Prints one JSON line.

    PYTHONPATH=. python docs/experiments/language-id-noisy/verdict.py --data ../shared/data \
        --v2 var/language-id-v2 > docs/experiments/language-id-noisy/verdict.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from noisy_features import noisy_line  # beside this script: the training lines' noise, drawn the same way

from audio_models.multilingual import DEFAULT_LANGUAGE_MODEL, LANGUAGE_HEAD_FILE, LanguageHead, MultilingualWhisper
from benchmarks.language_id import SEVEN, english_natural_waves, held_out_waves
from benchmarks.noisy_lines import babble
from router.policy import load_policy

CONDITIONS = [("clean", None, None)] + [(f"{kind} {snr} dB", kind, snr) for kind in ("babble", "street", "white")
                                        for snr in (0, 5, 10)]


def main() -> None:
    """Score both heads on every population and condition; print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--v2", type=Path, required=True, help="the candidate's model directory")
    args = ap.parse_args()
    heads = {"v1": LanguageHead.load(DEFAULT_LANGUAGE_MODEL / LANGUAGE_HEAD_FILE),
             "v2": LanguageHead.load(args.v2 / LANGUAGE_HEAD_FILE)}
    floor = load_policy().languages.min_probability
    model = MultilingualWhisper(head_dir=None)
    rng = np.random.default_rng(9)
    talkers = babble(args.data, 16000 * 120)  # actors 5-8
    populations = {"held_out": held_out_waves(args.data), "english": english_natural_waves()}
    out: dict[str, dict[str, object]] = {}
    for name, kind, snr in CONDITIONS:
        hits: dict[str, dict[str, list[bool]]] = {h: defaultdict(list) for h in heads}
        switched: dict[str, list[bool]] = {h: [] for h in heads}
        for population, waves in populations.items():
            for language, wave in waves:
                if kind is not None:
                    wave = noisy_line(wave, kind, snr, talkers, rng)
                scores = model.language_scores(wave)
                for h, head in heads.items():
                    guess = head.choose(scores, SEVEN)
                    if population == "held_out":
                        hits[h][language].append(guess.code == language)
                    else:
                        switched[h].append(guess.code != "en" and guess.probability >= floor)
        out[name] = {}
        for h in heads:
            per = {lang: round(float(np.mean(v)), 3) for lang, v in sorted(hits[h].items())}
            out[name][h] = {"held_out": per, "held_out_mean": round(float(np.mean(list(per.values()))), 3),
                            "english_switched": int(np.sum(switched[h])), "english_calls": len(switched[h])}
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps({"experiment": "language-id-noisy verdict", "conditions": out}))


if __name__ == "__main__":
    main()
