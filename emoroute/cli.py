"""The ``emoroute`` command line: serve, demo, simulate, classify, transcribe, train and evaluate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from emoroute.cli_models import DEFAULT_DATA, add_model_commands, load_model
from emoroute.console import err as _err
from emoroute.console import out as _out
from emoroute.console import say as _say

log = logging.getLogger("emoroute")


def _model_cache_default() -> Path | None:
    """The serving settings' model cache folder, so the CLI caches where the server looks."""
    value = os.environ.get("EMOROUTE_MODEL_CACHE_DIR")
    return Path(value) if value else None


def _cmd_classify(args: argparse.Namespace) -> int:
    from audio_models.audio_io import AudioLoadError, load_audio
    from audio_models.emotion import ModelLoadError
    from audio_models.g711 import telephone_round_trip

    if args.backend == "speechbrain-hub":
        from audio_models.hub import SpeechBrainHubEmotionModel

        try:
            model = SpeechBrainHubEmotionModel.from_dir(args.hub_dir)
        except ModelLoadError as exc:
            log.error("%s", exc)
            return 2
    else:
        model = load_model(args.model, args.backend)
    if model is None:
        return 2
    failed = 0
    for path in args.files:
        try:
            wave = load_audio(path)
            if args.telephone:
                wave = telephone_round_trip(wave)
            reading = model.classify_batch([wave])[0]
        except (AudioLoadError, ValueError) as exc:
            _err(f"error: {exc}")
            failed += 1
            continue
        result = {"file": str(path), "label": reading.label, "probs": reading.probs,
                  "arousal": reading.arousal, "valence": reading.valence, "model": reading.model}
        if args.json:
            _out(result)
        else:
            _say(f"{path}: {reading.label} (P={reading.probs[reading.label]:.2f}, arousal "
                 f"{reading.arousal:+.2f}, valence {reading.valence:+.2f})")
    return 1 if failed else 0


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from audio_models.audio_io import AudioLoadError, load_audio
    from audio_models.g711 import telephone_round_trip
    from audio_models.transcribe import load_transcriber
    from router.policy import PolicyError, load_policy
    from router.semantic import SemanticModelError
    from router.text import load_text_analyser

    try:
        policy = load_policy(args.policy)
        analyser = load_text_analyser(policy.text, args.policy, model_cache_dir=args.model_cache_dir)
    except (PolicyError, SemanticModelError) as exc:
        log.error("%s", exc)
        return 2
    engine = load_transcriber(args.engine, vocabulary=policy.text.asr_vocabulary,
                              alternatives=policy.text.asr_alternatives,
                              alternative_margin=policy.text.asr_alternative_margin,
                              beam_size=policy.text.asr_beam_size,
                              band_extension=policy.text.asr_band_extension)
    assert engine is not None
    order = list(policy.text.intent_routes)
    failed = 0
    for path in args.files:
        try:
            wave = load_audio(path)
            segment = engine.transcribe(telephone_round_trip(wave) if args.telephone else wave)
        except (AudioLoadError, ValueError) as exc:
            _err(f"error: {exc}")
            failed += 1
            continue
        signals = analyser.analyse(segment.text, segment.alternatives)
        intents = [name for name in order if name in signals.intents]
        if args.json:
            _out({"file": str(path), "text": signals.snippet, "confidence": round(segment.confidence, 3),
                  "sentiment": signals.sentiment, "intents": intents, "engine": segment.engine})
        else:
            _say(f"{path}: {signals.snippet!r} (confidence {segment.confidence:.2f}, sentiment "
                 f"{signals.sentiment if signals.sentiment is not None else '-'}, intents "
                 f"{', '.join(intents) or 'none'})")
    return 1 if failed else 0


