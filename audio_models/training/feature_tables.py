"""Per-clip feature tables of the nine corpora, cached: what emotion v3's head and its judges read.

Every labelled 4-class clip is heard as a caller would be heard (the 8 kHz mu-law round trip,
edge silence trimmed, ``prepare_waveform``), then reduced once to:

- the mean hidden state of every encoder block of Whisper tiny.en (convolutions + 4 blocks, 384),
- the mean hidden state of the convolutions and the first ``BASE_BLOCKS`` blocks of the
  multilingual Whisper base (512; only the blocks that fit the speed budget are run),
- the 24 prosody statistics of ``audio_models.prosody``.

One ``.npz`` per corpus and source under ``cache_dir`` (keyed by the clip list), so training a
head or scoring a leave-one-corpus-out fold never runs an encoder again.

``noisy``: the same clips with background mixed in before the line (``augment.noisy_copy``: babble
of four training speakers of the same corpus, or coloured noise, 5-25 dB; one seeded draw per
clip), the tables emotion v3n also trains on (docs/experiments/2026-12-07-emotion-v3-noisy-rule.md).

    python -m audio_models.training.feature_tables --data ../shared/data --source base
    python -m audio_models.training.feature_tables --data ../shared/data --source tiny.en,prosody --noisy
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
from audio_models.training.augment import noisy_copy
from audio_models.training.corpora import ALL_CORPORA, Clip, held_out_speakers, list_corpora
from audio_models.training.features import clip_variants

log = logging.getLogger(__name__)
SOURCES = ("tiny.en", "base", "prosody")
BASE_BLOCKS = 3  # base's blocks 1-3 take about 50 ms per 3 s utterance on one core; 4-6 would not fit
_BATCH = 16
BABBLE_POOL = 40  # talkers per corpus the noisy tables draw their babble from
# the noisy-lines benchmark's babble is RAVDESS actors 5-8: never a training talker
BENCHMARK_BABBLE = frozenset(f"ravdess-{a:02d}" for a in range(5, 9))


def caller_wave(clip: Clip, talkers: dict[str, list[np.ndarray]] | None = None) -> np.ndarray:
    """Return the clip as the live path hears it: phone round trip, trimmed, conditioned.

    With ``talkers`` (speaker -> speech), the clip is first put on a noisy line: its own seeded
    draw of ``augment.noisy_copy`` with babble of talkers other than its speaker.
    """
    wave = load_audio(clip.path)
    if talkers is not None:
        rng = np.random.default_rng(int(hashlib.sha1(clip.key.encode()).hexdigest()[:8], 16))
        others = [w for speaker, waves in talkers.items() if speaker != clip.speaker for w in waves]
        wave = noisy_copy(wave, rng, others)
    return prepare_waveform(clip_variants(wave, 1, 0)[0])


def babble_talkers(clips: list[Clip]) -> dict[str, list[np.ndarray]]:
    """Return up to ``BABBLE_POOL`` clips' active speech by speaker: training speakers of these clips only."""
    held = {s for group in held_out_speakers().values() for s in group} | BENCHMARK_BABBLE
    pool = [c for c in sorted(clips, key=lambda c: c.key) if c.speaker not in held]
    chosen = [pool[i] for i in np.random.default_rng(7).permutation(len(pool))[:BABBLE_POOL]]
    out: dict[str, list[np.ndarray]] = {}
    for clip in chosen:
        wave = load_audio(clip.path)
        frames = wave[: len(wave) // 320 * 320].reshape(-1, 320)
        power = (frames**2).mean(axis=1)
        if len(power) and power.max() > 0:
            out.setdefault(clip.speaker, []).append(frames[power > power.max() * 1e-3].ravel())
    return out


def _embedder(source: str):  # noqa: ANN202 - WhisperLayerEmbedder, imported lazily (torch start-up)
    from audio_models.whisper_encoder import WhisperLayerEmbedder

    return WhisperLayerEmbedder(4 if source == "tiny.en" else BASE_BLOCKS, encoder=source)


def _compute(clips: list[Clip], source: str, talkers: dict[str, list[np.ndarray]] | None = None) -> np.ndarray:
    if source == "prosody":
        return np.stack([prosody_features(caller_wave(c, talkers)) for c in clips]).astype(np.float32)
    embedder = _embedder(source)
    parts = []
    for start in range(0, len(clips), _BATCH):
        waves = [caller_wave(c, talkers) for c in clips[start:start + _BATCH]]
        parts.append(embedder.embed_batch(waves, all_blocks=True))
    return np.concatenate(parts).astype(np.float32)


def corpus_table(data: Path, corpus: str, source: str, cache_dir: Path,
                 noisy: bool = False) -> tuple[list[Clip], np.ndarray]:
    """Return (clips, features) of one corpus for ``source`` ("tiny.en", "base" or "prosody"), cached.

    ``noisy``: the clips on noisy lines (see the module docstring) instead of clean ones.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown feature source {source!r}; choose one of {', '.join(SOURCES)}")
    clips = list_corpora(data, (corpus,))
    tag = hashlib.sha1("|".join(c.key for c in clips).encode()).hexdigest()[:12]
    path = cache_dir / f"{corpus}-{source}{'-noisy' if noisy else ''}-{tag}.npy"
    if path.is_file():
        return clips, np.load(path)
    started = time.time()
    table = _compute(clips, source, babble_talkers(clips) if noisy else None)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, table)
    tmp.replace(path)
    log.info("%s %s%s: %d clips in %.0f s", corpus, source, " (noisy)" if noisy else "", len(clips),
             time.time() - started)
    return clips, table


def all_tables(data: Path, sources: tuple[str, ...], cache_dir: Path, corpora: tuple[str, ...] = ALL_CORPORA,
               noisy: bool = False) -> tuple[list[Clip], dict[str, np.ndarray]]:
    """Return every clip of ``corpora`` and, per source, its rows in the same order (``noisy``: on noisy lines)."""
    clips: list[Clip] = []
    tables: dict[str, list[np.ndarray]] = {s: [] for s in sources}
    for corpus in corpora:
        for source in sources:
            found, table = corpus_table(data, corpus, source, cache_dir, noisy)
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
    ap.add_argument("--noisy", action="store_true", help="the clips on noisy lines (emotion v3n's extra tables)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    for corpus in args.corpora.split(","):
        for source in args.source.split(","):
            corpus_table(args.data, corpus, source, args.cache_dir, args.noisy)


if __name__ == "__main__":
    main()
