"""The ``emoroute`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("emoroute")


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

    cfg = TrainConfig(
        train_corpora=tuple(args.train_corpora.split(",")),
        test_actors=args.test_actors,
        val_actors=args.val_actors,
        epochs=args.epochs,
        seed=args.seed,
        channels=args.channels,
    )
    if not args.data.is_dir():
        log.error("--data %s is not a directory", args.data)
        return 2
    results = train_emotion(args.data, args.out, cfg, cache_dir=args.cache_dir)
    print(json.dumps(results))  # noqa: T201 - the command's result on stdout
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every ``emoroute`` sub-command."""
    parser = argparse.ArgumentParser(prog="emoroute", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-emotion", help="train the speech-emotion model on ../shared/data")
    p.add_argument("--data", type=Path, required=True, help="corpora root (ravdess/, tess/)")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/emotion-features"),
                   help="where computed features are cached (default: %(default)s)")
    p.add_argument("--train-corpora", default="ravdess,tess", help="comma list (default: %(default)s)")
    p.add_argument("--test-actors", type=_actors, default=(1, 2, 23, 24),
                   help="held-out RAVDESS actors (default: 1,2,23,24)")
    p.add_argument("--val-actors", type=_actors, default=(19, 20),
                   help="RAVDESS validation actors, never trained on (default: 19,20)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--channels", type=int, default=160, help="ECAPA-TDNN width")
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(func=_cmd_train_emotion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
