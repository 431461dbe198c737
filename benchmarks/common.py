"""Pieces shared by the benchmarks.

A parser for those that score one ECAPA model directory, and a real server in its own process
(embedded Redis) for those that call it as Twilio would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from audio_models.transcribe import WhisperTranscriber
from emoroute.redis_server import free_port
from emoroute.simulate import SimTarget
from router.policy import load_policy


def model_dir_parser(doc: str | None, cache_dir: str) -> argparse.ArgumentParser:
    """Return a parser with --data, --model-dir (required) and --cache-dir (default ``cache_dir``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default: %(default)s)")
    ap.add_argument("--model-dir", type=Path, required=True, help="ECAPA model directory (hparams.yaml, model.ckpt)")
    ap.add_argument("--cache-dir", type=Path, default=Path(cache_dir), help="where features are cached")
    return ap


@contextmanager
def served(extra_env: dict[str, str] | None = None) -> Iterator[SimTarget]:
    """Run ``emoroute serve`` on a free port with a fresh data folder; yield how to call it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        # the load generator streams faster than real time in its fast mode: lift the message-rate limit
        env = {**os.environ, "EMOROUTE_PUBLIC_URL": url, "EMOROUTE_DATA_DIR": tmp,
               "EMOROUTE_MAX_FRAMES_PER_SECOND": "10000", "EMOROUTE_MAX_PENDING_STREAMS_PER_CLIENT": "1000",
               **(extra_env or {})}
        if "REDIS_URL" not in (extra_env or {}):
            env.pop("REDIS_URL", None)  # the embedded Redis, as a single host runs it
        command = [sys.executable, "-m", "emoroute.cli", "serve", "--dev", "--port", str(port)]
        server = subprocess.Popen(command, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.2)
            yield SimTarget(url=url, public_url=url, auth_token="dev-auth-token", api_token="dev-supervisor-token")
        finally:
            server.terminate()
            server.wait(timeout=30)


def shipped_recogniser(threads: int = 1) -> WhisperTranscriber:
    """Return Whisper with the live service's settings from the shipped policy, on ``threads`` threads."""
    rules = load_policy().text
    return WhisperTranscriber(threads=threads, vocabulary=rules.asr_vocabulary, word_timestamps=False,
                              alternatives=rules.asr_alternatives, alternative_margin=rules.asr_alternative_margin,
                              beam_size=rules.asr_beam_size, band_extension=rules.asr_band_extension)
