"""Decision latency under load: 50 simulated calls, 10 at a time, real-time 20 ms frames.

Latency is measured by the server: from receipt of the frame that closes the
caller's first utterance (the VAD's end-of-speech point, 400 ms after the last
voiced frame) to the routing redirect being issued. Server in its own process
with the embedded Redis, as in production. Prints one JSON line.

    python -m benchmarks.latency_benchmark --data ../shared/data
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from audio_models.audio_io import load_audio
from benchmarks.common import served
from emoroute.simulate import SimTarget, simulate_call
from router.policy import DEFAULT_POLICY_FILE

HELD_OUT = (1, 2, 23, 24)
EMOTIONS = ("01", "03", "04", "05")


def _clips(data: Path, callers: str = "ravdess") -> list[tuple[str, np.ndarray]]:
    if callers == "spanish":  # espeak-ng caller requests in Spanish (benchmarks/data/intents_languages)
        paths = sorted((Path(__file__).resolve().parent / "data" / "intents_languages").glob("es-*.wav"))
        return [(p.name, load_audio(p)) for p in paths]
    if callers == "other-languages":  # real speakers: five clips of each other language's held-out speakers
        from audio_models.training.language_id import CORPUS_LANGUAGE
        from benchmarks.language_id import held_out_clips

        by_language: dict[str, list[Path]] = {}
        for clips in held_out_clips(data).values():
            for clip in clips:
                by_language.setdefault(CORPUS_LANGUAGE[clip.corpus], []).append(clip.path)
        rnd = random.Random(7)
        picked = [p for language in sorted(by_language) if language != "en"
                  for p in rnd.sample(by_language[language], 5)]
        return [(p.name, load_audio(p)) for p in picked]
    paths = [data / "ravdess" / f"Actor_{a:02d}" / f"03-01-{e}-{'01' if e == '01' else '02'}-01-01-{a:02d}.flac"
             for a in HELD_OUT for e in EMOTIONS]
    return [(p.name, load_audio(p)) for p in paths]


async def _run(target: SimTarget, clips: list[tuple[str, np.ndarray]], calls: int, concurrency: int,
               realtime: bool, spread_s: float) -> list[dict[str, object]]:
    gate = asyncio.Semaphore(concurrency)
    rng = np.random.default_rng(0)
    offsets = rng.uniform(0, spread_s, calls)

    async def one(i: int) -> dict[str, object]:
        async with gate:
            await asyncio.sleep(offsets[i])
            name, audio = clips[i % len(clips)]
            return {"file": name, **await simulate_call(target, audio, realtime=realtime)}

    return list(await asyncio.gather(*(one(i) for i in range(calls))))


def main() -> None:
    """Start a server, run the load, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--fast", action="store_true", help="stream faster than real time")
    ap.add_argument("--arrival-spread-s", type=float, default=0.0,
                    help="each call dials after a random 0..N s wait in its slot (0 = synchronized bursts)")
    ap.add_argument("--callers", choices=("ravdess", "spanish", "other-languages"), default="ravdess",
                    help="RAVDESS held-out actors (English), Spanish caller requests (espeak-ng), or real held-out "
                         "speakers of the six other languages in --data (five clips each): the multilingual path")
    ap.add_argument("--english-only", action="store_true",
                    help="serve with the shipped policy's language detection off (languages.detect: false)")
    ap.add_argument("--asr-workers", type=int, default=1,
                    help="transcriptions the server runs at once (EMOROUTE_ASR_WORKERS; one core each)")
    args = ap.parse_args()
    env: dict[str, str] = {"EMOROUTE_ASR_WORKERS": str(args.asr_workers)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.english_only:
            raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
            raw["languages"]["detect"] = False
            model = raw["text"]["intent_model"]  # the intents' training file, beside the shipped policy
            model["training"] = str(DEFAULT_POLICY_FILE.parent / model["training"])
            (Path(tmp) / "policy.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
            env["EMOROUTE_POLICY_FILE"] = str(Path(tmp) / "policy.yaml")
        with served(env) as target:
            before = _counters(httpx.get(target.url + "/metrics", timeout=5).text)
            started = time.perf_counter()
            results = asyncio.run(_run(target, _clips(args.data, args.callers), args.calls, args.concurrency,
                                       not args.fast, args.arrival_spread_s))
            wall = time.perf_counter() - started
            counters = _counters(httpx.get(target.url + "/metrics", timeout=5).text)
    lat = np.array([float(r["decision_latency_ms"]) for r in results if r.get("decision_latency_ms")])
    routed = sum(1 for r in results if r.get("queue"))
    print(json.dumps({
        "benchmark": "decision_latency", "calls": args.calls, "concurrency": args.concurrency,
        "pace": "fast" if args.fast else "realtime", "arrival_spread_s": args.arrival_spread_s,
        "callers": args.callers, "language_detection": not args.english_only,
        "transcriber": os.environ.get("EMOROUTE_TRANSCRIBER", "whisper"), "asr_workers": args.asr_workers,
        "routed": routed, "measured": int(lat.size),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "max_ms": round(float(lat.max()), 1) if lat.size else None,
        "wall_s": round(wall, 1), "cpu_cores": os.cpu_count(),
        "queues": {q: sum(1 for r in results if r.get("queue") == q) for q in ("retention", "sales", "general")},
        # how many first decisions could not wait for the final transcript, and how many of those
        # heard the caller's words through a partial transcript instead of going on tone alone
        "transcript_timeouts": int(counters.get('emoroute_errors_total{where="transcript_timeout"}', 0)),
        "partial_decided": int(counters.get('emoroute_transcripts_total{kind="partial_decided"}', 0)),
        "partials": int(counters.get('emoroute_transcripts_total{kind="partial"}', 0)),
        # the server's CPU time over the load (both cores count), and how many calls' chunks a VAD run took
        "server_cpu_s": round(counters["process_cpu_seconds_total"] - before["process_cpu_seconds_total"], 1),
        "vad_chunks_per_run": round((counters["emoroute_vad_chunks_scored"] - before["emoroute_vad_chunks_scored"])
                                    / max(1.0, counters["emoroute_vad_runs"] - before["emoroute_vad_runs"]), 2),
        # from the frame that closed a call's first utterance to its analysed transcript, whether it
        # came in time for the first decision or re-routed it later (router.metrics first_words_latency)
        "first_words": {language: _histogram(counters, "emoroute_first_words_seconds", language)
                        for language in ("en", "other")},
    }))


def _histogram(counters: dict[str, float], name: str, language: str) -> dict[str, float | None]:
    """Return a labelled Prometheus histogram's count, share within 1.0 and 1.5 s, and p50 / p95 (interpolated)."""
    bounds = [(float(key.split('le="')[1].rstrip('"}')), value) for key, value in counters.items()
              if key.startswith(f'{name}_bucket{{language="{language}",')]
    bounds.sort()
    count = bounds[-1][1] if bounds else 0.0
    out: dict[str, float | None] = {"count": count}
    for limit in (1.0, 1.5):
        out[f"within_{limit}s"] = round(dict(bounds)[limit] / count, 3) if count else None
    for q in (50, 95):
        out[f"p{q}_s"] = _quantile(bounds, q / 100) if count else None
    return out


def _quantile(bounds: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus's histogram_quantile: linear within the bucket that holds the q-th observation."""
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in bounds:
        if cumulative >= rank:
            if upper == float("inf"):
                return None  # beyond the last finite bucket
            return round(lower + (upper - lower) * (rank - below) / max(cumulative - below, 1e-9), 3)
        lower, below = upper, cumulative
    return None


def _counters(exposition: str) -> dict[str, float]:
    """Return Prometheus sample lines as {name{labels}: value}."""
    out = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


if __name__ == "__main__":
    main()
