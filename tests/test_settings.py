import pytest
from pydantic import ValidationError

from emoroute.settings import Settings

REAL = {"twilio_auth_token": "0f3a9c2b7d1e4f60a8b5", "api_token": "s3cret-supervisor-9x2",
        "agent_tokens": "a1=s3cret-agent1-q7w,a2=s3cret-agent2-z4k", "secret_key": "4d1f9a07c2e85b36" * 3}


def test_production_is_the_default_and_refuses_placeholder_secrets(monkeypatch):
    monkeypatch.delenv("EMOROUTE_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="EMOROUTE_TWILIO_AUTH_TOKEN, EMOROUTE_API_TOKEN, EMOROUTE_SECRET_KEY, "
                                              "EMOROUTE_AGENT_TOKENS .*emoroute serve --dev"):
        Settings()
    ok = Settings(**REAL)
    assert ok.environment == "production"
    assert ok.agent_token_map() == {"a1": "s3cret-agent1-q7w", "a2": "s3cret-agent2-z4k"}


def test_production_refuses_a_short_secret_key_and_unsigned_requests():
    with pytest.raises(ValidationError, match="EMOROUTE_SECRET_KEY"):
        Settings(**{**REAL, "secret_key": "short"})
    with pytest.raises(ValidationError, match="VALIDATE_SIGNATURES=false is refused in production"):
        Settings(**REAL, validate_signatures=False)
    assert not Settings(environment="development", validate_signatures=False).validate_signatures


def test_production_refuses_weak_or_shared_tokens_and_trusting_any_proxy():
    # the review's findings (#33): one-character tokens, a secret key of 32 x "a", an agent whose
    # token is the supervisor's (that agent then is a supervisor), and TRUSTED_PROXIES "*" (the
    # caller-controlled leftmost X-Forwarded-For entry became the client address)
    for weak in ({"api_token": "x"}, {"twilio_auth_token": "abcabcabcabcabcabc"},
                 {"agent_tokens": "a1=s3cret-agent1-q7w,a2=y"}):
        name = "EMOROUTE_" + next(iter(weak)).upper()
        with pytest.raises(ValidationError, match=f"weak secrets in production: set {name} "):
            Settings(**{**REAL, **weak})
    with pytest.raises(ValidationError, match="EMOROUTE_SECRET_KEY"):
        Settings(**{**REAL, "secret_key": "a" * 32})
    with pytest.raises(ValidationError, match="different from EMOROUTE_API_TOKEN"):
        Settings(**{**REAL, "agent_tokens": f"a1={REAL['api_token']}"})
    with pytest.raises(ValidationError, match="a token of their own"):
        Settings(**{**REAL, "agent_tokens": "a1=s3cret-agent1-q7w,a2=s3cret-agent1-q7w"})
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES='\\*' is refused in production"):
        Settings(**REAL, trusted_proxies="10.0.0.5, *")
    assert Settings(**REAL, trusted_proxies="172.28.0.0/24").trusted_proxy_list() == ["172.28.0.0/24"]


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


def test_redis_cluster_nodes_are_checked_and_exclusive_with_sentinels():
    with pytest.raises(ValidationError, match="REDIS_CLUSTER_NODES entry 'node-a' is not host:port"):
        Settings(environment="development", redis_cluster_nodes="node-a:7000,node-a")
    with pytest.raises(ValidationError, match="not both"):
        Settings(environment="development", redis_cluster_nodes="node-a:7000", redis_sentinels="s:26379")
    from emoroute.redis_clients import async_client, is_cluster
    settings = Settings(environment="development", redis_cluster_nodes="10.0.0.1:7000, [::1]:7001")
    client = async_client(settings, None, decode=True, timeout_s=1.0)  # connects lazily: nothing is dialled here
    assert is_cluster(client) and [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()] == [
        ("10.0.0.1", 7000), ("::1", 7001)]
