"""The ``emoroute`` command as a user runs it."""

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from audio_models.audio_io import load_audio
from audio_models.emotion import FUSED_MODEL_DIR
from tests.conftest import REPO, ravdess_clip


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emoroute.cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env={**os.environ, **(env or {})})


def test_classify_reports_each_file_and_errors_without_stopping(tmp_path, corpora):
    angry = ravdess_clip(corpora, 24, "05")
    stereo = tmp_path / "stereo_44k.wav"
    wave = load_audio(ravdess_clip(corpora, 2, "05"), target_sr=44100)
    sf.write(stereo, np.stack([wave, wave * 0.5], axis=1), 44100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    truncated = tmp_path / "truncated.wav"
    sf.write(tmp_path / "full.wav", wave, 44100, subtype="PCM_16")
    truncated.write_bytes((tmp_path / "full.wav").read_bytes()[:20000])
    missing = tmp_path / "missing.wav"

    proc = run_cli("classify", str(angry), str(missing), str(stereo), str(empty), str(text), str(truncated),
                   "--telephone", "--json")
    assert proc.returncode == 1
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in results] == [str(angry), str(stereo)]
    for r in results:
        assert set(r) == {"file", "label", "probs", "arousal", "valence", "model"}
        assert r["label"] == "angry"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4
    assert "no such file" in errors[0] and "empty" in errors[1]
    assert "not a readable audio file" in errors[2] and "truncated" in errors[3]


def test_help_lists_the_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ("demo", "serve", "simulate", "classify", "transcribe", "evaluate-emotion", "train-emotion",
                "prepare-models"):
        assert cmd in proc.stdout


def test_bad_actor_list_is_refused():
    proc = run_cli("train-emotion", "--data", ".", "--out", "x", "--test-actors", "1,99")
    assert proc.returncode == 2 and "numbered 1 to 24" in proc.stderr


@pytest.mark.parametrize("share", ["0", "1.5", "half"])
def test_bad_babble_share_is_refused(share):
    proc = run_cli("train-emotion", "--data", ".", "--out", "x", "--babble", "--babble-share", share)
    assert proc.returncode == 2 and "--babble-share" in proc.stderr


def test_transcribe_reports_text_sentiment_and_intents_per_file(tmp_path, corpora):
    intents_dir = REPO / "benchmarks" / "data" / "intents"
    cancel = intents_dir / "u01.wav"  # "I want to cancel my account." (espeak-ng, 8 kHz mu-law)
    by_meaning = intents_dir / "w09.wav"  # "The engineer never turned up." (no policy phrase)
    kids = ravdess_clip(corpora, 1, "01", intensity="01")  # neutral: "Kids are talking by the door."
    missing = tmp_path / "missing.wav"
    proc = run_cli("transcribe", str(cancel), str(missing), str(by_meaning), str(kids), "--telephone", "--json")
    assert proc.returncode == 1
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in results] == [str(cancel), str(by_meaning), str(kids)]
    assert set(results[0]) == {"file", "text", "confidence", "sentiment", "intents", "engine"}
    assert "cancel" in results[0]["text"].lower() and results[0]["intents"] == ["cancel"]
    assert "engineer" in results[1]["text"].lower() and results[1]["intents"] == ["complaint"]
    assert "door" in results[2]["text"].lower() and results[2]["intents"] == []
    assert all(0 < r["confidence"] <= 1 for r in results)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no such file" in errors[0]


def test_prepare_models_loads_every_default_model():
    proc = run_cli("prepare-models")
    assert proc.returncode == 0, proc.stderr
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == [
        "sentence encoders", "emotion model (whisper-head)", "transcriber", "voice activity detector"]


