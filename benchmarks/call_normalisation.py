"""Per-speaker and per-call normalisation of emotion features, measured honestly.

Issue #2 suggests per-speaker normalisation for unseen speakers and corpora, and notes that a
live call is one speaker, so per-call *running* normalisation is available. This measures what
each buys, per clip, through the 8 kHz mu-law round trip, for the training/test split of one
ECAPA model directory, on two feature sets: the model's 128-d ECAPA embedding (with a logistic
regression) and the librosa statistics baseline (with its RBF SVM).

- ``own_head``: the ECAPA model as trained (per-utterance CMN only): the fair figure.
- ``raw``: the classifier fitted on the training speakers' features as they are.
- ``speaker_z``: the classifier fitted on features z-normalised per training speaker (over all of
  that speaker's clips), then scored with the test features normalised three ways:
  - ``oracle``: over all of the test speaker's clips, balanced across emotions. This uses
    statistics a live call never has; report it only as speaker-normalised (oracle).
  - ``call_single_state``: simulated calls of ``--call-length`` utterances from one speaker in one
    emotion (what a call mostly is); each utterance is normalised with the running statistics of
    the call so far (itself included), shrunk towards the training speakers' average statistics
    with a prior weight of ``n0`` utterances.
  - ``call_escalating``: the same, but the first half of each call is the speaker's neutral speech
    and the second half the call's emotion (a caller who becomes angry, happy or sad).

Calls are shuffled with ``--repeats`` seeds and the UAR averaged over them. Every n0 is reported;
nothing is chosen on the test rows.

    python -m benchmarks.call_normalisation --data ../shared/data --model-dir var/cross-ravdess-only
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audio_models.audio_io import load_audio
from audio_models.emotion import EcapaEmotionModel, prepare_waveform
from audio_models.g711 import telephone_round_trip
from audio_models.nets import EmotionNet
from audio_models.training.corpora import Clip, list_corpora
from audio_models.training.metrics import classification_summary
from benchmarks.baseline_features import baseline_features, train_svm
from benchmarks.common import model_dir_parser

PRIOR_WEIGHTS = (2, 8, 32)


class Predictor(Protocol):
    """A fitted classifier."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return one label per row."""


@dataclass
class Context:
    """The clips of one run: labels, speakers, which rows train and which rows test each corpus."""

    clips: list[Clip]
    labels: list[str]
    truth: np.ndarray
    speakers: np.ndarray
    train: np.ndarray
    test_rows: dict[str, np.ndarray]


def embed_clips(model: EcapaEmotionModel, clips: list[Clip], cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (embeddings, own logits) for each clip heard through the phone line; cached on disk."""
    digest = hashlib.sha256((model.source / "model.ckpt").read_bytes()).hexdigest()[:16]
    keyed = hashlib.sha256("\n".join(c.key for c in clips).encode()).hexdigest()[:16]
    cache = cache_dir / f"{digest}-{keyed}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return stored["emb"], stored["logits"]
    net = cast(EmotionNet, model.net)
    embs, logits = [], []
    with torch.inference_mode():
        for clip in clips:
            wave = torch.from_numpy(prepare_waveform(telephone_round_trip(load_audio(clip.path))))[None]
            lens = torch.ones(1)
            emb = net.embed_features(net.features(wave), lens)
            embs.append(emb[0].numpy())
            logits.append(net.head(emb)[0].numpy())
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, emb=np.stack(embs), logits=np.stack(logits))
    return np.stack(embs), np.stack(logits)


def speaker_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and standard deviation (floored) of the rows of ``x``."""
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-3)


def simulate_calls(clips: list[Clip], rows: list[int], length: int, escalating: bool,
                   rng: np.random.Generator) -> list[list[int]]:
    """Return calls as lists of row indices: one speaker each, one emotion (or neutral first)."""
    by_key: dict[tuple[str, str], list[int]] = {}
    for i in rows:
        by_key.setdefault((clips[i].speaker, clips[i].label), []).append(i)
    calls = []
    for (speaker, label), members in sorted(by_key.items()):
        order = list(rng.permutation(members))
        if not escalating or label == "neutral":
            calls += [order[k:k + length] for k in range(0, len(order), length)]
            continue
        neutral = list(rng.permutation(by_key.get((speaker, "neutral"), [])))
        half = length // 2
        for n, k in enumerate(range(0, len(order), length - half)):
            opening = [neutral[(n * half + j) % len(neutral)] for j in range(half)] if neutral else []
            calls.append(opening + order[k:k + length - half])
    return calls


def running_normalise(x: np.ndarray, call: list[int], prior_mean: np.ndarray, prior_var: np.ndarray,
                      n0: int) -> np.ndarray:
    """Normalise each utterance of a call by the call's statistics so far, shrunk to the prior."""
    out = []
    for t in range(1, len(call) + 1):
        seen = x[call[:t]]
        mean = (n0 * prior_mean + seen.sum(axis=0)) / (n0 + t)
        var = (n0 * (prior_var + prior_mean**2) + (seen**2).sum(axis=0)) / (n0 + t) - mean**2
        out.append((x[call[t - 1]] - mean) / np.sqrt(np.maximum(var, 1e-6)))
    return np.stack(out)


