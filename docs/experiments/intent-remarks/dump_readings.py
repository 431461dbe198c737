"""Readings of plain emotional-speech clips as the live service's recogniser gives them, for offline intent checks.

Each clip goes through the 8 kHz mu-law line and the shipped recogniser behind language
identification (tiny.en for English, Whisper base transcribing and translating the rest), with
the shipped policy's next-best readings; the text and alternatives are kept in a JSON file so
that intent classifiers can be compared on exactly the same words. None of these sentences asks
for anything, so any intent read from them is a false one.

    python docs/experiments/intent-remarks/dump_readings.py --set dev --out readings-dev.json

``--set dev``: up to ``--per`` clips per corpus from speakers the emotion model trained on (not
the held-out speakers the live false-intent benchmark streams); ``--set judge``: the clips that
``benchmarks/live_false_intents.py --corpus C --calls N`` streams; ``--set fresh``: another
sample of dev's speakers holding none of dev's clips (written 2026-12-07 for the training-v3 try 3).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.training.corpora import held_out_speakers, list_corpora  # noqa: E402
from benchmarks.common import shipped_recogniser  # noqa: E402
from emoroute.services import with_languages  # noqa: E402
from router.policy import load_policy  # noqa: E402

CORPORA = ("ravdess", "tess", "savee", "nemo", "emovo", "eyase", "bangla", "aesdd", "ased")
JUDGE_CALLS = {"ravdess": 240, "nemo": 80, "emovo": 80}  # others: 60, as in the recorded runs


def clips_of(data: Path, corpus: str, which: str, per: int) -> list:
    """Return the clips of ``corpus`` in the chosen set (judge: held-out speakers; dev: a sample of the rest)."""
    held = set(held_out_speakers().get(corpus, ()))
    clips = sorted(list_corpora(data, (corpus,)), key=lambda c: c.key)
    if which == "judge":
        return [c for c in clips if c.speaker in held][:JUDGE_CALLS.get(corpus, 60)]
    others = [c for c in clips if c.speaker not in held]
    dev = sorted(random.Random(corpus).sample(others, min(per, len(others))), key=lambda c: c.key)
    if which == "dev":
        return dev
    rest = [c for c in others if c not in dev]  # fresh: another sample of the same speakers, none of dev's clips
    return sorted(random.Random(f"{corpus}-fresh").sample(rest, min(per, len(rest))), key=lambda c: c.key)


def main() -> None:
    """Transcribe every clip not yet in ``--out`` and write the readings."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--set", choices=("dev", "judge", "fresh"), default="dev")
    ap.add_argument("--per", type=int, default=60)
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    done: dict = json.loads(args.out.read_text()) if args.out.is_file() else {}
    engine = with_languages(shipped_recogniser(threads=2), load_policy())
    for corpus in args.corpora.split(","):
        if args.set == "judge" and corpus == "tess":
            continue  # TESS has no held-out speakers
        started = time.time()
        for clip in clips_of(args.data, corpus, args.set, args.per):
            key = clip.key
            if key in done:
                continue
            seg = engine.transcribe(telephone_round_trip(load_audio(clip.path)))
            done[key] = {"text": seg.text, "alternatives": list(seg.alternatives),
                         "language": getattr(seg, "language", ""), "speaker": clip.speaker}
        args.out.write_text(json.dumps(done, indent=0, ensure_ascii=False))
        print(corpus, f"{time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
