"""The multilingual path's confidence floors on real Polish speakers and on stretches with no caller (#30).

Decodes 10 neutral nEMO clips of each of its 9 speakers and 40 three-second stretches with no
caller in them (babble of four RAVDESS talkers, music, street noise), all through the 8 kHz mu-law
line, with multilingual Whisper base in Polish (transcribe and translate from one encoding, as
audio_models/multilingual.py does), keeps each decode's confidence, and scores pairs of floors
(own words, translation): real clips returned, their CER, no-caller stretches returned with text.

    cd docs/experiments/languages-instrument && python floors.py > floors.log
    python floors.py --compression-ratio 2.4 > floors-compression.log
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_speakers import PER_SPEAKER, cer  # noqa: E402

from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.multilingual import MultilingualWhisper  # noqa: E402
from audio_models.transcribe import MIN_SPEECH_RATIO, finish_segments, speech_ratio  # noqa: E402
from benchmarks.noisy_lines import babble, music, street  # noqa: E402

DATA = Path(os.environ.get("EMOROUTE_CORPORA", REPO.parent / "shared" / "data"))
OWN = (0.30, 0.25, 0.20, 0.15, 0.10)
TRANSLATION = (0.30, 0.20, 0.10, 0.0)


RATIO: float | None = None  # --compression-ratio: a text compressing better than this is a failed decode


def compression_ratio(text: str) -> float:
    """Return Whisper's compression ratio: UTF-8 bytes over zlib-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def decode(whisper: MultilingualWhisper, wave: np.ndarray) -> dict | None:
    """Return both decodes' text and confidence (None when the audio is turned away before decoding)."""
    if speech_ratio(wave) < MIN_SPEECH_RATIO:
        return None
    whisper.min_confidence = 0.0
    seg = whisper.transcribe(wave, "pl")
    if not seg.original and not seg.text:
        return {"own": "", "own_conf": seg.confidence, "translation": "", "translation_conf": 0.0}
    # the translation's own confidence: decoded again alone (the same beam, the same encoding)
    english = whisper_translation_confidence(whisper, wave)
    return {"own": seg.original, "own_conf": seg.confidence, "translation": seg.text, "translation_conf": english}


def whisper_translation_confidence(whisper: MultilingualWhisper, wave: np.ndarray) -> float:
    """Return the confidence of Whisper base's English translation of ``wave`` (floor 0)."""
    from faster_whisper.transcribe import get_suppressed_tokens

    from audio_models.multilingual import (
        MAX_TOKENS,
        MAX_WINDOW_FRAMES,
        MIN_WINDOW_FRAMES,
        SAMPLE_RATE,
        TOKENS_PER_SECOND,
        _Decoded,
    )

    frames = min(MAX_WINDOW_FRAMES, max(MIN_WINDOW_FRAMES, int(len(wave) / SAMPLE_RATE * 100) + 100))
    encoded = whisper._encode(wave, frames)
    tok = whisper._tokenizer("pl", "translate")
    prompt = whisper._model.get_prompt(tok, [], without_timestamps=True)
    result = whisper._model.model.generate(
        encoded, [prompt], beam_size=whisper.beam_size, length_penalty=1.0,
        max_length=len(prompt) + min(MAX_TOKENS, int(TOKENS_PER_SECOND * len(wave) / SAMPLE_RATE) + 8),
        return_scores=True, return_no_speech_prob=True, suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tok, [-1]))[0]
    tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
    seg = finish_segments([_Decoded(tok.decode(tokens).strip(), 0.0, len(wave) / SAMPLE_RATE,
                                    result.scores[0] * len(tokens) / (len(tokens) + 1), 0.0)], 0.0, "x")
    return seg.confidence if seg.text else 0.0


def kept(d: dict | None, own: float, translation: float) -> bool:
    """Return whether a decode comes back under these floors (both texts present, both confident enough)."""
    if RATIO is not None and d is not None and max(compression_ratio(d["own"]),
                                                   compression_ratio(d["translation"])) > RATIO:
        return False
    return d is not None and bool(d["own"]) and d["own_conf"] >= own and bool(d["translation"]) and \
        d["translation_conf"] >= translation


def main() -> None:
    """Decode, score every pair of floors, print the JSON line."""
    global RATIO
    if "--compression-ratio" in sys.argv:
        RATIO = float(sys.argv[sys.argv.index("--compression-ratio") + 1])
    torch.set_num_threads(1)
    whisper = MultilingualWhisper(languages=["pl"])
    rows = [r for r in csv.DictReader((DATA / "nemo" / "labels.tsv").open(encoding="utf-8"), delimiter="\t")
            if r["emotion"] == "neutral"]
    chosen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if len(chosen[row["speaker"]]) < PER_SPEAKER:
            chosen[row["speaker"]].append(row)
    real = []
    for speaker_rows in chosen.values():
        for row in speaker_rows:
            real.append((row["text"], decode(whisper, telephone_round_trip(load_audio(DATA / "nemo" / row["file"])))))
    rng = np.random.default_rng(7)
    n = 3 * 16000
    talkers = babble(DATA, 20 * n)
    stretches = [talkers[i * n:(i + 1) * n] for i in range(20)]
    tune = music(10 * n)
    stretches += [tune[i * n:(i + 1) * n] for i in range(10)]
    stretches += [street(n, rng) for _ in range(10)]
    none = [decode(whisper, telephone_round_trip(0.1 * s / (np.abs(s).max() + 1e-9))) for s in stretches]
    table = []
    for own in OWN:
        for trans in TRANSLATION:
            returned = [(text, d) for text, d in real if kept(d, own, trans)]
            table.append({"own": own, "translation": trans, "real_returned": len(returned),
                          "real_cer_all": round(float(np.mean([cer(t, d["own"]) if kept(d, own, trans) else 1.0
                                                               for t, d in real])), 3),
                          "real_cer_returned": round(float(np.mean([cer(t, d["own"]) for t, d in returned])), 3)
                          if returned else math.nan,
                          "no_caller_with_text": sum(kept(d, own, trans) for d in none)})
    print(json.dumps({"experiment": "multilingual_floors", "compression_ratio": RATIO, "real_clips": len(real),
                      "no_caller_stretches": len(none),
                      "table": table,
                      "no_caller_examples": [d for d in none if d and d["own"]][:10],
                      "no_caller_returned": [d for d in none if kept(d, 0.3, 0.3)],
                      "real_dropped_by_ratio": [d for _, d in real if RATIO is not None and d is not None and
                                                max(compression_ratio(d["own"]),
                                                    compression_ratio(d["translation"])) > RATIO]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
