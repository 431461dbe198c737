"""Score an emotion model on whole corpora it never heard: every speaker, per clip, phone band.

The figure that predicts an outside check on another corpus or language: a model directory's
fused backend (ECAPA-TDNN with its Whisper head, as the service loads it) on every clip of the
four classes of each named corpus, through the 8 kHz mu-law line, trimmed, no statistics from
any speaker. The script refuses a corpus any of whose speakers the model was trained on
(``hparams.yaml``'s training speakers), so the figure is always one of unseen speech.
Prints one JSON line: UAR, angry heard as happy, sad recall and the confusion, per corpus.

    python -m benchmarks.unseen_corpora --data ../shared/data --corpora nemo,ased
    python -m benchmarks.unseen_corpora --data ../shared/data --corpora ased --model-dir var/emotion-v2-loco-ased
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.emotion import FUSED_MODEL_DIR
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import LABELS, list_corpora
from audio_models.training.metrics import classification_summary
from audio_models.whisper_head import FusedEmotionModel


def main() -> None:
    """Print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model-dir", type=Path, default=FUSED_MODEL_DIR)
    ap.add_argument("--corpora", default="nemo,ased", help="comma list of corpora the model never heard")
    args = ap.parse_args()
    model = FusedEmotionModel.from_dir(args.model_dir)
    trained = set(model.hparams["training"].get("train_speakers") or [])
    trained_corpora = set(model.hparams["training"].get("train_corpora") or ("ravdess", "tess"))
    out: dict[str, object] = {"benchmark": "unseen_corpora", "model": model.name, "model_dir": str(args.model_dir),
                              "trained_on": sorted(trained_corpora), "corpora": {}}
    for corpus in args.corpora.split(","):
        clips = [c for c in list_corpora(args.data, (corpus,)) if c.label in LABELS]
        if corpus in trained_corpora or trained & {c.speaker for c in clips}:
            raise SystemExit(f"{args.model_dir} was trained on {corpus} speakers: not an unseen corpus")
        started = time.time()
        probs: list[dict[str, float]] = []
        for b in range(0, len(clips), 32):
            waves = [telephone_round_trip(load_audio(c.path)) for c in clips[b:b + 32]]
            probs += [r.probs for r in model.classify_batch(waves)]
        preds = [max(p, key=lambda k: p[k]) for p in probs]
        summary = classification_summary([c.label for c in clips], preds, LABELS)
        m = np.asarray(summary["confusion"])
        out["corpora"][corpus] = {  # type: ignore[index]
            "speakers": len({c.speaker for c in clips}), "uar": summary["uar"],
            "angry_as_happy": round(float(m[0, 1] / max(m[0].sum(), 1)), 4),
            "sad_recall": round(float(m[3, 3] / max(m[3].sum(), 1)), 4),
            "seconds": round(time.time() - started, 1), **summary}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
