"""Shared fixtures: a real redis-server, the shipped emotion model, real corpora, a real uvicorn server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis
import uvicorn

from audio_models.audio_io import load_audio
from audio_models.backends import load_emotion_model
from audio_models.emotion_types import EmotionModel
from audio_models.transcribe import WhisperTranscriber
from emoroute.app import create_app
from emoroute.redis_server import EmbeddedRedis, free_port
from emoroute.settings import Settings
from telephony.actions import DryRunActions
from tests.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("EMOROUTE_CORPORA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not (CORPORA / "ravdess").is_dir():
        pytest.fail(f"real emotional speech not found at {CORPORA}; set EMOROUTE_CORPORA to the corpora root")
    return CORPORA


def ravdess_clip(root: Path, actor: int, emotion: str, intensity: str = "02", statement: str = "01",
                 repetition: str = "01") -> Path:
    """Return the path of one RAVDESS clip (emotion code 01-08)."""
    name = f"03-01-{emotion}-{intensity}-{statement}-{repetition}-{actor:02d}.flac"
    return root / "ravdess" / f"Actor_{actor:02d}" / name


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's package), started for the tests that need one."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def emotion_model() -> EmotionModel:
    """The default backend on the default model directory, as the service loads it."""
    return load_emotion_model()


@pytest.fixture(scope="session")
def angry_audio(corpora: Path) -> np.ndarray:
    """Strong anger of held-out actor 2 ("Dogs are sitting by the door"), a caller the live tests need heard as angry.

    The default model (v3) reads it at P(angry) 0.87 on the live path, above the 0.8 retention needs on
    tone alone; his other sentence it reads at 0.76 ("anger possible": general at the anger priority).
    The misroutes of held-out actors are what benchmarks/live_emotion.py counts.
    """
    return load_audio(ravdess_clip(corpora, 2, "05", statement="02"))


@pytest.fixture(scope="session")
def neutral_audio(corpora: Path) -> np.ndarray:
    return load_audio(ravdess_clip(corpora, 23, "01", intensity="01"))


@pytest.fixture(scope="session")
def whisper() -> WhisperTranscriber:
    from router.policy import load_policy

    # the live service's settings (see audio_models.transcribe.load_transcriber)
    rules = load_policy().text
    return WhisperTranscriber(vocabulary=rules.asr_vocabulary, word_timestamps=False, beam_size=rules.asr_beam_size,
                              alternatives=rules.asr_alternatives, alternative_margin=rules.asr_alternative_margin,
                              band_extension=rules.asr_band_extension)


@dataclass
class LiveServer:
    url: str
    settings: Settings
    actions: DryRunActions
    app: object


class _ServerThread:
    def __init__(self, app: object, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                                                    ws_max_size=1 << 20, lifespan="on",
                                                    proxy_headers=False))  # as `emoroute serve`: the app's own
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


# The tests stream audio faster than real time (Twilio sends 50 messages a second): the message-rate
# limit is raised for them, and its own test sets it back.
FAST_FRAMES_PER_SECOND = 10_000


def make_settings(redis_url: str | None, port: int, data_dir: Path, **overrides: object) -> Settings:
    return Settings(**{"environment": "development", "public_url": f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                       "redis_url": redis_url, "data_dir": data_dir,
                       "max_frames_per_second": FAST_FRAMES_PER_SECOND,
                       # the tests share one Redis and one client address: wrong tokens sent by one
                       # test must not lock the next out; the limit's own tests set it and an address
                       "login_failures_per_minute": 1000, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def live_server(redis_url: str, emotion_model: EmotionModel, whisper: WhisperTranscriber,
                tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    settings = make_settings(redis_url, port, tmp_path)
    actions = DryRunActions(account_sid=settings.twilio_account_sid)
    app = create_app(settings, emotion_model=emotion_model, actions=actions, transcriber=whisper)
    with _ServerThread(app, port):
        yield LiveServer(f"http://127.0.0.1:{port}", settings, actions, app)


@pytest.fixture
def server_factory(emotion_model: EmotionModel, whisper: WhisperTranscriber,
                   tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start a server against any Redis URL (used by the Redis-outage test)."""
    def start(redis_url: str, *, own_model: bool = False, **overrides: object) -> tuple[_ServerThread, LiveServer]:
        """``own_model``: the app loads its emotion model from its settings (EMOROUTE_EMOTION_BACKEND)."""
        port = free_port()
        settings = make_settings(redis_url, port, tmp_path, **overrides)
        actions = DryRunActions(account_sid=settings.twilio_account_sid, workflow_sid=settings.twilio_workflow_sid,
                                workspace_sid=settings.twilio_workspace_sid)
        app = create_app(settings, emotion_model=None if own_model else emotion_model, actions=actions,
                         transcriber=whisper)
        thread = _ServerThread(app, port)
        return thread, LiveServer(f"http://127.0.0.1:{port}", settings, actions, app)
    return start
