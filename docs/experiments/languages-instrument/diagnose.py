"""Where intents from other languages are lost: identification, the voice, or the phone line (issue #30).

The headline (benchmarks/intents_languages.py) reads the 36 Spanish, Italian and Polish caller
requests in three espeak-ng voices through the 8 kHz line: language identified 0.426, exact intent
0.287. This diagnostic separates the causes. Each sentence is synthesised afresh by espeak-ng
(m1, f2, m3; Debian's MBROLA diphone voices, closer to real speakers, are not installable here:
the apt sources carry neither mbrola nor its voices) and read under three conditions:

* ``line``: through the 8 kHz mu-law line, the language identified as a call does (the headline);
* ``line_known``: through the line, the caller's language given (as a keypad choice would);
* ``wide_known``: the synthesiser's own 16 kHz audio, the language given (no phone line).

Prints one JSON line: per voice family and condition, the share identified (``line`` only) and
exact intent / queue group from the translation. Needs espeak-ng and sox.

    python docs/experiments/languages-instrument/diagnose.py > docs/experiments/languages-instrument/diagnose.log
"""

from __future__ import annotations

import csv
import json
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
from audio_models.multilingual import load_multilingual  # noqa: E402
from benchmarks.common import shipped_recogniser  # noqa: E402
from benchmarks.transcription_benchmark import primary_intent  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import load_text_analyser  # noqa: E402

DATA = REPO / "benchmarks" / "data" / "intents_languages"
VOICES = {  # family -> language -> espeak-ng voice names
    "espeak-ng": {lang: [f"{lang}+m1", f"{lang}+f2", f"{lang}+m3"] for lang in ("es", "it", "pl")},
}


def synthesise(voice: str, text: str, folder: Path) -> tuple[Path, Path]:
    """Return (16 kHz wide-band WAV, 8 kHz mu-law WAV) of ``text`` in ``voice``."""
    raw, wide, line = folder / "raw.wav", folder / "wide.wav", folder / "line.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wide)], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law", str(line)], check=True,
                   capture_output=True)
    return wide, line


def main() -> None:
    """Synthesise, transcribe under the three conditions, print the JSON line."""
    torch.set_num_threads(1)
    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    transcriber = load_multilingual(shipped_recogniser(), policy.languages.routes,
                                    min_probability=policy.languages.min_probability)
    order = list(policy.text.intent_routes)
    queue_of = {name: route.queue for name, route in policy.text.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    rows = list(csv.DictReader((DATA / "sentences.csv").open(encoding="utf-8")))
    tally: dict[str, list[bool]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            lang = row["language"]
            for family, by_language in VOICES.items():
                for voice in by_language[lang]:
                    wide, line = synthesise(voice, row["text"], Path(tmp))
                    line_wave, wide_wave = load_audio(line), load_audio(wide)
                    decided = transcriber.transcribe(line_wave)
                    heard_as = decided.language if decided.language_probability >= \
                        policy.languages.min_probability else "en"
                    tally[f"{family}|line|identified"].append(heard_as == lang)
                    for condition, seg in (("line", decided),
                                           ("line_known", transcriber.transcribe(line_wave, lang)),
                                           ("wide_known", transcriber.transcribe(wide_wave, lang))):
                        pred = primary_intent(analyser, seg.text, order, seg.alternatives)
                        for key in (f"{family}|{condition}", f"{family}|{condition}|{lang}"):
                            tally[f"{key}|exact"].append(pred == label)
                            tally[f"{key}|queue"].append(queue_of[pred] == row["queue"])
    print(json.dumps({"experiment": "languages_instrument", "sentences": len(rows), "voices": VOICES,
                      "figures": {key: round(float(np.mean(v)), 3) for key, v in sorted(tally.items())},
                      "counts": {key: len(v) for key, v in sorted(tally.items()) if key.endswith("exact")}}))


if __name__ == "__main__":
    main()
