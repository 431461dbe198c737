"""Command-line pieces shared by the benchmarks that score one ECAPA model directory."""

from __future__ import annotations

import argparse
from pathlib import Path


def model_dir_parser(doc: str | None, cache_dir: str) -> argparse.ArgumentParser:
    """Return a parser with --data, --model-dir (required) and --cache-dir (default ``cache_dir``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="corpora root (default: %(default)s)")
    ap.add_argument("--model-dir", type=Path, required=True, help="ECAPA model directory (hparams.yaml, model.ckpt)")
    ap.add_argument("--cache-dir", type=Path, default=Path(cache_dir), help="where features are cached")
    return ap