def _cmd_prepare_models(args: argparse.Namespace) -> int:
    import time

    from audio_models.backends import load_emotion_model
    from audio_models.emotion_types import DEFAULT_MODEL_DIR, ModelLoadError
    from audio_models.transcribe import load_transcriber
    from audio_models.vad import SileroVAD
    from emoroute.settings import Settings
    from router.policy import PolicyError, load_policy
    from router.semantic import SemanticModelError
    from router.text import load_text_analyser

    def text_models() -> None:
        # the own-words model is fitted in the background when the examples changed: wait, so it is cached
        analyser = load_text_analyser(policy.text, args.policy, model_cache_dir=args.model_cache_dir)
        if analyser.own_words is not None:
            analyser.own_words.wait()

    # the emotion backend and directory the server would load (secrets play no part here)
    settings = Settings(environment="development")
    try:
        policy = load_policy(args.policy)
        steps = {
            "sentence encoders": text_models,
            f"emotion model ({settings.emotion_backend})": lambda: load_emotion_model(
                settings.emotion_backend, settings.emotion_model_dir or DEFAULT_MODEL_DIR),
            "transcriber": lambda: load_transcriber("whisper", vocabulary=policy.text.asr_vocabulary,
                                                    beam_size=policy.text.asr_beam_size,
                                                    band_extension=policy.text.asr_band_extension),
            "voice activity detector": SileroVAD,
        }
        for name, load in steps.items():
            start = time.perf_counter()
            load()
            _say(f"{name}: ready ({time.perf_counter() - start:.1f} s)")
    except (PolicyError, SemanticModelError, ModelLoadError) as exc:
        log.error("%s", exc)
        return 2
    return 0


def _cmd_train_intents(args: argparse.Namespace) -> int:
    import json
    import time

    from router.intent_model import IntentVocabularyError, fit_intent_model, report_json, validate
    from router.model_bundles import default_cache_dir
    from router.policy import PolicyError, load_policy
    from router.semantic import SemanticModelError, SentenceEncoder
    from router.text import intent_examples

    started = time.perf_counter()
    try:
        policy = load_policy(args.policy)
        rules = policy.text.intent_model
        if rules is None:
            raise PolicyError("the policy has no text.intent_model to train")
        examples = intent_examples(policy.text, args.policy)
        encoder = SentenceEncoder(rules.encoder, cache_dir=args.model_cache_dir, threads=os.cpu_count() or 1)
        check = validate(examples, encoder, min_probability=rules.min_probability, max_overlap=rules.max_overlap)
        if check.overlaps:
            raise IntentVocabularyError("these intents overlap, so the classifier cannot tell them apart; give "
                                        "them distinct examples or merge them:\n  " + "\n  ".join(check.overlaps))
        model = fit_intent_model(examples, encoder)
    except (PolicyError, SemanticModelError, IntentVocabularyError) as exc:
        log.error("%s", exc)
        return 2
    out = args.out or (args.model_cache_dir or default_cache_dir()) / "intent-models" / \
        f"{encoder.name}-{examples.digest}.npz"
    model.save(out)
    report = report_json(model, check, len(examples.texts))
    out.with_suffix(".json").write_text(report)
    if args.json:
        _out(json.loads(report))
    else:
        _say(f"{len(examples.texts)} sentences, {len(model.intents)} intents, trained in "
             f"{time.perf_counter() - started:.1f} s -> {out}")
        for intent, row in check.per_intent.items():
            _say(f"  {intent:<16} precision {row['precision']:.2f}  recall {row['recall']:.2f}  "
                 f"({row['held_out']:.0f} held-out sentences)")
        if check.gate:
            _say(f"  request gate: floor {model.request_floor:.2f}; on the held-out fifth (its fit's floor "
                 f"{check.gate['floor']:.2f}) it stops {check.gate['requests_stopped']:.1%} of requests with an "
                 f"intent and lets {check.gate['remarks_passed']:.1%} of {check.gate['held_out_remarks']:.0f} "
                 "remarks through")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from emoroute.app import create_app
    from emoroute.settings import Settings

    try:
        settings = Settings(environment="development") if args.dev else Settings()
    except ValidationError as exc:
        for error in exc.errors():
            _err(f"error: {error['msg'].removeprefix('Value error, ')}")
        return 2
    if settings.environment == "development":
        log.warning("development mode: placeholder secrets are accepted; never expose this server")
    from emoroute.drain import DrainingServer

    app = create_app(settings)
    # the app's own ProxyHeadersMiddleware trusts EMOROUTE_TRUSTED_PROXIES
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info", ws_max_size=1 << 20,
                            proxy_headers=False)
    DrainingServer(config, app, drain_s=settings.drain_seconds).run()
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from audio_models.transcribe import load_transcriber
    from emoroute.redis_clients import sync_client
    from emoroute.services import freeze_loaded_objects, with_languages
    from emoroute.settings import Settings, weak_secret_key
    from emoroute.worker import InferenceWorker, install_drain
    from router.asr_jobs import JobCipher
    from router.cluster import new_process_id
    from router.policy import PolicyError, load_policy

    # a worker holds one secret, the key that seals job audio and transcripts (router/asr_jobs.py);
    # the web processes' other secrets are not needed here
    settings = Settings(environment="development")
    if not settings.redis_url and not settings.redis_sentinels and not settings.redis_cluster_nodes:
        _err("error: set REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES) to the Redis the web processes use "
             "(workers share it)")
        return 2
    if os.environ.get("EMOROUTE_ENVIRONMENT", "production") == "production" and weak_secret_key(settings.secret_key):
        _err("error: set EMOROUTE_SECRET_KEY to the web processes' secret key (at least 32 random characters): "
             "it seals the audio and transcripts in the job streams; EMOROUTE_ENVIRONMENT=development accepts "
             "the placeholder")
        return 2
    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as exc:
        _err(f"error: {exc}")
        return 2
    rules = policy.text
    transcriber = load_transcriber(settings.transcriber if settings.transcriber != "none" else "whisper",
                                   vocabulary=rules.asr_vocabulary, alternatives=rules.asr_alternatives,
                                   alternative_margin=rules.asr_alternative_margin, beam_size=rules.asr_beam_size,
                                   band_extension=rules.asr_band_extension)
    assert transcriber is not None  # only "none" gives None
    transcriber = with_languages(transcriber, policy)  # callers in other languages: Whisper base too
    assert transcriber is not None
    client = sync_client(settings)
    worker = InferenceWorker(client, transcriber, cipher=JobCipher(settings.secret_key),
                             worker_id=args.id or f"worker-{new_process_id()}",
                             claim_idle_ms=settings.asr_claim_idle_ms, metrics_port=args.metrics_port)
    install_drain(worker)
    freeze_loaded_objects()  # the models' objects out of the collector's walks (emoroute.services)
    worker.run()
    return 0


