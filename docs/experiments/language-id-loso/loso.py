r"""The language identifier judged speaker by speaker: every speaker left out in turn (issue #30 instrument check).

The #30 figure (mean >= 0.90, none below 0.75) is read on the emotion models' fixed held-out
speakers: for Greek that is one speaker (AESDD S06, 24 clips), for Italian and Arabic two. This
refits the shipped head's recipe (class-balanced logistic regression on Whisper base's 99 language
log-probabilities, C 1; audio_models.training.language_id) once per speaker of the nine corpora,
on every other speaker, and scores the one left out, as the shipped head decides
(``LanguageHead.choose``: Whisper's sure top guess outside the head's languages takes over).
First it refits on the fixed split and checks that the shipped figures come back.

    python -c "from pathlib import Path; from audio_models.training.language_id import extract; \\
        extract(Path('../shared/data'), Path('var/lid-features.npz'))"
    python docs/experiments/language-id-loso/loso.py var/lid-features.npz
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from audio_models.multilingual import LanguageHead  # noqa: E402
from audio_models.training.corpora import held_out_speakers  # noqa: E402


def fit_head(x: np.ndarray, y: np.ndarray, languages: list[str]) -> LanguageHead:
    """The shipped recipe (audio_models.training.language_id.fit)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced").fit((x - mean) / scale, y)
    return LanguageHead(mean, scale, clf.coef_, clf.intercept_, [str(s) for s in clf.classes_], languages)


def decided(head: LanguageHead, x: np.ndarray, languages: list[str]) -> np.ndarray:
    """Return the language the head decides for each row (its override included)."""
    return np.array([head.choose(dict(zip(languages, np.exp(row), strict=True))).code for row in x])


def main() -> None:
    """Print one JSON line: the fixed split reproduced, and per language the speakers left out in turn."""
    z = np.load(sys.argv[1])
    x, languages, meta = z["logp"].astype(np.float64), [str(s) for s in z["languages"]], z["meta"]
    language, speaker = meta[:, 1], meta[:, 2]
    held = np.isin(speaker, sorted({s for group in held_out_speakers().values() for s in group}))
    head = fit_head(x[~held], language[~held], languages)
    pred = decided(head, x[held], languages)
    fixed = {lang: round(float(np.mean(pred[language[held] == lang] == lang)), 3) for lang in sorted(set(language))}
    per_speaker: dict[str, dict[str, float]] = defaultdict(dict)
    for s in sorted(set(speaker)):
        out = speaker == s
        head = fit_head(x[~out], language[~out], languages)
        lang = str(language[out][0])
        per_speaker[lang][str(s)] = round(float(np.mean(decided(head, x[out], languages) == lang)), 3)
    by_language = {lang: {"speakers": len(v), "mean": round(float(np.mean(list(v.values()))), 3),
                          "worst": min(v.values()), "below_0.75": sum(a < 0.75 for a in v.values())}
                   for lang, v in sorted(per_speaker.items())}
    means = [v["mean"] for v in by_language.values()]
    print(json.dumps({"fixed_split": {"by_language": fixed, "mean": round(float(np.mean(list(fixed.values()))), 3)},
                      "leave_one_speaker_out": {"mean_over_languages": round(float(np.mean(means)), 3),
                                                "worst_language": min(means), "by_language": by_language},
                      "per_speaker": per_speaker}))


if __name__ == "__main__":
    main()
