import numpy as np

from audio_models.pipeline import StreamSegmenter
from audio_models.trim import trim_silence
from audio_models.vad import SileroVAD


def feed_in_frames(seg: StreamSegmenter, audio: np.ndarray, frame: int = 320):
    out = []
    for i in range(0, len(audio), frame):
        out += seg.feed(audio[i : i + frame])
    return out


def test_two_utterances_separated_by_silence_are_found(angry_audio, neutral_audio):
    gap = np.zeros(16000, dtype=np.float32)
    call = np.concatenate([gap, angry_audio, gap, neutral_audio, gap])
    segments = feed_in_frames(StreamSegmenter(SileroVAD().speech_probability), call)
    utterances = [s for s in segments if s.kind == "utterance"]
    assert len(utterances) == 2
    first, second = utterances
    assert 1.0 <= first.start_s < first.end_s <= 1.0 + len(angry_audio) / 16000 + 0.2
    assert second.start_s > first.end_s
    assert all(0.7 < (s.end_s - s.start_s) < 4.5 for s in utterances)


def test_silence_and_noise_give_no_utterance():
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(16000 * 3) * 0.002).astype(np.float32)
    seg = StreamSegmenter(SileroVAD().speech_probability)
    assert feed_in_frames(seg, np.zeros(16000 * 3, dtype=np.float32)) == []
    assert feed_in_frames(seg, quiet) == []
    assert seg.flush() == []


def test_long_speech_yields_sliding_windows_then_a_capped_utterance(angry_audio, neutral_audio):
    pieces = [trim_silence(angry_audio, threshold_db=25), trim_silence(neutral_audio, threshold_db=25)]
    speech = np.concatenate(pieces * 3)
    segments = feed_in_frames(StreamSegmenter(SileroVAD().speech_probability), speech)
    windows = [s for s in segments if s.kind == "window"]
    assert windows, "no sliding windows during continuous speech"
    assert all(abs((w.end_s - w.start_s) - 3.0) < 0.05 for w in windows)
    assert all(len(s.audio) <= 10 * 16000 + 512 for s in segments)


def test_flush_returns_the_open_utterance(angry_audio):
    seg = StreamSegmenter(SileroVAD().speech_probability)
    feed_in_frames(seg, angry_audio[: int(len(angry_audio) * 0.6)])
    assert seg.in_speech
    (last,) = seg.flush()
    assert last.kind == "utterance"


def test_open_utterance_is_readable_while_it_is_spoken(angry_audio):
    seg = StreamSegmenter(SileroVAD().speech_probability)
    assert seg.open_seconds == 0 and seg.open_audio().size == 0
    feed_in_frames(seg, angry_audio[: int(len(angry_audio) * 0.7)])
    assert seg.in_speech and 0.5 < seg.open_seconds <= len(angry_audio) * 0.7 / 16000
    so_far = seg.open_audio()
    assert len(so_far) == round(seg.open_seconds * 16000)
    (last,) = seg.flush()
    assert abs(last.start_s - seg.open_start_s) < 1e-9 and np.array_equal(last.audio[: len(so_far)], so_far)


def test_the_vad_reads_what_silero_vads_own_wrapper_reads_chunk_by_chunk(angry_audio, neutral_audio):
    import pytest
    import torch
    from silero_vad import load_silero_vad

    call = np.concatenate([angry_audio, np.zeros(8000, dtype=np.float32), neutral_audio])
    chunks = [call[i : i + 512] for i in range(0, len(call) - 511, 512)]
    reference = load_silero_vad(onnx=True)
    expected = [float(reference(torch.from_numpy(c.copy()), 16000)) for c in chunks]
    ours = SileroVAD()
    assert [ours.speech_probability(c) for c in chunks] == expected  # state and context carried the same way
    assert max(expected) > 0.9 and min(expected) < 0.1
    with pytest.raises(ValueError, match="512 samples"):
        ours.speech_probability(np.zeros(320, dtype=np.float32))


async def test_calls_scored_side_by_side_read_what_each_reads_alone(angry_audio, neutral_audio):
    import asyncio

    import pytest

    from audio_models.vad import BatchedVAD

    calls = [angry_audio, neutral_audio, np.concatenate([np.zeros(4000, dtype=np.float32), angry_audio])]
    alone = []
    for audio in calls:
        vad = SileroVAD()
        alone.append([vad.speech_probability(audio[i : i + 512]) for i in range(0, len(audio) - 511, 512)])
    batch = BatchedVAD()

    async def stream(audio: np.ndarray) -> tuple[list[float], list]:
        segmenter, vad, probs, segments = StreamSegmenter(None), SileroVAD(), [], []
        for i in range(0, len(audio), 320):  # Twilio's 20 ms frames, every call's arriving together
            chunks = segmenter.chunks(audio[i : i + 320])
            got = await batch.score(vad, chunks)
            probs += got
            segments += segmenter.advance(chunks, got)
        return probs, segments

    together = await asyncio.gather(*(stream(audio) for audio in calls))
    for audio, own, (probs, segments) in zip(calls, alone, together, strict=True):
        assert len(probs) == len(own) and np.allclose(probs, own, atol=1e-5)
        assert [p >= 0.5 for p in probs] == [p >= 0.5 for p in own]
        # the same segments as the segmenter that scores its own chunks
        expected = feed_in_frames(StreamSegmenter(SileroVAD().speech_probability), audio)
        assert [(s.kind, s.start_s, s.end_s) for s in segments] == [(s.kind, s.start_s, s.end_s) for s in expected]
    assert batch.chunks == sum(map(len, alone)) and batch.runs <= 0.4 * batch.chunks  # three calls a run
    with pytest.raises(ValueError, match="512 samples"):
        await batch.score(SileroVAD(), [np.zeros(100, dtype=np.float32)])
    with pytest.raises(TypeError, match="chunks"):
        StreamSegmenter(None).feed(angry_audio)