def _cmd_archiver(args: argparse.Namespace) -> int:
    import asyncio

    from emoroute.redis_clients import async_client, close_client
    from emoroute.services import history_url
    from emoroute.settings import Settings
    from router.archive import Archiver
    from router.cluster import new_process_id
    from router.history import HistoryError, HistoryStore
    from router.policy import load_policy

    settings = Settings(environment="development")  # the archiver holds no secret: it copies what Redis holds
    if not settings.redis_url and not settings.redis_sentinels and not settings.redis_cluster_nodes:
        _err("error: set REDIS_URL (or REDIS_SENTINELS, or REDIS_CLUSTER_NODES) to the Redis the web processes use")
        return 2
    if settings.history_url == "off":
        _err("error: EMOROUTE_HISTORY_URL is off: nothing to archive to")
        return 2
    policy = load_policy(settings.policy_file)
    try:
        history = HistoryStore(history_url(settings))
        history.migrate(policy.key_intents())
    except HistoryError as exc:
        _err(f"error: {exc}")
        return 2

    async def run() -> None:
        client = async_client(settings, settings.redis_url, decode=True, timeout_s=settings.redis_timeout_s)
        archiver = Archiver(client, history, consumer=args.id or f"archiver-{new_process_id()}", batch=args.batch,
                            claim_idle_ms=args.claim_idle_ms, block_ms=max(50, int(settings.redis_timeout_s * 500)),
                            retention_s=policy.retention_days * 86400, live_s=settings.live_hours * 3600,
                            key_intents=policy.key_intents())
        try:
            await archiver.run()
        finally:
            await close_client(client)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        history.close()
    return 0


def _load_audio_or_none(path: Path):  # type: ignore[no-untyped-def]
    from audio_models.audio_io import AudioLoadError, load_audio

    try:
        return load_audio(path)
    except AudioLoadError as exc:
        _err(f"error: {exc}")
        return None


