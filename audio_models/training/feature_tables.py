"""Per-clip feature tables of the nine corpora, cached: what emotion v3's head and its judges read.

Every labelled 4-class clip is heard as a caller would be heard (the 8 kHz mu-law round trip,
edge silence trimmed, ``prepare_waveform``), then reduced once to:

- the mean hidden state of every encoder block of Whisper tiny.en (convolutions + 4 blocks, 384),
- the mean hidden state of the convolutions and the first ``BASE_BLOCKS`` blocks of the
  multilingual Whisper base (512; only the blocks that fit the speed budget are run),
- the 24 prosody statistics of ``audio_models.prosody``.

One ``.npz`` per corpus and source under ``cache_dir`` (keyed by the clip list), so training a
head or scoring a leave-one-corpus-out fold never runs an encoder again.

    python -m audio_models.training.feature_tables --data ../shared/data --source base
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.emotion_types import prepare_waveform
from audio_models.prosody import prosody_features
from audio_models.training.corpora import ALL_CORPORA, Clip, list_corpora
from audio_models.training.features import clip_variants

log = logging.getLogger(__name__)
SOURCES = ("tiny.en", "base", "prosody")
BASE_BLOCKS = 3  # base's blocks 1-3 take about 50 ms per 3 s utterance on one core; 4-6 would not fit
_BATCH = 16


def caller_wave(clip: Clip) -> np.ndarray:
    """Return the clip as the live path hears it: phone round trip, trimmed, conditioned."""
    return prepare_waveform(clip_variants(load_audio(clip.path), 1, 0)[0])


def _embedder(source: str):  # noqa: ANN202 - WhisperLayerEmbedder, imported lazily (torch start-up)
    from audio_models.whisper_encoder import WhisperLayerEmbedder

    return WhisperLayerEmbedder(4 if source == "tiny.en" else BASE_BLOCKS, encoder=source)


def _compute(clips: list[Clip], source: str) -> np.ndarray:
    if source == "prosody":
        return np.stack([prosody_features(caller_wave(c)) for c in clips]).astype(np.float32)
    embedder = _embedder(source)
    parts = []
    for start in range(0, len(clips), _BATCH):
        waves = [caller_wave(c) for c in clips[start:start + _BATCH]]
        parts.append(embedder.embed_batch(waves, all_blocks=True))
    return np.concatenate(parts).astype(np.float32)


def corpus_table(data: Path, corpus: str, source: str, cache_dir: Path) -> tuple[list[Clip], np.ndarray]:
    """Return (clips, features) of one corpus for ``source`` ("tiny.en", "base" or "prosody"), cached."""
    if source not in SOURCES:
        raise ValueError(f"unknown feature source {source!r}; choose one of {', '.join(SOURCES)}")
    clips = list_corpora(data, (corpus,))
    tag = hashlib.sha1("|".join(c.key for c in clips).encode()).hexdigest()[:12]
    path = cache_dir / f"{corpus}-{source}-{tag}.npy"
    if path.is_file():
        return clips, np.load(path)
    started = time.time()
    table = _compute(clips, source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, table)
    tmp.replace(path)
    log.info("%s %s: %d clips in %.0f s", corpus, source, len(clips), time.time() - started)
    return clips, table


def all_tables(data: Path, sources: tuple[str, ...], cache_dir: Path,
               corpora: tuple[str, ...] = ALL_CORPORA) -> tuple[list[Clip], dict[str, np.ndarray]]:
    """Return every clip of ``corpora`` and, per source, its feature rows in the same order."""
    clips: list[Clip] = []
    tables: dict[str, list[np.ndarray]] = {s: [] for s in sources}
    for corpus in corpora:
        for source in sources:
            found, table = corpus_table(data, corpus, source, cache_dir)
            tables[source].append(table)
        clips += found
    return clips, {s: np.concatenate(t) for s, t in tables.items()}


def main() -> None:
    """Fill the cache for the sources asked for."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the corpora folder (shared/data)")
    ap.add_argument("--source", default="tiny.en,prosody,base", help="comma list of " + ", ".join(SOURCES))
    ap.add_argument("--corpora", default=",".join(ALL_CORPORA))
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/emotion-features"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    for corpus in args.corpora.split(","):
        for source in args.source.split(","):
            corpus_table(args.data, corpus, source, args.cache_dir)


if __name__ == "__main__":
    main()