def test_prepare_models_checks_the_emotion_backend_the_server_is_configured_for(tmp_path):
    proc = run_cli("prepare-models", env={"EMOROUTE_EMOTION_BACKEND": "ecapa-whisper",
                                          "EMOROUTE_EMOTION_MODEL_DIR": "emotion-whisper-ecapa"})
    assert proc.returncode == 0, proc.stderr
    assert "emotion model (ecapa-whisper): ready" in proc.stdout
    # a model directory without the fused backend's head fails with the command that fits it
    for name in ("hparams.yaml", "model.ckpt"):
        (tmp_path / name).write_bytes((FUSED_MODEL_DIR / name).read_bytes())
    proc = run_cli("prepare-models", env={"EMOROUTE_EMOTION_BACKEND": "ecapa-whisper",
                                          "EMOROUTE_EMOTION_MODEL_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "emoroute train-emotion-head" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_prepare_models_names_a_cache_folder_it_cannot_write(tmp_path):
    # examples other than the shipped fit's must be fitted, and the fit cached; a cache that cannot
    # be written is named, and the classifier is then refitted at every start: slower, not broken
    from router.policy import DEFAULT_POLICY_FILE

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    training = {"intents": {
        "none": ["What time do you open?", "I need my balance.", "Can you reset my password?"],
        **{name: [f"{verb} please.", f"I want to {verb}.", f"Can you help me {verb}?"] for name, verb in (
            ("cancel", "cancel my contract"), ("complaint", "complain about the engineer"),
            ("billing_dispute", "dispute a charge on my bill"), ("purchase", "buy a new phone"),
            ("upgrade", "upgrade my broadband"), ("escalation", "speak to your manager"))}}}
    (tmp_path / "training.yaml").write_text(yaml.safe_dump(training))
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["text"]["intent_model"]["training"] = str(tmp_path / "training.yaml")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    proc = run_cli("prepare-models", "--policy", str(tmp_path / "policy.yaml"), "--model-cache-dir",
                   str(blocker / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert f"cannot cache the intent model in {blocker / 'cache'}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_training_defaults_are_the_default_models_recipe():
    from audio_models.training.whisper_head import DEFAULT_BLOCK, DEFAULT_C, DEFAULT_ECAPA_WEIGHT
    from emoroute.cli import build_parser

    train = build_parser().parse_args(["train-emotion", "--data", ".", "--out", "x"])
    assert (train.frontend, train.babble, train.babble_share, train.head) == ("whisper-block1", True, 0.25, True)
    fbank = build_parser().parse_args(["train-emotion", "--data", ".", "--out", "x", "--frontend", "fbank",
                                       "--no-babble"])
    assert (fbank.frontend, fbank.babble) == ("fbank", False)
    head = build_parser().parse_args(["train-emotion-head", "--data", "."])
    assert (head.block, head.c, head.ecapa_weight) == (DEFAULT_BLOCK, DEFAULT_C, DEFAULT_ECAPA_WEIGHT)
    assert head.model_dir == Path("audio_models/models/emotion-whisper-ecapa")
    hparams = yaml.safe_load((FUSED_MODEL_DIR / "hparams.yaml").read_text())["training"]
    assert (hparams["frontend"], hparams["babble"], hparams["babble_share"]) == ("whisper-block1", True, 0.25)


def test_serve_refuses_placeholder_secrets_unless_development_is_asked_for():
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")}
    result = subprocess.run([sys.executable, "-m", "emoroute.cli", "serve", "--port", "1"], capture_output=True,
                            text=True, cwd=REPO, timeout=120, env=env)
    assert result.returncode == 2
    assert "EMOROUTE_TWILIO_AUTH_TOKEN" in result.stderr and "EMOROUTE_SECRET_KEY" in result.stderr
    assert "--dev" in result.stderr
    assert "--dev" in run_cli("serve", "--help").stdout


def test_compose_requires_the_secrets_and_runs_in_production():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for service in ("web", "worker"):
        env = compose["services"][service]["environment"]
        assert env["EMOROUTE_ENVIRONMENT"] == "production" and env["EMOROUTE_ASR_MODE"] == "redis"
        for name in ("EMOROUTE_TWILIO_AUTH_TOKEN", "EMOROUTE_API_TOKEN", "EMOROUTE_AGENT_TOKENS", "EMOROUTE_SECRET_KEY",
                     "EMOROUTE_TWILIO_ACCOUNT_SID", "EMOROUTE_PUBLIC_URL"):
            assert env[name] == "${" + name + ":?" + env[name].split(":?", 1)[1], name  # required, no default
        assert "EMOROUTE_VALIDATE_SIGNATURES" not in env


def test_compose_scales_web_and_workers_behind_a_websocket_aware_proxy():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "web", "worker", "proxy"}
    # one history store for every web process, its password required
    history = services["web"]["environment"]["EMOROUTE_HISTORY_URL"]
    assert history.startswith("postgresql://emoroute:${EMOROUTE_HISTORY_PASSWORD:?") and "@postgres:5432/" in history
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${EMOROUTE_HISTORY_PASSWORD:?")
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for scaled in ("web", "worker"):  # `--scale` needs no fixed name and no host port
        assert "container_name" not in services[scaled] and "ports" not in services[scaled]
    assert services["worker"]["command"][-4:-2] == ["emoroute", "worker"]
    assert services["redis"]["image"] == "redis:7"
    assert services["proxy"]["image"].startswith("nginx:") and services["proxy"]["ports"] == ["8000:8000"]
    conf_host, conf_in = services["proxy"]["volumes"][0].split(":")[:2]
    assert conf_in == "/etc/nginx/nginx.conf"
    conf = (REPO / conf_host).read_text()
    assert "server web:8000 resolve" in conf and "proxy_set_header Upgrade $http_upgrade" in conf
    assert "proxy_buffering off" in conf  # server-sent events
    # only the proxy's forwarding headers are believed: its fixed address, inside the network's subnet
    trusted = services["web"]["environment"]["EMOROUTE_TRUSTED_PROXIES"]
    assert trusted == services["proxy"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(trusted) in ipaddress.ip_network(subnet)
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in conf
    assert "location ~ ^/(metrics|healthz)$ {\n            return 404;" in conf  # not proxied to the internet
