"""How many tokens CTranslate2's Whisper writes for a given ``max_length`` and prompt (issue #30).

One 3.8 s Polish request (mbrola's pl1 voice through the phone line, made by this script with
espeak-ng, mbrola-pl1 and sox), decoded by the multilingual Whisper base with the bare prompt (the
4 task tokens) and with 20 tokens of vocabulary before it, at rising ``max_length``. Prints, per
prompt, (max_length, tokens written). On CTranslate2 4.8.5 here: 4-token prompt [(6, 3), (9, 4),
(12, 6), (15, 7), (18, 9), (21, 10), (24, 12), (27, 13)]; 24-token prompt [(26, 3), (29, 6),
(32, 9), (35, 12), (38, 15), (41, 18), (44, 19), ...]: min(max_length - prompt + 1, max_length // 2).

    PYTHONPATH=. python docs/experiments/multilingual-token-budget/ct2_length.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper.transcribe import get_suppressed_tokens

from audio_models.audio_io import load_audio
from audio_models.multilingual import MultilingualWhisper

SENTENCE = "Chciałbym zrezygnować z umowy na internet od przyszłego miesiąca."


def main() -> None:
    """Print the table."""
    whisper = MultilingualWhisper(languages=["pl"])
    with tempfile.TemporaryDirectory() as tmp:
        raw, line = Path(tmp) / "raw.wav", Path(tmp) / "line.wav"
        subprocess.run(["espeak-ng", "-v", "mb-pl1", "-w", str(raw), SENTENCE], check=True, capture_output=True)
        subprocess.run(["sox", "-G", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law", str(line)], check=True,
                       capture_output=True)
        wave = load_audio(line)
    encoded = np.asarray(whisper._encode(wave, 1500))
    tok = whisper._tokenizer("pl", "transcribe")
    for previous in ([], tok.encode(" faktura umowa internet telefon rachunek reklamacja abonament")):
        prompt = whisper._model.get_prompt(tok, previous, without_timestamps=True)
        written = []
        for max_length in range(len(prompt) + 2, len(prompt) + 24, 3):
            result = whisper._model.model.generate(
                ctranslate2.StorageView.from_array(encoded), [prompt], beam_size=5, max_length=max_length,
                suppress_blank=True, suppress_tokens=get_suppressed_tokens(tok, [-1]))
            written.append((max_length, len(result[0].sequences_ids[0])))
        print(f"prompt of {len(prompt)} tokens: {written}")


if __name__ == "__main__":
    main()
