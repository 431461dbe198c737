"""Whisper base hearing real Polish speakers against espeak-ng reading the same sentences (issue #30).

10 neutral clips from each of nEMO's 9 speakers (the first in labels.tsv order) and espeak-ng's
Polish voices m1, f2, m3 reading the same sentences, all through the 8 kHz mu-law line, are
transcribed by multilingual Whisper base in Polish (the language given, as the shipped path does
once a call's language is known). Prints one JSON line: character error rate (lower case, no
punctuation) per source, mean and median, and empty transcripts. Needs espeak-ng and sox.

    cd docs/experiments/languages-instrument && python real_speakers.py > real_speakers.log
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.multilingual import MultilingualWhisper  # noqa: E402

NEMO = Path(os.environ.get("EMOROUTE_CORPORA", REPO.parent / "shared" / "data")) / "nemo"
PER_SPEAKER = 10


def normalise(text: str) -> str:
    """Lower case, letters and spaces only."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def cer(reference: str, hypothesis: str) -> float:
    """Character edit distance over the reference's length."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def neutral_rows(nemo: Path = NEMO) -> dict[str, list[dict[str, str]]]:
    """Return nEMO's first PER_SPEAKER neutral rows of labels.tsv per speaker (the clips this check reads)."""
    rows = [r for r in csv.DictReader((nemo / "labels.tsv").open(encoding="utf-8"), delimiter="\t")
            if r["emotion"] == "neutral"]
    chosen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if len(chosen[row["speaker"]]) < PER_SPEAKER:
            chosen[row["speaker"]].append(row)
    return chosen


def main() -> None:
    """Transcribe both sources, print the JSON line."""
    torch.set_num_threads(1)
    whisper = MultilingualWhisper(languages=["pl"])
    chosen = neutral_rows()
    scores: dict[str, list[float]] = defaultdict(list)
    empty: dict[str, int] = defaultdict(int)
    examples = []
    with tempfile.TemporaryDirectory() as tmp:
        raw, line = Path(tmp) / "raw.wav", Path(tmp) / "line.wav"
        for speaker_rows in chosen.values():
            for row in speaker_rows:
                sources = {"nemo": telephone_round_trip(load_audio(NEMO / row["file"]))}
                for variant in ("m1", "f2", "m3"):
                    subprocess.run(["espeak-ng", "-v", f"pl+{variant}", "-w", str(raw), row["text"]], check=True,
                                   capture_output=True)
                    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law", str(line)], check=True,
                                   capture_output=True)
                    sources[f"espeak-{variant}"] = load_audio(line)
                for name, wave in sources.items():
                    said = whisper.transcribe(wave, "pl")
                    family = "nemo" if name == "nemo" else "espeak-ng"
                    scores[family].append(cer(row["text"], said.original))
                    empty[family] += not said.original
                    if len(examples) < 12 and name in ("nemo", "espeak-m1"):
                        examples.append({"source": name, "text": row["text"], "heard": said.original,
                                         "translation": said.text})
    print(json.dumps({"experiment": "real_polish_speakers", "clips_per_source": {k: len(v) for k, v in scores.items()},
                      "cer_mean": {k: round(float(np.mean(v)), 3) for k, v in scores.items()},
                      "cer_median": {k: round(float(np.median(v)), 3) for k, v in scores.items()},
                      "empty": dict(empty), "examples": examples}, ensure_ascii=False))


if __name__ == "__main__":
    main()
