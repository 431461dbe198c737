"""Intents from a non-English caller's own words, beside Whisper base's English translation (issue #30).

The intent model of router.intent_model, fitted on the same English training sentences but on a
multilingual encoder (router.multilingual_encoder: multilingual-e5-small) and without English word
weights, reads what the caller said in Polish, Italian or Greek directly. When it names an intent,
that is the reading's intent; when it names none, the translation's reading stands. Judged on 48
new requests in four languages spoken by recorded-diphone voices: exact intent 0.315 against 0.250
from the translation alone (docs/experiments/2026-12-07-own-words-intents-rule.md).

The fit is shipped (``router/intents/own-words.npz``) for the shipped examples. When a supervisor's
examples differ, it is fitted in a background thread (about two minutes on one core, then cached):
until then the translation alone is read, so a caller is never kept waiting for it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from router.intent_model import IntentExamples, IntentModel, load_or_fit

log = logging.getLogger(__name__)
SHIPPED_OWN_WORDS_MODEL = Path(__file__).resolve().parent / "intents" / "own-words.npz"


class OwnWordsReader:
    """The multilingual intent model with the policy's floor; fitted (or loaded) off the caller's path."""

    def __init__(self, examples: IntentExamples, min_probability: float, *, cache_dir: Path,
                 shipped: Path | None = SHIPPED_OWN_WORDS_MODEL) -> None:
        """Start loading or fitting the model for ``examples`` in a background thread."""
        self.min_probability = min_probability
        self._model: IntentModel | None = None
        self._thread = threading.Thread(target=self._load, args=(examples, cache_dir, shipped),
                                        name="own-words-intents", daemon=True)
        self._thread.start()

    def _load(self, examples: IntentExamples, cache_dir: Path, shipped: Path | None) -> None:
        try:
            from router.multilingual_encoder import MultilingualEncoder

            encoder = MultilingualEncoder(cache_dir=cache_dir)
            self._model = load_or_fit(examples, encoder, shipped=shipped, cache_dir=cache_dir, word_weights=False)
        except Exception:  # noqa: BLE001 - the translation's reading stands; a caller is routed regardless
            log.exception("the own-words intent model could not be loaded; other languages are read from "
                          "their English translation alone")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the model is loaded or fitted (or failed); return whether it is ready."""
        self._thread.join(timeout)
        return self._model is not None

    @property
    def ready(self) -> bool:
        """Whether own-words readings are made now."""
        return self._model is not None

    def intents(self, text: str) -> frozenset[str]:
        """Return the intents ``text`` names in any language (none while the model is not ready)."""
        model = self._model
        if model is None or not text.strip():
            return frozenset()
        probs, requests = model.read([text])
        if requests[0] < model.request_floor:
            return frozenset()
        return frozenset(k for k, p in probs[0].items() if p >= self.min_probability)
