"""Training emotion model v3 (backend ``whisper-head``): a linear head on the nine corpora's feature tables.

The head is standardised, class-balanced and corpus-balanced multinomial logistic regression
(each corpus weighs the same, whatever its size) on a recipe's features: the mean hidden state of
named encoder blocks of Whisper tiny.en or multilingual base, optionally with the prosody
statistics (``audio_models.training.feature_tables``). It is fitted on every corpus's training
speakers (the held-out speakers of ``corpora.held_out_speakers`` never), or on all corpora but one
(``leave_out``: the leave-one-corpus-out models that judge it). The recipe and the temperature were
chosen on corpora the head never heard (docs/experiments/2026-12-06-emotion-v3-rule.md).

    emoroute train-emotion-v3 --data ../shared/data --out audio_models/models/emotion-v3-nine-corpora
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from audio_models.calibration import CALIBRATION_FILE, LOG_FLOOR
from audio_models.multilingual_head import HEAD_FILE, BlockHead
from audio_models.training.corpora import ALL_CORPORA, LABELS, Clip, held_out_speakers
from audio_models.training.feature_tables import all_tables
from audio_models.training.metrics import classification_summary

# the affect anchors (arousal, valence) every shipped model uses
ANCHORS = {"angry": [0.8, -0.7], "happy": [0.5, 0.8], "neutral": [-0.2, 0.05], "sad": [-0.6, -0.6]}
DEFAULT_RECIPE = "base-b1-3+p"
DEFAULT_C = 1.0
NOISY_WEIGHT = 0.3  # a recipe's noisy rows (+n) against their clean rows' 1


@dataclass(frozen=True)
class Recipe:
    """What a head reads: ``encoder`` ("tiny.en" or "base"), which block means, and prosody or not.

    ``noisy`` changes only what it trains on: every training clip once more on a noisy line
    (feature_tables' noisy tables); the head reads the same features either way.
    """

    encoder: str
    blocks: tuple[int, ...]
    prosody: bool
    noisy: bool = False

    @classmethod
    def parse(cls, name: str) -> Recipe:
        """Read "base-b1-3+p", "tiny-b1", "tiny-b1-4+p+n" ...: encoder, block range, "+p" prosody, "+n" noisy too."""
        enc, _, rest = name.partition("-")
        blocks, _, extra = rest.partition("+")
        flags = extra.split("+") if extra else []
        if (enc not in ("tiny", "base") or not blocks.startswith("b") or not set(flags) <= {"p", "n"}
                or len(set(flags)) != len(flags)):
            raise ValueError(f"a recipe reads like base-b1-3+p, tiny-b1 or tiny-b1-4+p+n, not {name!r}")
        lo, _, hi = blocks[1:].partition("-")
        return cls("tiny.en" if enc == "tiny" else "base", tuple(range(int(lo), int(hi or lo) + 1)), "p" in flags,
                   "n" in flags)

    def features(self, tables: dict[str, np.ndarray]) -> np.ndarray:
        """Return the recipe's input matrix from the feature tables."""
        parts = [tables[self.encoder][:, b] for b in self.blocks]
        if self.prosody:
            parts.append(tables["prosody"])
        return np.concatenate(parts, axis=1)


def fit_block_head(x: np.ndarray, y: np.ndarray, corpus: np.ndarray, recipe: Recipe, c: float = DEFAULT_C,
                   row_weight: np.ndarray | None = None) -> BlockHead:
    """Return the standardised, class- and corpus-balanced logistic regression (``row_weight``: per row, on top)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    names, counts = np.unique(corpus, return_counts=True)
    share = dict(zip(names, len(corpus) / (len(names) * counts), strict=True))
    weight = np.array([share[k] for k in corpus]) * (1.0 if row_weight is None else row_weight)
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit((x - mean) / scale, y, sample_weight=weight)
    order = [list(clf.classes_).index(lab) for lab in LABELS]
    return BlockHead(mean, scale, clf.coef_[order], clf.intercept_[order], LABELS, encoder=recipe.encoder,
                     blocks=recipe.blocks, prosody=recipe.prosody)


def training_rows(clips: list[Clip], leave_out: str | None) -> np.ndarray:
    """Return the mask of the clips a head trains on: training speakers, outside ``leave_out``."""
    held = {s for group in held_out_speakers().values() for s in group}
    return np.array([c.speaker not in held and c.corpus != leave_out for c in clips])


def write_model_dir(out: Path, head: BlockHead, *, recipe_name: str, temperature: float | None,
                    training: dict[str, Any], log_floor: float = LOG_FLOOR,
                    log_prior: dict[str, float] | None = None) -> None:
    """Write ``head.npz``, ``hparams.yaml`` and (with a temperature) ``calibration.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / HEAD_FILE)
    version = "emotion-v3" + (f"-without-{training['leave_out']}" if training.get("leave_out") else "")
    hparams = {"name": "emoroute-whisper-head-emotion", "version": version, "backend": "whisper-head",
               "labels": list(LABELS), "recipe": recipe_name, "affect_anchors": ANCHORS, "training": training,
               "split": {"test_speakers": {k: list(v) for k, v in held_out_speakers().items()}}}
    (out / "hparams.yaml").write_text(yaml.safe_dump(hparams, sort_keys=False))
    if temperature is not None:
        write_calibration(out, temperature, log_floor, log_prior)


