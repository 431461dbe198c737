"""The VAD's cost on the event loop: every live call's chunks scored alone, or side by side.

N calls stream real speech (RAVDESS held-out actors, through the phone line) in Twilio's 20 ms
frames, in real time, each call's frames at its own offset within the 20 ms (as WebSocket messages
arrive), all on one asyncio loop as in a web process. Each frame goes through the call's segmenter
as the live path does: its whole 32 ms chunks are scored either by the call's own VAD run
(``alone``: before 2026-12-07) or by ``audio_models.vad.BatchedVAD`` with every call's chunks due
in the same turn of the loop (``together``: the live path since). Reported per mode and N: core
time (this process's CPU seconds) per second of call audio, the loop's worst lag behind real time,
and the mean calls per VAD run. One JSON line.

    python -m benchmarks.vad_benchmark --data ../shared/data --calls 1 10 50 150 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.pipeline import StreamSegmenter
from audio_models.vad import BatchedVAD, SileroVAD

FRAME = 320  # 20 ms at 16 kHz, as the Media Stream's frames are decoded
HELD_OUT = (1, 2, 23, 24)


def _speech(data: Path, seconds: float) -> np.ndarray:
    """Return ``seconds`` of held-out actors' sentences with pauses between them, through the phone line."""
    pieces = []
    for actor in HELD_OUT:
        for emotion in ("01", "03", "04", "05"):
            intensity = "01" if emotion == "01" else "02"
            path = data / "ravdess" / f"Actor_{actor:02d}" / f"03-01-{emotion}-{intensity}-01-01-{actor:02d}.flac"
            pieces += [telephone_round_trip(load_audio(path)), np.zeros(8000, dtype=np.float32)]
    audio = np.concatenate(pieces)
    return np.tile(audio, int(np.ceil(seconds * 16000 / len(audio))))[: int(seconds * 16000)]


async def _calls(audio: np.ndarray, n: int, together: bool) -> dict[str, float]:
    batch = BatchedVAD()
    lags: list[float] = []
    rng = np.random.default_rng(n)
    start = time.perf_counter() + 0.05

    async def call(offset: float, shift: int) -> None:
        vad, segmenter = SileroVAD(), StreamSegmenter(None)
        speech = np.roll(audio, shift)  # calls are at different points of their sentences
        for k in range(len(speech) // FRAME):
            due = start + offset + k * 0.02
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                lags.append(-wait)
                await asyncio.sleep(0)
            chunks = segmenter.chunks(speech[k * FRAME : (k + 1) * FRAME])
            probs = (await batch.score(vad, chunks) if together
                     else [vad.speech_probability(chunk) for chunk in chunks])
            segmenter.advance(chunks, probs)

    cpu = time.process_time()
    await asyncio.gather(*(call(float(rng.uniform(0, 0.02)), int(rng.integers(len(audio)))) for _ in range(n)))
    cpu = time.process_time() - cpu
    seconds = len(audio) / 16000 * n
    return {"core_ms_per_call_second": round(cpu / seconds * 1000, 2),
            "worst_lag_ms": round(max(lags, default=0.0) * 1000, 1),
            "calls_per_run": round(batch.chunks / batch.runs, 2) if together and batch.runs else 1.0}


def main() -> None:
    """Run each N alone and together; print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50, 150])
    ap.add_argument("--seconds", type=float, default=10.0, help="call audio per call")
    args = ap.parse_args()
    audio = _speech(args.data, args.seconds)
    rows = {}
    for n in args.calls:
        for mode in ("alone", "together"):
            rows[f"{mode}_{n}"] = asyncio.run(_calls(audio, n, mode == "together"))
    print(json.dumps({"benchmark": "vad_event_loop", "seconds_per_call": args.seconds, "cpu_cores": os.cpu_count(),
                      **rows}))


if __name__ == "__main__":
    main()
