"""The shipped default (and any model directory) on the five corpora it never heard, per clip, phone band.

The comparison the v3 rule names for the default (../2026-12-06-emotion-v3-rule.md): UAR, angry heard
as happy and sad recall on every 4-class clip of BanglaSER, EYASE, EMOVO, SAVEE and AESDD, heard as
the feature tables hear them (8 kHz mu-law round trip, trimmed). One JSON line.

    python docs/experiments/emotion-v3/default_on_new.py --data ../shared/data [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from audio_models.backends import load_emotion_model  # noqa: E402
from audio_models.emotion_types import FUSED_MODEL_DIR  # noqa: E402
from audio_models.training.corpora import LABELS, NEW_CORPORA, list_corpora  # noqa: E402
from audio_models.training.feature_tables import caller_wave  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loco_heads import scored  # noqa: E402


def main() -> None:
    """Classify every clip, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=FUSED_MODEL_DIR)
    ap.add_argument("--backend", default="ecapa-whisper")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_emotion_model(args.backend, args.model)
    out = {}
    for corpus in NEW_CORPORA:
        clips = list_corpora(args.data, (corpus,))
        probs = []
        for i in range(0, len(clips), 16):
            for r in model.classify_batch([caller_wave(c) for c in clips[i:i + 16]]):
                probs.append([r.probs[lab] for lab in LABELS])
        out[corpus] = scored([c.label for c in clips], np.array(probs))
    print(json.dumps({"model": str(args.model), "mean_uar": round(float(np.mean([v["uar"] for v in out.values()])), 4),
                      "per_corpus": out}))


if __name__ == "__main__":
    main()
