import numpy as np

from audio_models.g711 import (
    MULAW_DECODE_TABLE,
    StreamingUpsampler,
    mulaw_decode,
    mulaw_encode,
    resample,
    telephone_round_trip,
)


def test_decode_table_matches_g711_reference_points():
    # ITU-T G.711 mu-law: 0x00/0x80 are the extremes, 0xFF and 0x7F are zero.
    assert MULAW_DECODE_TABLE[0x00] == -32124
    assert MULAW_DECODE_TABLE[0x80] == 32124
    assert MULAW_DECODE_TABLE[0xFF] == 0
    assert MULAW_DECODE_TABLE[0x7F] == 0
    assert MULAW_DECODE_TABLE[0xFE] == 8 and MULAW_DECODE_TABLE[0x7E] == -8


def test_every_code_survives_decode_then_encode():
    codes = bytes(range(256))
    back = mulaw_encode(mulaw_decode(codes))
    # 0x7F (negative zero) re-encodes as 0xFF (positive zero); all else is exact.
    assert [i for i, (a, b) in enumerate(zip(codes, back, strict=True)) if a != b] == [0x7F]


def test_round_trip_error_is_within_a_quantisation_step():
    x = np.linspace(-0.99, 0.99, 5001).astype(np.float32)
    err = np.abs(mulaw_decode(mulaw_encode(x)) - x)
    # mu-law steps grow with amplitude: relative error stays under ~3.2 %.
    assert np.all(err <= 0.032 * np.abs(x) + 0.0005)


def test_encode_clips_out_of_range_and_is_monotonic():
    x = np.linspace(-2, 2, 4001)
    decoded = mulaw_decode(mulaw_encode(x))
    assert decoded.min() >= -1 and decoded.max() <= 1
    assert np.all(np.diff(decoded) >= 0)


def test_streaming_upsampler_matches_whole_signal_and_keeps_tone():
    t = np.arange(8000) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    up = StreamingUpsampler()
    chunked = np.concatenate([up.process(tone[i : i + 160]) for i in range(0, 8000, 160)])
    whole = StreamingUpsampler().process(tone)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    assert len(chunked) == 16000
    spectrum = np.abs(np.fft.rfft(chunked[1000:]))
    assert abs(np.argmax(spectrum) * 16000 / len(chunked[1000:]) - 440) < 2


def test_telephone_round_trip_removes_content_above_4khz():
    t = np.arange(16000) / 16000
    high = (0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    low = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert np.sqrt(np.mean(telephone_round_trip(high) ** 2)) < 0.02
    assert np.sqrt(np.mean(telephone_round_trip(low) ** 2)) > 0.18
    assert len(resample(low, 16000, 8000)) == 8000
