"""Emotion model vs the librosa+SVM baseline, same speaker-independent split, telephone band.

Prints one JSON line: per-corpus accuracy/UAR/macro-F1 for the shipped model and
the baseline (trained on exactly the model's training speakers), cross-corpus
figures, and speed (load time, one 3 s utterance on 1 core, batch of 32 on 2).

    python -m benchmarks.emotion_benchmark --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from audio_models.backends import load_emotion_model
from audio_models.emotion import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL_DIR,
    EcapaEmotionModel,
    EmotionModel,
)
from audio_models.multilingual_head import WhisperHeadEmotionModel
from audio_models.training.corpora import list_corpora
from audio_models.training.evaluate import evaluate_model
from audio_models.training.metrics import affect_uar, classification_summary
from audio_models.whisper_head import FusedEmotionModel
from benchmarks.baseline_features import baseline_features, train_svm


def _speed(model: EmotionModel) -> dict[str, float]:
    rng = np.random.default_rng(0)
    one = (rng.standard_normal(48000) * 0.1).astype(np.float32)
    batch = [(rng.standard_normal(int(16000 * s)) * 0.1).astype(np.float32) for s in rng.uniform(1.5, 4.5, 32)]
    torch.set_num_threads(1)
    for _ in range(3):
        model.classify_batch([one])
    times = []
    for _ in range(30):
        t = time.perf_counter()
        model.classify_batch([one])
        times.append(time.perf_counter() - t)
    torch.set_num_threads(2)
    model.classify_batch(batch)
    btimes = []
    for _ in range(5):
        t = time.perf_counter()
        model.classify_batch(batch)
        btimes.append(time.perf_counter() - t)
    return {"one_3s_ms_1core_median": round(1000 * float(np.median(times)), 2),
            "batch32_ms_2cores_median": round(1000 * float(np.median(btimes)), 1)}


def _baseline(data: Path, model: EcapaEmotionModel | WhisperHeadEmotionModel, cache: Path) -> dict[str, object]:
    clips = list_corpora(data)
    feats = baseline_features(clips, cache)
    train_speakers = set(model.hparams["training"]["train_speakers"])  # type: ignore[index]
    tests = model.hparams["split"]["test_speakers"]  # type: ignore[index]
    train = [c for c in clips if c.speaker in train_speakers]
    svm = train_svm(np.stack([feats[c.key] for c in train]), [c.label for c in train])
    out: dict[str, object] = {}
    for corpus, speakers in tests.items():
        test = [c for c in clips if c.corpus == corpus and c.speaker in set(speakers)]
        if not test:  # TESS has no held-out speaker
            continue
        pred = svm.predict(np.stack([feats[c.key] for c in test]))
        out[corpus] = classification_summary([c.label for c in test], list(pred), model.labels)
    # The brief's reference: SVM on the other 20 RAVDESS actors only.
    held = set(tests.get("ravdess", []))
    rav_train = [c for c in clips if c.corpus == "ravdess" and c.speaker not in held]
    rav_test = [c for c in clips if c.speaker in held]
    svm20 = train_svm(np.stack([feats[c.key] for c in rav_train]), [c.label for c in rav_train])
    out["ravdess_svm_trained_on_20_ravdess_actors"] = classification_summary(
        [c.label for c in rav_test], list(svm20.predict(np.stack([feats[c.key] for c in rav_test]))), model.labels)
    # Cross-corpus for the baseline: RAVDESS -> TESS and TESS -> RAVDESS held-out actors.
    tess = [c for c in clips if c.corpus == "tess"]
    out["cross_ravdess_to_tess"] = classification_summary(
        [c.label for c in tess], list(svm20.predict(np.stack([feats[c.key] for c in tess]))), model.labels)
    svm_t = train_svm(np.stack([feats[c.key] for c in tess]), [c.label for c in tess])
    out["cross_tess_to_ravdess"] = classification_summary(
        [c.label for c in rav_test], list(svm_t.predict(np.stack([feats[c.key] for c in rav_test]))), model.labels)
    return out


def _add_affect(block: object, labels: tuple[str, ...]) -> None:
    """Add arousal/valence UAR to stored results (written before those figures existed)."""
    if not isinstance(block, dict):
        return
    if "confusion" in block and "arousal_uar" not in block:
        block.update(affect_uar(block["confusion"], labels))
    for value in block.values():
        _add_affect(value, labels)


def _uar(block: object) -> float | None:
    return block.get("uar") if isinstance(block, dict) else None  # type: ignore[return-value]


RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    """Run the benchmark and print its JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/benchmark"))
    ap.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                    help="whisper-head: model v3 (default; an ECAPA directory is then read as ecapa-whisper); "
                         "ecapa-whisper: the model's ECAPA-TDNN fused with its Whisper block-1 head; ecapa: the "
                         "ECAPA-TDNN alone")
    args = ap.parse_args()
    t = time.perf_counter()
    model = load_emotion_model(args.backend, args.model)
    load_s = time.perf_counter() - t
    # the baseline trains on the model's own training speakers and scores its held-out ones
    ecapa = model.ecapa if isinstance(model, FusedEmotionModel) else model
    ours = evaluate_model(model, args.data, telephone=True)  # type: ignore[arg-type]
    base = _baseline(args.data, ecapa, args.cache_dir)
    # the same recipe trained on one corpus, scored on the other (benchmarks/results/<model>/), per backend
    cross_file = RESULTS / args.model.name / "cross_corpus.json"
    cross = json.loads(cross_file.read_text()).get(args.backend, {}) if cross_file.exists() else {}
    _add_affect(cross, ecapa.labels)
    size_mb = sum(p.stat().st_size for p in args.model.iterdir()) / 1e6
    line = {
        "benchmark": "emotion", "model": model.name, "condition": "8 kHz mu-law round trip, held-out speakers",
        "ravdess_heldout_uar": _uar(ours.get("ravdess")),
        "baseline_librosa_svm_uar": _uar(base.get("ravdess")),
        "baseline_librosa_svm_20actors_uar": _uar(base["ravdess_svm_trained_on_20_ravdess_actors"]),
        "ours": ours, "baseline": base, "cross_corpus_ours": cross,
        "load_s": round(load_s, 3), "weights_mb": round(size_mb, 2), **_speed(model),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