def write_calibration(out: Path, temperature: float, log_floor: float = LOG_FLOOR,
                      log_prior: dict[str, float] | None = None) -> None:
    """Write ``calibration.json``: the temperature, the floor it was fitted with, the class prior (if any)."""
    (out / CALIBRATION_FILE).write_text(json.dumps(
        {"temperature": temperature, **({"log_floor": log_floor} if log_floor != LOG_FLOOR else {}),
         **({"log_prior": dict(log_prior)} if log_prior else {}),
         "fitted_on": "leave-one-corpus-out posteriors of the nine corpora "
                      "(each clip scored by the head that never heard its corpus)"},
        indent=1))


def train_v3(data: Path, out: Path, *, recipe_name: str = DEFAULT_RECIPE, leave_out: str | None = None,
             temperature: float | None = None, cache_dir: Path = Path(".cache/emotion-features"),
             c: float = DEFAULT_C, log_floor: float = LOG_FLOOR,
             log_prior: dict[str, float] | None = None) -> dict[str, Any]:
    """Fit the head on the nine corpora (all but ``leave_out``), write the model directory, return its record.

    ``log_floor`` is stored with the temperature: the floor it was fitted with; ``log_prior`` beside
    them: the class offsets added before it (audio_models.calibration; the shipped v3: sad 1.5).
    """
    started = time.time()
    if leave_out is not None and leave_out not in ALL_CORPORA:
        raise ValueError(f"unknown corpus {leave_out!r}; choose one of {', '.join(ALL_CORPORA)}")
    recipe = Recipe.parse(recipe_name)
    sources = (recipe.encoder, "prosody") if recipe.prosody else (recipe.encoder,)
    clips, tables = all_tables(data, sources, cache_dir)
    x = recipe.features(tables)
    train = training_rows(clips, leave_out)
    y = np.array([c.label for c in clips])
    corpus = np.array([c.corpus for c in clips])
    x_fit, y_fit, corpus_fit = x[train], y[train], corpus[train]
    row_weight = None
    if recipe.noisy:
        x_noisy = recipe.features(all_tables(data, sources, cache_dir, noisy=True)[1])
        x_fit, y_fit = np.vstack([x_fit, x_noisy[train]]), np.r_[y_fit, y_fit]
        corpus_fit = np.r_[corpus_fit, corpus_fit]
        row_weight = np.r_[np.ones(int(train.sum())), np.full(int(train.sum()), NOISY_WEIGHT)]
    head = fit_block_head(x_fit, y_fit, corpus_fit, recipe, c, row_weight)
    corpora = [k for k in ALL_CORPORA if k != leave_out]
    line = "8 kHz mu-law round trip, edge silence trimmed"
    if recipe.noisy:
        line += f"; each clip also on a noisy line (babble or coloured noise, 5-25 dB), weighted {NOISY_WEIGHT}"
    training: dict[str, Any] = {"corpora": corpora, "leave_out": leave_out,
                "train_clips": int(train.sum()), "C": c, "class_weight": "balanced", "corpus_balanced": True,
                "line": line,
                "train_speakers": sorted({clips[i].speaker for i in np.flatnonzero(train)})}
    write_model_dir(out, head, recipe_name=recipe_name, temperature=temperature, training=training,
                    log_floor=log_floor, log_prior=log_prior)
    # held-out speakers of every corpus the head trained on (argmax: the temperature does not move it)
    held = {s for group in held_out_speakers().values() for s in group}
    metrics: dict[str, Any] = {"recipe": recipe_name, "train_clips": int(train.sum()), "held_out": {}}
    for name in corpora:
        test = np.array([c.corpus == name and c.speaker in held for c in clips])
        if test.any():
            pred = [LABELS[i] for i in head.probs(x[test]).argmax(axis=1)]
            metrics["held_out"][name] = classification_summary(list(y[test]), pred, LABELS)
    metrics["seconds"] = round(time.time() - started, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return {"out": str(out), "recipe": recipe_name, "leave_out": leave_out, "train_clips": int(train.sum()),
            "held_out_uar": {k: v["uar"] for k, v in metrics["held_out"].items()}, "seconds": metrics["seconds"]}
