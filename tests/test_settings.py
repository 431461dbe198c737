import pytest
from pydantic import ValidationError

from emoroute.settings import Settings


def test_production_refuses_placeholder_secrets():
    with pytest.raises(ValidationError, match="EMOROUTE_TWILIO_AUTH_TOKEN, EMOROUTE_API_TOKEN, EMOROUTE_AGENT_TOKENS"):
        Settings(environment="production")
    ok = Settings(environment="production", twilio_auth_token="t0k3n-real", api_token="s3cret-sup",
                  agent_tokens="a1=s3cret-a1,a2=s3cret-a2")
    assert ok.agent_token_map() == {"a1": "s3cret-a1", "a2": "s3cret-a2"}


def test_malformed_agent_tokens_are_named():
    with pytest.raises(ValueError, match="'broken' is not agent_id=token"):
        Settings(agent_tokens="a1=x,broken").agent_token_map()


def test_stream_url_follows_the_public_url_scheme():
    assert Settings(public_url="https://emo.example.com/").stream_url == "wss://emo.example.com/twilio/stream"
    assert Settings(public_url="http://127.0.0.1:8000").stream_url == "ws://127.0.0.1:8000/twilio/stream"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("EMOROUTE_TRANSCRIPT_WAIT_MS", "250")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    s = Settings()
    assert s.transcript_wait_ms == 250 and s.redis_url == "redis://example:6379/2"
    monkeypatch.setenv("EMOROUTE_TRANSCRIBER", "klingon")
    with pytest.raises(ValidationError, match="transcriber"):
        Settings()


def test_emotion_backend_is_validated():
    assert Settings(emotion_backend="ecapa-whisper").emotion_backend == "ecapa-whisper"
    with pytest.raises(ValidationError, match="emotion_backend"):
        Settings(emotion_backend="wav2vec")
