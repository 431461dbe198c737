"""Voice activity detection with silero-vad (its ONNX model ships inside the PyPI wheel).

One onnxruntime session (single-threaded, so it never competes with the emotion
model for cores) is shared by every call; each call gets its own recurrent state.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import numpy as np

VAD_CHUNK = 512  # samples at 16 kHz (32 ms), the size silero-vad expects
CONTEXT = 64  # samples of the previous chunk silero-vad reads before each one (at 16 kHz)
_RATE = np.array(16000, dtype=np.int64)

_BASE: Any = None
_BASE_LOCK = threading.Lock()


def _base_model() -> Any:
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            from silero_vad import load_silero_vad

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _BASE = load_silero_vad(onnx=True)
        return _BASE


class SileroVAD:
    """Speech probability per 32 ms chunk; one instance per stream (it keeps the stream's state).

    The ONNX session is silero's own (its wheel's model, one thread), run here on numpy arrays with
    the recurrent state and the 64-sample context its wrapper keeps: the same probabilities to the
    last bit as ``silero_vad``'s torch wrapper at two thirds of the cost (0.16 against 0.25 ms a
    chunk on this machine). Live calls are scored together instead (:class:`BatchedVAD`).
    """

    def __init__(self) -> None:
        """Share the loaded ONNX session; start with fresh state."""
        self._session = _base_model().session
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros((1, CONTEXT), dtype=np.float32)

    def speech_probability(self, chunk: np.ndarray) -> float:
        """Return P(speech) for exactly 512 samples of 16 kHz audio."""
        return score_together([(self, [checked_chunk(chunk)])], self._session)[0][0]


def checked_chunk(chunk: np.ndarray) -> np.ndarray:
    """Return ``chunk`` as one float32 row of VAD_CHUNK samples (ValueError otherwise)."""
    samples = np.asarray(chunk, dtype=np.float32).reshape(1, -1)
    if samples.shape[1] != VAD_CHUNK:
        raise ValueError(f"the VAD takes {VAD_CHUNK} samples at a time, not {samples.shape[1]}")
    return samples


def score_together(requests: list[tuple[SileroVAD, list[np.ndarray]]], session: Any) -> list[list[float]]:
    """Return P(speech) of each stream's checked chunks, in order, the streams side by side in each run.

    Silero's model takes a batch: row i carries stream i's recurrent state and context, so each
    stream reads what it would alone (bit for bit on this machine: 1,343 chunks of 12 calls side by
    side; other processors' kernels may round differently), and a run of 16 streams costs 0.05 ms a
    chunk against 0.13 ms for one. A stream with k chunks takes part in k runs, in order.
    """
    out: list[list[float]] = [[] for _ in requests]
    for turn in range(max((len(chunks) for _, chunks in requests), default=0)):
        taking = [i for i, (_, chunks) in enumerate(requests) if len(chunks) > turn]
        streams = [requests[i][0] for i in taking]
        x = np.concatenate([np.concatenate([s.context, requests[i][1][turn]], axis=1)
                            for s, i in zip(streams, taking, strict=True)])
        state = streams[0].state if len(streams) == 1 else np.concatenate([s.state for s in streams], axis=1)
        probs, state = session.run(None, {"input": x, "state": state, "sr": _RATE})
        for row, (stream, i) in enumerate(zip(streams, taking, strict=True)):
            stream.state = state[:, row : row + 1, :]
            stream.context = x[row : row + 1, -CONTEXT:]
            out[i].append(float(probs[row, 0]))
    return out


class BatchedVAD:
    """Scores the chunks of every live stream submitted in one event-loop turn in one ONNX run.

    A call's frames arrive on its own WebSocket; those that arrive together are scored together
    (under light load, alone: the wait is one turn of the loop). The run is on the event loop, as
    each stream's own run was.
    """

    def __init__(self) -> None:
        """Share the loaded ONNX session."""
        self._session = _base_model().session
        self._waiting: list[tuple[SileroVAD, list[np.ndarray], asyncio.Future[list[float]]]] = []
        self.runs = 0  # ONNX runs, and the chunks they scored (the mean batch is their ratio)
        self.chunks = 0

    async def score(self, stream: SileroVAD, chunks: list[np.ndarray]) -> list[float]:
        """Return P(speech) of ``chunks`` (each VAD_CHUNK samples) of ``stream``, in order."""
        if not chunks:
            return []
        rows = [checked_chunk(c) for c in chunks]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[float]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._run)
        self._waiting.append((stream, rows, future))
        return await future

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            results = score_together([(stream, rows) for stream, rows, _ in waiting], self._session)
        except Exception as exc:  # noqa: BLE001 - every waiting stream hears of it
            for _, _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        self.runs += max(len(rows) for _, rows, _ in waiting)
        self.chunks += sum(len(rows) for _, rows, _ in waiting)
        for (_, _, future), probs in zip(waiting, results, strict=True):
            if not future.done():
                future.set_result(probs)
