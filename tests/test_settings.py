import pytest
from pydantic import ValidationError

from emoroute.settings import Settings

REAL = {"twilio_auth_token": "t0k3n-real", "api_token": "s3cret-sup", "agent_tokens": "a1=s3cret-a1,a2=s3cret-a2",
        "secret_key": "k" * 40}


def test_production_is_the_default_and_refuses_placeholder_secrets(monkeypatch):
    monkeypatch.delenv("EMOROUTE_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="EMOROUTE_TWILIO_AUTH_TOKEN, EMOROUTE_API_TOKEN, EMOROUTE_SECRET_KEY, "
                                              "EMOROUTE_AGENT_TOKENS .*emoroute serve --dev"):
        Settings()
    ok = Settings(**REAL)
    assert ok.environment == "production"
    assert ok.agent_token_map() == {"a1": "s3cret-a1", "a2": "s3cret-a2"}


def test_production_refuses_a_short_secret_key_and_unsigned_requests():
    with pytest.raises(ValidationError, match="EMOROUTE_SECRET_KEY"):
        Settings(**{**REAL, "secret_key": "short"})
    with pytest.raises(ValidationError, match="VALIDATE_SIGNATURES=false is refused in production"):
        Settings(**REAL, validate_signatures=False)
    assert not Settings(environment="development", validate_signatures=False).validate_signatures


def test_development_mode_accepts_the_placeholders(monkeypatch):
    monkeypatch.setenv("EMOROUTE_ENVIRONMENT", "development")
    assert Settings().api_token == "dev-supervisor-token"


def test_malformed_agent_tokens_are_named():
    with pytest.raises(ValueError, match="'broken' is not agent_id=token"):
        Settings(environment="development", agent_tokens="a1=x,broken").agent_token_map()


def test_stream_url_follows_the_public_url_scheme():
    assert Settings(**REAL, public_url="https://emo.example.com/").stream_url == "wss://emo.example.com/twilio/stream"
    assert Settings(**REAL, public_url="http://127.0.0.1:8000").stream_url == "ws://127.0.0.1:8000/twilio/stream"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("EMOROUTE_ENVIRONMENT", "development")
    monkeypatch.setenv("EMOROUTE_TRANSCRIPT_WAIT_MS", "250")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    monkeypatch.setenv("EMOROUTE_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    s = Settings()
    assert s.transcript_wait_ms == 250 and s.redis_url == "redis://example:6379/2"
    assert s.trusted_proxy_list() == ["10.0.0.1", "10.0.0.2"]
    monkeypatch.setenv("EMOROUTE_TRANSCRIBER", "klingon")
    with pytest.raises(ValidationError, match="transcriber"):
        Settings()


def test_emotion_backend_is_validated():
    assert Settings(**REAL, emotion_backend="ecapa-whisper").emotion_backend == "ecapa-whisper"
    with pytest.raises(ValidationError, match="emotion_backend"):
        Settings(**REAL, emotion_backend="wav2vec")
