r"""Training features for language-id v2: every v1 training clip once more on a noisy line (issue #30 experiment).

The clips of ``audio_models.training.language_id.sample_clips`` (3,525: up to 24 per speaker of
the nine corpora), clip i mixed with babble (four RAVDESS actors 17-20 talking at once, a slice of
one long stream at a random offset), street noise or hiss in turn, at 0, 5, 10 or 15 dB (seed 5),
through the 8 kHz mu-law line; Whisper base's 99 language log-probabilities of the first 3 s, in
the cache format of ``language_id.extract`` (plus each row's noise). Then v2 is fitted by the shipped
fitter on the clean cache and this one together.

    PYTHONPATH=. python docs/experiments/language-id-noisy/noisy_features.py --data ../shared/data \
        --clean var/lid-features.npz --out var/lid-features-noisy.npz --model var/language-id-v2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import MultilingualWhisper
from audio_models.training.language_id import CORPUS_LANGUAGE, fit, sample_clips
from benchmarks.noisy_lines import babble, mix, street

KINDS = ("babble", "street", "white")
SNRS = (0, 5, 10, 15)


def noisy_line(wave: np.ndarray, kind: str, snr: float, talkers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``wave`` with ``kind`` of noise at ``snr`` dB, through the phone line."""
    if kind == "babble":
        start = int(rng.integers(0, len(talkers) - len(wave)))
        noise = talkers[start:start + len(wave)]
    else:
        noise = street(len(wave), rng) if kind == "street" else rng.normal(size=len(wave)).astype(np.float32)
    return telephone_round_trip(np.clip(mix(wave, noise, snr), -1, 1))


def main() -> None:
    """Extract the noisy cache (unless it exists), join it to the clean one and fit v2."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--clean", type=Path, required=True, help="v1's clean cache (language_id --cache)")
    ap.add_argument("--out", type=Path, required=True, help="the noisy cache to write")
    ap.add_argument("--model", type=Path, required=True, help="v2's model directory to write")
    args = ap.parse_args()
    if not args.out.exists():
        model = MultilingualWhisper(head_dir=None)
        rng = np.random.default_rng(5)
        talkers = babble(args.data, 16000 * 300, first_actor=17)
        rows, meta, t0 = [], [], time.time()
        clips = sample_clips(args.data)
        for i, clip in enumerate(clips):
            kind, snr = KINDS[i % 3], float(rng.choice(SNRS))
            scores = model.language_scores(noisy_line(load_audio(clip.path), kind, snr, talkers, rng))
            rows.append([scores[code] for code in model.whisper_languages])
            meta.append((clip.corpus, CORPUS_LANGUAGE[clip.corpus], clip.speaker, clip.key, f"{kind} {snr:g} dB"))
            if i % 500 == 0:
                print(f"{i}/{len(clips)} clips, {time.time() - t0:.0f} s", flush=True)
        np.savez(args.out, logp=np.log(np.asarray(rows, dtype=np.float64) + 1e-9).astype(np.float32),
                 languages=np.array(model.whisper_languages), meta=np.array(meta))
    clean, noisy = np.load(args.clean), np.load(args.out)
    assert [str(s) for s in clean["languages"]] == [str(s) for s in noisy["languages"]]
    both = args.out.with_name(args.out.stem + "-and-clean.npz")
    np.savez(both, logp=np.concatenate([clean["logp"], noisy["logp"]]), languages=clean["languages"],
             meta=np.concatenate([clean["meta"], noisy["meta"][:, :4]]))
    print(json.dumps(fit(both, args.model)))


if __name__ == "__main__":
    main()
