"""How EmoRoute runs under an orchestrator: graceful drain on SIGTERM with real processes, and the
Kubernetes manifests checked against Kubernetes' own schemas (issue #32)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import redis

from router import keys
from tests.conftest import REPO
from tests.helpers import HeldCall, wait_for

pytestmark = pytest.mark.timeout(240)


def test_a_web_process_drains_the_calls_it_holds_on_sigterm(redis_url, neutral_audio, tmp_path):
    from emoroute.redis_server import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("EMOROUTE_")}, "REDIS_URL": redis_url,
           "EMOROUTE_ENVIRONMENT": "development", "EMOROUTE_PUBLIC_URL": base, "EMOROUTE_DRAIN_SECONDS": "60",
           "EMOROUTE_DATA_DIR": str(tmp_path / "web"), "EMOROUTE_MAX_FRAMES_PER_SECOND": "10000"}
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "emoroute.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        def ready() -> int:
            try:
                return httpx.get(base + "/readyz", timeout=2).status_code
            except httpx.HTTPError:
                return 0

        wait_for(lambda: ready() == 200, timeout=180, what="the web process ready")
        with HeldCall(base.replace("http://", "ws://") + "/twilio/stream", neutral_audio) as call:
            wait_for(lambda: r.hget(keys.call(call.sid), "status") == "queued", what="the call routed and held")
            proc.send_signal(signal.SIGTERM)
            wait_for(lambda: ready() == 503, timeout=10, what="not ready once draining")
            body = httpx.get(base + "/readyz", timeout=2).json()
            assert body["draining"] and body["live_calls"] == 1
            time.sleep(2.0)
            assert proc.poll() is None and call.thread.is_alive()  # the caller is still being analysed
            assert r.hget(keys.call(call.sid), "status") == "queued"
        # the caller hung up: the process ends the call, then exits by itself (uvicorn re-raises the
        # SIGTERM it held once it has shut down, so its parent sees why it stopped)
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert r.hget(keys.call(call.sid), "status") == "ended"
        assert "drained (0 live calls left)" in (tmp_path / "web.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        r.close()


KUBE = REPO / "deploy" / "kubernetes"
KUBE_VERSION = "1.33.0"  # a version current clusters run; the schemas ship in kubernetes-validate's wheel


def _documents(path):
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base() -> dict:
    docs = {}
    for path in sorted((KUBE / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in _documents(path):
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def test_every_kubernetes_manifest_is_valid_against_kubernetes_schemas():
    import kubernetes_validate

    base = _base()
    kustomization = _documents(KUBE / "base" / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in (KUBE / "base").glob("*.yaml")
                                                         if p.name != "kustomization.yaml")
    checked = 0
    for doc in base.values():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked against the code below
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)  # raises on any unknown or wrong field
        checked += 1
    assert checked >= 10
    for doc in _documents(KUBE / "overlays" / "example" / "config.yaml"):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_the_manifests_agree_with_the_code_and_run_locked_down():
    from emoroute.app import create_app
    from emoroute.settings import Settings

    base = _base()
    web, worker = base[("Deployment", "emoroute-web")], base[("Deployment", "emoroute-worker")]
    config = base[("ConfigMap", "emoroute-config")]["data"]
    # every setting named exists (a typo would be silently ignored by pydantic-settings)
    fields = {f"EMOROUTE_{name.upper()}" for name in Settings.model_fields} | {
        "REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES"}
    assert set(config) <= fields, set(config) - fields
    app = create_app(Settings(environment="development"))
    paths = {getattr(route, "path", "") for route in app.routes}
    web_container = web["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert web_container[probe]["httpGet"]["path"] in paths, probe
    assert web_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # a stopped pod drains its calls within the grace period
    shutdown_s = float(config.get("EMOROUTE_SHUTDOWN_SECONDS", Settings.model_fields["shutdown_seconds"].default))
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= \
        float(config["EMOROUTE_DRAIN_SECONDS"]) + shutdown_s
    worker_container = worker["spec"]["template"]["spec"]["containers"][0]
    port = worker_container["command"][worker_container["command"].index("--metrics-port") + 1]
    assert str(worker_container["ports"][0]["containerPort"]) == port
    # the autoscalers point at what exists, on the stream the web processes fill
    scaled = base[("ScaledObject", "emoroute-worker")]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "emoroute-worker"
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert trigger["stream"] == keys.asr_jobs("urgent") and trigger["consumerGroup"] == keys.ASR_GROUP
    assert trigger["addresses"] == config["REDIS_SENTINELS"]
    assert base[("HorizontalPodAutoscaler", "emoroute-web")]["spec"]["scaleTargetRef"]["name"] == "emoroute-web"
    for (kind, name), doc in base.items():
        if kind == "PodDisruptionBudget":
            selected = doc["spec"]["selector"]["matchLabels"]
            assert any(d["spec"]["selector"]["matchLabels"] == selected for d in (web, worker)), name
    # non-root, read-only, no privilege, pinned images, sized resources, secrets from a Secret only
    for deployment in (web, worker):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            sc, resources = container["securityContext"], container["resources"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert ":" in container["image"] and not container["image"].endswith(":latest")
            assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
            named = [e for e in container.get("env", []) if "TOKEN" in e["name"] or "SECRET" in e["name"]]
            assert all("valueFrom" in e and "value" not in e for e in named)
    assert not any(("TOKEN" in k or "SECRET" in k) for k in config)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile  # the image runs as the manifests' user
    # the ingress routes the product and not the operations endpoints
    ingress = base[("Ingress", "emoroute")]
    routed = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routed == {"/twilio", "/api", "/dashboard"}


def test_a_security_linter_finds_nothing_in_the_manifests():
    # checkov (Apache-2.0) pins packages that would downgrade this project's own (networkx, packaging),
    # so it runs from a virtual environment of its own, built once under .cache/
    venv = REPO / ".cache" / "checkov-venv"
    checkov = venv / "bin" / "checkov"
    if not checkov.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "checkov==3.3.30"], check=True, timeout=900)
    result = subprocess.run([str(checkov), "-d", str(KUBE), "--framework", "kubernetes", "--compact", "--quiet",
                             "--output", "json"], capture_output=True, text=True, timeout=600)
    import json

    report = json.loads(result.stdout)
    summary = (report[0] if isinstance(report, list) else report)["summary"]
    assert summary["passed"] > 150 and summary["failed"] == 0, result.stdout[-3000:]
    # every skip carries its reason in the manifest (checkov.io/skipN: CHECK=reason)
    for path in (KUBE / "base").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if "checkov.io/skip" in line:
                assert "=" in line.split(":", 1)[1] and len(line.split("=", 1)[1]) > 20, line
