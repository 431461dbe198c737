"""Real audio through the real ASR engines."""

import numpy as np
import pytest

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import list_tess
from audio_models.transcribe import (
    IncrementalTranscript,
    PocketSphinxTranscriber,
    WhisperTranscriber,
    word_error_rate,
)
from tests.conftest import ravdess_clip


def test_whisper_transcribes_telephone_band_speech_of_unseen_speakers(whisper, corpora):
    refs = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
    clips = [(actor, emo, st) for actor in (1, 24) for emo in ("01", "05") for st in ("01", "02")]
    hyps, want = [], []
    for actor, emo, st in clips:
        wave = telephone_round_trip(load_audio(ravdess_clip(corpora, actor, emo, "01" if emo == "01" else "02", st)))
        seg = whisper.transcribe(wave)
        hyps.append(seg.text)
        want.append(refs[st])
        assert seg.is_final and 0 < seg.confidence <= 1
        assert all(0 <= w.start <= w.end <= len(wave) / 16000 + 0.5 for w in seg.words)
    assert word_error_rate(want, hyps) <= 0.25, hyps


def _music(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    return (0.2 * chord * np.sin(2 * np.pi * 2 * t) ** 2).astype(np.float32)


@pytest.mark.parametrize("engine", ["whisper", "pocketsphinx"])
@pytest.mark.parametrize(
    "wave",
    [
        np.zeros(0, dtype=np.float32),
        np.zeros(32000, dtype=np.float32),
        (np.random.default_rng(0).standard_normal(48000) * 0.1).astype(np.float32),
        _music(),
        np.full(16000, np.nan, dtype=np.float32),
    ],
    ids=["empty", "silence", "noise", "music", "nan"],
)
def test_bad_inputs_give_empty_transcripts_never_exceptions(engine, wave, whisper):
    transcriber = whisper if engine == "whisper" else PocketSphinxTranscriber()
    seg = transcriber.transcribe(wave)
    assert seg.text == "" or seg.confidence < 0.5


def test_clipped_speech_still_transcribes(whisper, angry_audio):
    seg = whisper.transcribe(np.clip(telephone_round_trip(angry_audio) * 30, -1, 1))
    assert "door" in seg.text.lower()


def test_incremental_partials_then_final(whisper, angry_audio):
    inc = IncrementalTranscript(whisper, partial_every_s=1.5)
    partials = [p for i in range(0, len(angry_audio), 3200) if (p := inc.feed(angry_audio[i : i + 3200]))]
    assert partials and not partials[0].is_final
    final = inc.finish()
    assert final.is_final and "door" in final.text.lower()
    assert inc.finish().text == ""


def test_aligned_word_timestamps_offline(angry_audio):
    aligned = WhisperTranscriber(word_timestamps=True)
    seg = aligned.transcribe(telephone_round_trip(angry_audio))
    words = [w.text.strip(".,!").lower() for w in seg.words]
    assert words[-2:] == ["the", "door"]
    starts = [w.start for w in seg.words]
    assert starts == sorted(starts) and seg.words[-1].end <= len(angry_audio) / 16000 + 0.5


def test_word_error_rate():
    assert word_error_rate(["a b c d"], ["a x c"]) == 0.5
    assert word_error_rate(["Kids are talking."], ["kids are talking"]) == 0.0


def test_window_decoding_matches_full_window_and_handles_long_audio(whisper, corpora):
    # The live path's short encoder window must hear what Whisper's full 30 s window hears ...
    full = WhisperTranscriber(vocabulary=whisper.vocabulary or "", word_timestamps=False, window_s=30)
    wave = telephone_round_trip(load_audio(ravdess_clip(corpora, 23, "05", "02", "02")))
    assert whisper.window_frames < full.window_frames
    assert whisper.transcribe(wave).text.lower().strip(".") == full.transcribe(wave).text.lower().strip(".")
    # ... and audio longer than the window goes through the long-form path, nothing dropped.
    tess = [c for c in list_tess(corpora) if c.speaker == "tess-YAF" and c.label == "neutral"][:6]
    kids = telephone_round_trip(load_audio(ravdess_clip(corpora, 3, "01", "01", "01")))
    long = np.concatenate([kids, *(telephone_round_trip(load_audio(c.path)) for c in tess), wave])
    assert len(long) > whisper.window_frames * 160
    seg = whisper.transcribe(long)
    text = seg.text.lower()
    assert "kids" in text and "dogs" in text, text
    assert text.count("say the word") >= 5, text
    assert seg.words[-1].start >= 10.0


def test_next_best_readings_recover_a_misheard_intent(whisper):
    # espeak-ng: "I think I've been billed twice this month." Whisper tiny often mishears "billed
    # twice" in its best reading and has it in a next-best one; which reading wins may differ between
    # processors (CTranslate2), so this holds whichever does: the words are among the readings, and
    # the analyser finds the intent, showing the reading it used when that was not the best one.
    from router.policy import load_policy
    from router.text import load_text_analyser
    from tests.conftest import REPO

    seg = whisper.transcribe(load_audio(REPO / "benchmarks" / "data" / "intents" / "z24.wav"))
    assert 1 <= len(seg.alternatives) <= 4 and seg.text not in seg.alternatives
    readings = [seg.text, *seg.alternatives]
    assert any("billed twice" in r.lower() for r in readings), readings
    analyser = load_text_analyser(load_policy().text)
    signals = analyser.analyse(seg.text, seg.alternatives)
    assert "billing_dispute" in signals.intents, (readings, signals)
    assert signals.snippet.startswith(seg.text)
    assert ("[or: " in signals.snippet) == (not analyser.intents(seg.text)), signals.snippet


def test_an_intent_is_taken_from_a_next_best_reading_only_when_the_best_names_none():
    from router.policy import load_policy
    from router.text import TextAnalyser

    phrases = TextAnalyser(load_policy().text)  # phrases alone: the mechanism, whatever a classifier reads
    best, other = "I think I've been built while this month.", "I think I've been billed twice this month."
    assert phrases.intents_of_readings(best, [other]) == (frozenset({"billing_dispute"}), other)
    assert phrases.intents_of_readings(other, [best]) == (frozenset({"billing_dispute"}), "")
    # a negation in the best reading is never lost to an alternative that dropped it
    assert phrases.intents_of_readings("I don't want to cancel.", ["I do want to cancel."]) == (frozenset(), "")


def test_no_alternatives_unless_asked(corpora):
    plain = WhisperTranscriber(word_timestamps=False)
    wave = telephone_round_trip(load_audio(ravdess_clip(corpora, 1, "05", "02", "01")))
    assert plain.transcribe(wave).alternatives == ()


def test_the_policys_beam_size_reaches_the_recogniser():
    from audio_models.transcribe import load_transcriber
    from router.policy import load_policy

    assert load_policy().text.asr_beam_size == 5  # a beam of 10 was judged and not adopted
    narrow = load_transcriber("whisper", beam_size=2, alternatives=4)
    assert isinstance(narrow, WhisperTranscriber)
    # next-best readings come from the beam, so there are at most beam - 1 of them
    assert (narrow.beam_size, narrow.alternatives) == (2, 1)


def test_the_policys_band_extension_reaches_the_recogniser():
    from audio_models.band_extension import BandExtendingFeatures
    from audio_models.transcribe import load_transcriber
    from router.policy import load_policy

    assert load_policy().text.asr_band_extension is False  # judged and not adopted: an option
    extended = load_transcriber("whisper", band_extension=True)
    assert isinstance(extended, WhisperTranscriber) and extended.band_extension
    assert isinstance(extended._model.feature_extractor, BandExtendingFeatures)
    plain = load_transcriber("whisper")
    assert isinstance(plain, WhisperTranscriber) and not plain.band_extension
    assert not isinstance(plain._model.feature_extractor, BandExtendingFeatures)
