"""Which languages a live first utterance ranks after the one it chose (issue #30 experiment).

Real speakers of the six other languages (the held-out speakers of the nine corpora, four clips
each, ``--clips even`` or ``odd`` of noisy-line-language/collect.py's fixed shuffle), clean and
under babble (four RAVDESS actors from ``--babble-actor``), street noise and hiss at 0 / 5 / 10 dB,
through the 8 kHz mu-law line, decided as the live first utterance is (tiny.en first, then the
identifier at the shipped ``min_probability``). One JSON row per clip and condition: the true
language, the language taken (``en``: not switched) and the identifier's ranking.

    PYTHONPATH=. python docs/experiments/language-check-offers/collect.py --clips even --babble-actor 9 \
        --seed 1 --out docs/experiments/language-check-offers/dev.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import load_multilingual
from benchmarks.common import shipped_recogniser
from benchmarks.noisy_lines import babble, mix, street
from router.policy import load_policy

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("nll_collect", HERE.parent / "noisy-line-language" / "collect.py")
assert _spec is not None and _spec.loader is not None
nll = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nll)


def main() -> None:
    """Collect the rows."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", choices=("even", "odd"), required=True)
    ap.add_argument("--babble-actor", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rules = load_policy().languages
    live = load_multilingual(shipped_recogniser(), rules.routes, min_probability=rules.min_probability)
    rng = np.random.default_rng(args.seed)
    callers = nll.other_languages(args.clips)
    rows = []
    for name, kind, snr in nll.CONDITIONS:
        for key, language, speech in callers:
            if kind is not None:
                noise = (babble(nll.CORPORA, len(speech), first_actor=args.babble_actor) if kind == "babble"
                         else street(len(speech), rng) if kind == "street"
                         else rng.normal(size=len(speech)).astype(np.float32))
                speech = mix(speech, noise, snr)
            wave = telephone_round_trip(np.clip(speech, -1, 1))
            guess, _ = live.first_utterance(wave)
            rows.append({"condition": name, "key": key, "language": language,
                         "taken": guess.code if guess else "en", "probability": guess.probability if guess else 0.0,
                         "ranking": [c for c, _ in guess.top] if guess else []})
        print(name, len(rows), flush=True)
    args.out.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
