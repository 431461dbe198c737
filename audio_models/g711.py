"""G.711 mu-law codec and the telephone-band round trip.

The live service hears 8 kHz mu-law audio; training and evaluation pass clean
corpus audio through the same codec so the model learns what a phone line sounds
like. The decoder is a 256-entry lookup table (``audioop`` left the standard
library in Python 3.13).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import firwin, lfilter, resample_poly

_BIAS = 0x84
_BIAS14 = 0x21
_CLIP14 = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _build_decode_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.int16)
    for byte in range(256):
        u = ~byte & 0xFF
        sign = u & 0x80
        exponent = (u >> 4) & 0x07
        mantissa = u & 0x0F
        magnitude = ((mantissa << 3) + _BIAS) << exponent
        sample = magnitude - _BIAS
        table[byte] = -sample if sign else sample
    return table


MULAW_DECODE_TABLE: np.ndarray = _build_decode_table()
"""int16 PCM value for each of the 256 mu-law bytes."""


def mulaw_decode(data: bytes) -> np.ndarray:
    """Return float32 samples in [-1, 1] for a buffer of mu-law bytes."""
    codes = np.frombuffer(data, dtype=np.uint8)
    return MULAW_DECODE_TABLE[codes].astype(np.float32) / 32768.0


def mulaw_encode(samples: np.ndarray) -> bytes:
    """Return mu-law bytes for float samples in [-1, 1] (values outside are clipped).

    Follows the ITU-T G.711 reference coder (14-bit magnitude, bias 0x21), so
    the bytes match what a phone network produces.
    """
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767)
    pcm14 = pcm.astype(np.int32) >> 2
    mask = np.where(pcm14 < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm14), _CLIP14) + _BIAS14
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude, side="left")
    safe_segment = np.minimum(segment, 7)
    code = (safe_segment << 4) | ((magnitude >> (safe_segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Return ``samples`` resampled from ``orig_sr`` to ``target_sr`` as float32."""
    if orig_sr == target_sr:
        return np.asarray(samples, dtype=np.float32)
    g = np.gcd(orig_sr, target_sr)
    out = resample_poly(np.asarray(samples, dtype=np.float64), target_sr // g, orig_sr // g)
    return out.astype(np.float32)


def telephone_round_trip(samples_16k: np.ndarray) -> np.ndarray:
    """Return 16 kHz audio as heard after an 8 kHz mu-law phone line."""
    narrow = resample(samples_16k, 16000, 8000)
    decoded = mulaw_decode(mulaw_encode(narrow))
    return resample(decoded, 8000, 16000)


class StreamingUpsampler:
    """8 kHz -> 16 kHz upsampler that keeps filter state across 20 ms chunks.

    Resampling each chunk on its own would click at every chunk edge; this one
    zero-stuffs and low-passes with a carried FIR state, so a stream of chunks
    gives the same samples as resampling the whole call at once.
    """

    _TAPS = firwin(63, 0.5) * 2.0

    def __init__(self) -> None:
        self._state = np.zeros(len(self._TAPS) - 1)

    def process(self, samples_8k: np.ndarray) -> np.ndarray:
        """Return the 16 kHz samples for the next chunk of 8 kHz samples."""
        stuffed = np.zeros(len(samples_8k) * 2)
        stuffed[::2] = samples_8k
        out, self._state = lfilter(self._TAPS, 1.0, stuffed, zi=self._state)
        return out.astype(np.float32)
