"""What the command line prints: results on stdout (JSON or lines), errors on stderr."""

from __future__ import annotations

import json
import sys


def out(obj: object) -> None:
    """Print a command's result as one JSON line on stdout."""
    print(json.dumps(obj), flush=True)  # noqa: T201 - the command's result on stdout


def say(text: str) -> None:
    """Print a human-readable line on stdout."""
    print(text, flush=True)  # noqa: T201 - human-readable command output


def err(text: str) -> None:
    """Print an error line on stderr."""
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - one-line error per bad file