def _cmd_simulate(args: argparse.Namespace) -> int:
    from emoroute.simulate import CallerScript, SimTarget, simulate_many

    audios = [(str(p), a) for p in args.audio if (a := _load_audio_or_none(p)) is not None]
    if not audios:
        return 2
    target = SimTarget(url=args.url.rstrip("/"), public_url=(args.public_url or args.url).rstrip("/"),
                       auth_token=args.auth_token, api_token=args.api_token)
    script = CallerScript(key=args.press, key_after_s=args.press_after, menu_key=args.menu_key,
                          account_digits=args.account_digits, agent=args.agent,
                          agent_audio=_load_audio_or_none(args.agent_audio) if args.agent_audio else None,
                          survey_score=args.survey, language_key=args.language_key)
    results = asyncio.run(simulate_many(target, audios, calls=args.calls, realtime=args.realtime, scripts=[script]))
    for r in results:
        if args.json:
            _out(r)
        elif "error" in r:
            _say(f"{r['file']}: FAILED {r['error']}")
        else:
            _say(f"{r['call_sid']} {Path(r['file']).name}: -> {r.get('queue', '?')} priority "
                 f"{r.get('priority', '?')} ({r.get('reason', 'no decision observed')}); "
                 f"Twilio asked: {', '.join(s.split(' ')[0] for s in r.get('steps', []))}")
    return 1 if any("error" in r or not r.get("queue") for r in results) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from emoroute.demo import run_demo

    return asyncio.run(run_demo(data=args.data, port=args.port, exit_after=args.exit_after,
                                realtime=args.realtime, data_dir=args.data_dir, synthetic_week=args.synthetic_week))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every ``emoroute`` sub-command."""
    parser = argparse.ArgumentParser(prog="emoroute", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="embedded Redis + server + simulated calls from real audio")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpora root (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", type=Path, default=Path("var/demo"), help="Redis AOF etc. (default: %(default)s)")
    p.add_argument("--realtime", action="store_true", help="stream audio at real-time pace")
    p.add_argument("--exit-after", action="store_true", help="stop after the simulated calls (no serving)")
    p.add_argument("--synthetic-week", action="store_true",
                   help="first write a made-up week of calls (labelled synthetic) to the history store, so the "
                        "analytics page shows a week's figures")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("serve", help="run the server (configuration from EMOROUTE_* environment)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--dev", action="store_true",
                   help="development mode: accept the placeholder secrets (same as EMOROUTE_ENVIRONMENT=development)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("worker", help="transcribe jobs from Redis Streams for web processes in EMOROUTE_ASR_MODE=redis "
                                      "(REDIS_URL: the shared Redis; EMOROUTE_SECRET_KEY: the web processes' key)")
    p.add_argument("--id", help="consumer name (default: host-pid-random)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("archiver", help="move finished calls from Redis to the history store (EMOROUTE_HISTORY_URL; "
                                        "`emoroute serve` runs one itself)")
    p.add_argument("--id", help="consumer name (default: archiver-host-pid-random)")
    p.add_argument("--batch", type=int, default=200, help="calls written per transaction")
    p.add_argument("--claim-idle-ms", type=int, default=30_000,
                   help="take over a batch another archiver held this long without acknowledging it (it died)")
    p.set_defaults(func=_cmd_archiver)

    p = sub.add_parser("simulate", help="act as Twilio: call the server and stream audio files")
    p.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--public-url", help="URL the server signs against (default: --url)")
    p.add_argument("--audio", type=Path, nargs="+", required=True, help="audio file(s), any rate")
    p.add_argument("--calls", type=int, default=1, help="concurrent calls (files are cycled)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--realtime", action="store_true", help="20 ms frames at real-time pace")
    pace.add_argument("--fast", action="store_true", help="as fast as possible (default)")
    p.add_argument("--auth-token", default=os.environ.get("EMOROUTE_TWILIO_AUTH_TOKEN", "dev-auth-token"))
    p.add_argument("--api-token", default=os.environ.get("EMOROUTE_API_TOKEN", "dev-supervisor-token"))
    p.add_argument("--json", action="store_true", help="one JSON object per call")
    flow = p.add_argument_group("the caller's part of the call flow (Twilio's callbacks, signed)")
    flow.add_argument("--press", metavar="KEY", help="press KEY while asked (a menu key, or * to refuse analysis)")
    flow.add_argument("--press-after", type=float, default=1.0, metavar="S", help="... after S s of audio")
    flow.add_argument("--menu-key", metavar="KEY", help="press KEY when the keypad menu is offered (default none)")
    flow.add_argument("--account-digits", default="", help="keyed at identification (default: just #; * refuses)")
    flow.add_argument("--language-key", metavar="KEY", help="press KEY at the language check of a caller taken for "
                                                           "another language (2: they speak English; a language "
                                                           "route's key: that language; default none)")
    flow.add_argument("--agent", help="an agent with this name takes the call (TaskRouter's reservation.accepted); "
                                      "without it the caller hangs up while queued")
    flow.add_argument("--agent-audio", type=Path, help="what the caller says to the agent")
    flow.add_argument("--survey", choices=["1", "2", "3", "4", "5"], help="the post-call survey key")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("classify", help="emotion of audio files (one result per file)")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--telephone", action="store_true", help="pass through 8 kHz mu-law first")
    p.add_argument("--model", type=Path, help="model directory (default: shipped model)")
    p.add_argument("--backend", choices=("whisper-head", "ecapa-whisper", "ecapa", "speechbrain-hub"),
                   default="whisper-head",
                   help="whisper-head: model v3 (default; an ECAPA directory is then read as ecapa-whisper); "
                        "ecapa-whisper: an ECAPA directory's ECAPA-TDNN fused with its Whisper block-1 head; ecapa: "
                        "the ECAPA-TDNN alone; speechbrain-hub: optional wav2vec2 IEMOCAP model")
    p.add_argument("--hub-dir", type=Path, default=Path("models/emotion-recognition-wav2vec2-IEMOCAP"),
                   help="local copy of the speechbrain-hub model (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=_cmd_classify)

    p = sub.add_parser("transcribe", help="what was said in audio files: redacted text, sentiment, intents")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--telephone", action="store_true", help="pass through 8 kHz mu-law first")
    p.add_argument("--engine", choices=("whisper", "pocketsphinx"), default="whisper",
                   help="whisper: Whisper tiny.en (default, as in the service); pocketsphinx")
    p.add_argument("--policy", type=Path, help="policy YAML with the intent phrases (default: the shipped one)")
    p.add_argument("--model-cache-dir", type=Path, default=_model_cache_default(),
                   help="where the example embeddings are cached "
                        "(default: $EMOROUTE_MODEL_CACHE_DIR or ~/.cache/emoroute)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=_cmd_transcribe)

    p = sub.add_parser("prepare-models",
                       help="load and check every model the server "
                            "would load (EMOROUTE_EMOTION_BACKEND, EMOROUTE_EMOTION_MODEL_DIR) loads")
    p.add_argument("--policy", type=Path, help="policy YAML naming the sentence encoder (default: the shipped one)")
    p.add_argument("--model-cache-dir", type=Path, default=_model_cache_default(),
                   help="where to cache the example embeddings "
                        "(default: $EMOROUTE_MODEL_CACHE_DIR or ~/.cache/emoroute)")
    p.set_defaults(func=_cmd_prepare_models)

    p = sub.add_parser("train-intents",
                       help="fit the intent classifier on the policy's examples, validate it and save it")
    p.add_argument("--policy", type=Path, help="policy YAML (default: the shipped one)")
    p.add_argument("--out", type=Path,
                   help="where to write the model (default: the cache the server reads, keyed by the examples)")
    p.add_argument("--model-cache-dir", type=Path, default=_model_cache_default(),
                   help="the server's model cache (default: $EMOROUTE_MODEL_CACHE_DIR or ~/.cache/emoroute)")
    p.add_argument("--json", action="store_true", help="print the validation report as JSON")
    p.set_defaults(func=_cmd_train_intents)

    add_model_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        # the demo prints its own lines (calls, decisions, URLs); -v shows the server's log too
        level=logging.DEBUG if args.verbose else logging.WARNING if args.command in ("classify", "transcribe", "demo")
        else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