def normalisation_table(x: np.ndarray, ctx: Context, fit: Callable[[np.ndarray, np.ndarray], Predictor],
                        own: np.ndarray | None, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Return UAR per test corpus for one feature set under each normalisation."""
    truth, speakers, train = ctx.truth, ctx.speakers, ctx.train
    # per-training-speaker z-normalisation, and the average statistics a call starts from
    z = np.zeros_like(x)
    means, variances = [], []
    for spk in sorted(set(speakers[train])):
        rows = speakers == spk
        mean, std = speaker_stats(x[rows])
        z[rows] = (x[rows] - mean) / std
        means.append(mean)
        variances.append(std**2)
    prior_mean, prior_var = np.mean(means, axis=0), np.mean(variances, axis=0)
    raw_head, z_head = fit(x[train], truth[train]), fit(z[train], truth[train])

    def uar(pred: np.ndarray, rows: np.ndarray) -> float:
        summary = classification_summary(list(truth[rows]), list(pred), ctx.labels)
        return round(float(summary["uar"]), 4)  # type: ignore[arg-type]

    results: dict[str, dict[str, float]] = {}
    for corpus, rows in ctx.test_rows.items():
        oracle = np.zeros((len(rows), x.shape[1]))
        for spk in sorted(set(speakers[rows])):
            mine = speakers[rows] == spk
            mean, std = speaker_stats(x[rows][mine])
            oracle[mine] = (x[rows][mine] - mean) / std
        entry = {"n": len(rows), "raw": uar(raw_head.predict(x[rows]), rows),
                 "speaker_z_oracle": uar(z_head.predict(oracle), rows)}
        if own is not None:
            entry["own_head"] = uar(own[rows], rows)
        for kind in ("single_state", "escalating"):
            scores: dict[int, list[float]] = {n0: [] for n0 in PRIOR_WEIGHTS}
            plain = []
            for seed in range(args.repeats):
                calls = simulate_calls(ctx.clips, list(rows), args.call_length, kind == "escalating",
                                       np.random.default_rng(seed))
                order = np.array([i for call in calls for i in call])
                plain.append(uar(raw_head.predict(x[order]), order))
                for n0 in PRIOR_WEIGHTS:
                    normed = np.concatenate([running_normalise(x, call, prior_mean, prior_var, n0) for call in calls])
                    scores[n0].append(uar(z_head.predict(normed), order))
            # escalating calls repeat neutral utterances, so the raw figure is given on the same calls
            entry[f"raw_on_{kind}_calls"] = round(float(np.mean(plain)), 4)
            for n0 in PRIOR_WEIGHTS:
                entry[f"speaker_z_call_{kind}_n0={n0}"] = round(float(np.mean(scores[n0])), 4)
        results[corpus] = entry
    return results


def main() -> None:
    """Print one JSON line: UAR per test corpus for each feature set and normalisation."""
    ap = model_dir_parser(__doc__, ".cache/call-normalisation")
    ap.add_argument("--call-length", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = EcapaEmotionModel.from_dir(args.model_dir)
    labels = list(model.labels)
    train_speakers = set(model.hparams["training"]["train_speakers"])
    tests = {corpus: set(spk) - train_speakers for corpus, spk in model.hparams["split"]["test_speakers"].items()}
    clips = [c for c in list_corpora(args.data) if c.label in labels and
             (c.speaker in train_speakers or any(c.speaker in s for s in tests.values()))]
    speakers = np.array([c.speaker for c in clips])
    ctx = Context(clips, labels, np.array([c.label for c in clips]), speakers,
                  np.isin(speakers, sorted(train_speakers)),
                  {corpus: np.where(np.isin(speakers, sorted(spk)))[0] for corpus, spk in tests.items() if spk})
    emb, logits = embed_clips(model, clips, args.cache_dir)
    feats = baseline_features(clips, args.cache_dir)
    baseline = np.stack([feats[c.key] for c in clips])

    def logistic(x: np.ndarray, y: np.ndarray) -> Predictor:
        # C fixed beforehand; the scaler makes raw and normalised inputs comparable
        head = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")
        return make_pipeline(StandardScaler(), head).fit(x, y)  # type: ignore[no-any-return]

    def svm(x: np.ndarray, y: np.ndarray) -> Predictor:
        return train_svm(x, list(y))  # type: ignore[no-any-return]

    own = np.array(labels)[logits.argmax(axis=1)]

    print(json.dumps({
        "benchmark": "call_normalisation", "model_dir": str(args.model_dir), "call_length": args.call_length,
        "repeats": args.repeats, "prior_weights": list(PRIOR_WEIGHTS),
        "test_uar": {
            "ecapa_embedding_logistic": normalisation_table(emb, ctx, logistic, own, args),
            "librosa_stats_svm": normalisation_table(baseline, ctx, svm, None, args),
        }}))


if __name__ == "__main__":
    main()
