"""Choose the ecapa-whisper settings on validation speakers only, then score the test corpora.

For one ECAPA model directory, the Whisper encoder block the head reads (0-4), the head's C and
ECAPA's weight in the average are chosen by UAR on the model's *validation* speakers (RAVDESS
actors 19 and 20, never trained on), and only then is each test corpus scored with the chosen
triple. Trained on RAVDESS alone, the validation speakers share no corpus with TESS, so the
RAVDESS→TESS figure is free of selection on TESS. The weight grid keeps ECAPA in (0.25-0.75):
the backend is a fusion, not the Whisper head alone. Every grid point's test UAR is printed too,
for the record; nothing is chosen from those.

``--noise`` scores each validation grid point by its mean UAR over clean audio, white noise and
babble at 10 dB (mixed before the phone line, as ``evaluate-emotion --noise`` does), instead of
clean audio alone: how the default model's head was chosen (``--blocks 1``, for an ECAPA-TDNN
that reads block 1 itself). The test corpora are still scored clean.

    python -m benchmarks.fusion_selection --data ../shared/data --model-dir var/cross-ravdess-only
    python -m benchmarks.fusion_selection --data ../shared/data --model-dir var/wecapa-ravdess-only --blocks 1 --noise
"""

from __future__ import annotations

import json

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.emotion import EcapaEmotionModel, prepare_waveform
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import Clip, babble_clips, list_corpora
from audio_models.training.evaluate import NoiseMixer
from audio_models.training.metrics import classification_summary
from audio_models.training.whisper_head import BLOCKS, block_embedder, clip_embeddings, fit_head
from audio_models.whisper_encoder import WhisperLayerEmbedder
from benchmarks.common import model_dir_parser

BLOCK_GRID = tuple(range(BLOCKS + 1))
C_GRID = (0.01, 0.1, 1.0)
WEIGHT_GRID = (0.25, 0.5, 0.75)


def _posteriors(ecapa: EcapaEmotionModel, embedder: WhisperLayerEmbedder, clips: list[Clip],
                mixer: NoiseMixer | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    raw = [load_audio(c.path) for c in clips]
    waves = [prepare_waveform(telephone_round_trip(mixer(w) if mixer else w)) for w in raw]
    p_ecapa = np.array([[r.probs[k] for k in ecapa.labels] for b in range(0, len(waves), 32)
                        for r in ecapa.classify_batch(waves[b:b + 32])])
    emb = np.concatenate([embedder.embed_batch(waves[b:b + 32], all_blocks=True) for b in range(0, len(waves), 32)])
    return p_ecapa, emb, [c.label for c in clips]


def main() -> None:
    """Print one JSON line: the validation grid, the chosen pair and the test scores."""
    ap = model_dir_parser(__doc__, ".cache/whisper-embeddings")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--blocks", type=lambda v: tuple(int(b) for b in v.split(",")), default=BLOCK_GRID,
                    help="comma list of encoder blocks to choose from (default: 0-4)")
    ap.add_argument("--noise", action="store_true",
                    help="choose by the mean validation UAR over clean, white and babble at 10 dB")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ecapa = EcapaEmotionModel.from_dir(args.model_dir)
    labels = ecapa.labels
    clips = [c for c in list_corpora(args.data) if c.label in labels]
    train_speakers = set(ecapa.hparams["training"]["train_speakers"])
    val_speakers = set(ecapa.hparams["split"]["val_speakers"])
    train = [c for c in clips if c.speaker in train_speakers]
    embedder = block_embedder()
    x, owner = clip_embeddings(train, embedder, args.cache_dir, 1, args.seed)
    y = [train[i].label for i in owner]
    heads = {(b, c): fit_head(x[:, b], y, labels, block=b, c=c) for b in args.blocks for c in C_GRID}
    points = [(b, c, w) for b in args.blocks for c in C_GRID for w in WEIGHT_GRID]

    def uar(p_ecapa: np.ndarray, emb: np.ndarray, truth: list[str], b: int, c: float, w: float) -> float:
        fused = w * p_ecapa + (1 - w) * heads[b, c].probs(emb[:, b])
        return float(classification_summary(truth, [labels[i] for i in fused.argmax(axis=1)], labels)["uar"])

    def key(b: int, c: float, w: float) -> str:
        return f"block={b},C={c},w={w}"

    val_clips = [c for c in clips if c.speaker in val_speakers]
    conditions = [None]
    if args.noise:  # babble voices from outside the training speakers' half, as in evaluation
        pool = babble_clips(list_corpora(args.data), sorted(train_speakers), "evaluation")
        conditions += [NoiseMixer("white", 10.0, pool), NoiseMixer("babble", 10.0, pool)]
    vals = [_posteriors(ecapa, embedder, val_clips, mixer) for mixer in conditions]
    grid = {key(*p): round(float(np.mean([uar(*val, *p) for val in vals])), 4) for p in points}
    # ties go to the cheaper, then the middle choice: fewer blocks, C 0.1, the weight 0.5
    best = max(points, key=lambda p: (grid[key(*p)], -p[0], p[1] == 0.1, p[2] == 0.5))
    tests = {}
    for corpus, speakers in ecapa.hparams["split"]["test_speakers"].items():
        scored = _posteriors(ecapa, embedder, [c for c in clips if c.corpus == corpus and c.speaker in set(speakers)])
        p_ecapa, _, truth = scored
        tests[corpus] = {"chosen": round(uar(*scored, *best), 4),
                         "ecapa_alone": float(classification_summary(
                             truth, [labels[i] for i in p_ecapa.argmax(axis=1)], labels)["uar"]),
                         # every grid point, for the record only (nothing is chosen from these)
                         "grid": {key(*p): round(uar(*scored, *p), 4) for p in points}}
    print(json.dumps({"benchmark": "fusion_selection", "model_dir": str(args.model_dir),
                      "val_speakers": sorted(val_speakers),
                      "validation_score": "mean of clean, white 10 dB, babble 10 dB" if args.noise else "clean",
                      "validation_uar": grid,
                      "chosen": dict(zip(("block", "C", "ecapa_weight"), best, strict=True)),
                      "test_uar": tests}))


if __name__ == "__main__":
    main()
