"""The line estimate on clean and noisy clips of the nine corpora: where the tone floor can sit.

30 clips of each corpus, clean and with four continuous talkers (RAVDESS actors) at 0, 5 and 10 dB
and with hiss at 5 dB, through the 8 kHz mu-law line; prints the 5th, 50th and 95th percentile of
``audio_models.line_quality.assess``'s speech-to-background estimate per corpus and condition.

    python docs/experiments/noisy-lines/snr_floor.py ../shared/data
"""

import glob
import random
import sys

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.line_quality import assess
from benchmarks.noisy_lines import mix

CORPORA = {"ravdess": "*/*.flac", "tess": "*/*.flac", "savee": "*/*.ogg", "nemo": "*/*.ogg", "ased": "*/*.ogg",
           "bangla": "*/*.ogg", "eyase": "*/*.ogg", "emovo": "*/*.ogg", "aesdd": "*/*.ogg"}


def trim(x: np.ndarray) -> np.ndarray:
    """Return the clip's speech frames only."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    power = (frames**2).mean(1)
    return frames[power > power.max() * 1e-3].ravel()


def main() -> None:
    """Print the percentiles."""
    root = sys.argv[1]
    rnd = random.Random(0)
    pool = sorted(glob.glob(f"{root}/ravdess/*/*.flac"))

    def talker(n: int) -> np.ndarray:
        out: list[np.ndarray] = []
        while sum(map(len, out)) < n:
            out.append(trim(load_audio(rnd.choice(pool))))
        x = np.concatenate(out)[:n]
        return x / (np.sqrt((x**2).mean()) + 1e-9)

    for corpus, pattern in CORPORA.items():
        files = rnd.sample(sorted(glob.glob(f"{root}/{corpus}/{pattern}")), 30)
        values: dict[str, list[float]] = {"clean": [], "babble0": [], "babble5": [], "babble10": [], "white5": []}
        for f in files:
            s = load_audio(f)
            bab = sum(talker(len(s)) for _ in range(4))
            values["clean"].append(assess(telephone_round_trip(s)).snr_db)
            for snr in (0, 5, 10):
                values[f"babble{snr}"].append(assess(telephone_round_trip(mix(s, bab, snr))).snr_db)
            hiss = np.random.default_rng(1).normal(size=s.shape)
            values["white5"].append(assess(telephone_round_trip(mix(s, hiss, 5))).snr_db)
        print(corpus, " ".join(f"{k}: p5 {np.percentile(v, 5):.0f} p50 {np.median(v):.0f} "
                               f"p95 {np.percentile(v, 95):.0f}" for k, v in values.items()))


if __name__ == "__main__":
    main()
