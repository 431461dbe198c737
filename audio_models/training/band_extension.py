"""Training the recogniser's band extender (``emoroute train-band-extender``).

Real speech only: every RAVDESS clip of the training actors (all eight emotions: how a voice
sounds above 4 kHz is not an emotion label) and every TESS clip except the transcription
benchmark's sample (every 16th clip of ``list_tess``). RAVDESS's held-out actors 1, 2, 23 and 24
are never read; validation actors 19 and 20 only measure the loss. Each clip's Whisper
log-mel features at full band are the target for the same clip through the 8 kHz mu-law line.
Features are computed once and cached.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from audio_models.band_extension import N_MELS, MelBandExtender, build_network

HELD_OUT_ACTORS = frozenset({"01", "02", "23", "24"})
VAL_ACTORS = frozenset({"19", "20"})
TESS_BENCHMARK_EVERY = 16  # benchmarks/transcription_benchmark.py's TESS sample, never trained on
CROP_FRAMES = 128
BATCH = 32


def band_extension_clips(data: Path) -> list[tuple[Path, str]]:
    """Return (path, 'train' | 'val') for every clip the band extender may learn from or be validated on."""
    from audio_models.training.corpora import list_tess

    clips: list[tuple[Path, str]] = []
    for path in sorted((data / "ravdess").glob("Actor_*/*.flac")):
        actor = path.parent.name.removeprefix("Actor_")
        if actor not in HELD_OUT_ACTORS:
            clips.append((path, "val" if actor in VAL_ACTORS else "train"))
    benchmark_sample = {c.path for c in list_tess(data)[::TESS_BENCHMARK_EVERY]}
    clips += [(p, "train") for p in sorted((data / "tess").glob("*/*.flac")) if p not in benchmark_sample]
    return clips


def _features(clips: list[tuple[Path, str]], cache_dir: Path) -> dict[str, np.ndarray]:
    """Return (and cache) the narrowband and wideband Whisper features of ``clips``, frames first."""
    from faster_whisper.feature_extractor import FeatureExtractor

    from audio_models.audio_io import load_audio
    from audio_models.g711 import telephone_round_trip

    key = hashlib.sha1("\n".join(f"{p.parent.name}/{p.name}" for p, _ in clips).encode()).hexdigest()[:12]
    cache = cache_dir / f"band-features-{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    extractor = FeatureExtractor(feature_size=N_MELS)
    narrow, wide, lengths = [], [], []
    for path, _ in clips:
        wave = load_audio(path)
        full, phone = extractor(wave), extractor(telephone_round_trip(wave))
        n = min(full.shape[1], phone.shape[1])
        wide.append(full[:, :n].T.astype(np.float16))
        narrow.append(phone[:, :n].T.astype(np.float16))
        lengths.append(n)
    out = {"narrow": np.concatenate(narrow), "wide": np.concatenate(wide), "lengths": np.array(lengths),
           "split": np.array([s for _, s in clips])}
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, narrow=out["narrow"], wide=out["wide"], lengths=out["lengths"], split=out["split"])
    return out


def train_band_extender(data: Path, out: Path, *, cache_dir: Path, steps: int = 6000, hidden: int = 256,
                        low_bin: int = 58, seed: int = 0, threads: int = 2) -> dict[str, Any]:
    """Train, write ``out`` (weights, config.json, training_log.txt) and return the summary."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.set_num_threads(threads)
    clips = band_extension_clips(data)
    if not clips:
        raise ValueError(f"{data}: no RAVDESS or TESS clips found (expected ravdess/Actor_*/ and tess/*/)")
    feats = _features(clips, cache_dir)
    narrow, wide, lengths, split = feats["narrow"], feats["wide"], feats["lengths"], feats["split"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    train = np.array([i for i in range(len(lengths)) if split[i] == "train" and lengths[i] >= CROP_FRAMES])
    val = [i for i in range(len(lengths)) if split[i] == "val"]
    if len(train) == 0:
        raise ValueError(f"{data}: no training clip of at least {CROP_FRAMES / 100:.2f} s")

    def clip(arr: np.ndarray, i: int, start: int = 0, n: int | None = None) -> np.ndarray:
        n = lengths[i] - start if n is None else n
        return arr[starts[i] + start:starts[i] + start + n].T.astype(np.float32)

    def val_mse(model: Any) -> float:
        if not val:
            return float("nan")
        err = count = 0.0
        with torch.inference_mode():
            for i in val:
                pred = model(torch.from_numpy(clip(narrow, i)[None]))[0].numpy()
                err += float(((pred - clip(wide, i)[low_bin:]) ** 2).sum())
                count += pred.size
        return err / count

    empty_band_mse = (float(np.mean([((clip(narrow, i)[low_bin:] - clip(wide, i)[low_bin:]) ** 2).mean() for i in val]))
                      if val else float("nan"))
    network = build_network(low_bin, hidden)
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    log = [f"clips: {int((split == 'train').sum())} train, {len(val)} validation; "
           f"validation MSE with the band left empty: {empty_band_mse:.4f}"]
    began = time.time()
    for step in range(steps):
        xs, ys = [], []
        for i in rng.choice(train, BATCH):
            start = int(rng.integers(0, lengths[i] - CROP_FRAMES + 1))
            xs.append(clip(narrow, i, start, CROP_FRAMES))
            ys.append(clip(wide, i, start, CROP_FRAMES)[low_bin:])
        loss = ((network(torch.from_numpy(np.stack(xs))) - torch.from_numpy(np.stack(ys))) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 500 == 0 or step == steps - 1:
            network.eval()
            log.append(f"step {step}: train MSE {loss.item():.4f}, validation MSE {val_mse(network):.4f} "
                       f"({time.time() - began:.0f} s)")
            network.train()
    network.eval()
    summary = {"low_bin": low_bin, "hidden": hidden, "steps": steps, "seed": seed,
               "train_clips": int(len(train)), "val_clips": len(val),
               "val_mse": round(val_mse(network), 4), "val_mse_band_left_empty": round(empty_band_mse, 4),
               "trained_on": "RAVDESS actors 3-18, 21, 22 (all emotions) and TESS minus every 16th clip of the "
                             "4-class list; validation RAVDESS actors 19, 20; wideband targets for 8 kHz mu-law inputs"}
    MelBandExtender(network, low_bin, summary).save(out)
    (out / "training_log.txt").write_text("\n".join(log) + "\n")
    return summary
