"""The multilingual path's decoding budget per language: measured, then judged (issue #30).

``measure``: 40 clips per corpus of the six other languages' real speakers who are *not* held out
(a fixed stride, every class), through the 8 kHz mu-law line, transcribed in the corpus language with
the bound lifted to MAX_TOKENS; one JSON line of each language's tokens a second (95th percentile,
rounded up). ``judge RATES_JSON``: the held-out speakers' clips (up to 15 each) and nEMO's 90 neutral
clips of languages-instrument/real_speakers.py, transcribed with the old bound and with the rates:
cut transcripts, nEMO's CER, seconds per utterance on one core. Rule:
docs/experiments/2026-12-07-multilingual-token-budget-rule.md.

    PYTHONPATH=. python docs/experiments/multilingual-token-budget/rates.py measure > rates.jsonl
    PYTHONPATH=. python docs/experiments/multilingual-token-budget/rates.py judge '{"pl": 8, ...}'
    PYTHONPATH=. python docs/experiments/multilingual-token-budget/rates.py judge '{}'   # try 2: the length alone
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs" / "experiments" / "languages-instrument"))

from real_speakers import cer, neutral_rows  # noqa: E402

from audio_models import multilingual  # noqa: E402
from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.multilingual import MultilingualWhisper  # noqa: E402
from audio_models.training.corpora import held_out_speakers, list_corpora  # noqa: E402
from audio_models.training.language_id import CORPUS_LANGUAGE  # noqa: E402
from audio_models.transcribe import MAX_TOKENS, SAMPLE_RATE  # noqa: E402

DATA = Path(os.environ.get("EMOROUTE_CORPORA", REPO.parent / "shared" / "data"))
CORPORA = ("nemo", "ased", "bangla", "eyase", "emovo", "aesdd")
PROMPT = 4  # the multilingual path's prompt: start, language, task, no timestamps


def old_limit(prompt_length: int, max_new: int) -> int:
    """The generation length as shipped before this record (halved by CTranslate2 behind a short prompt)."""
    return prompt_length + max_new


def repaired_limit(prompt_length: int, max_new: int) -> int:
    """The repair judged here (shipped since try 2: audio_models.multilingual.generation_length)."""
    return max(prompt_length + max_new, 2 * max_new)


def stride(clips: list, n: int) -> list:
    """Every len/n-th clip, n at most."""
    return clips[:: max(1, len(clips) // n)][:n]


class Counting:
    """Whisper's CTranslate2 model, noting how many tokens each decode of the caller's words wrote.

    Re-encoding the text undercounts them: the decoder often spells a word in more, smaller
    pieces than the tokenizer would (the first measurement, ``rates-reencoded.jsonl``, did that).
    """

    def __init__(self, model: object) -> None:
        self.model, self.counts = model, []

    @property
    def written(self) -> int:
        """Tokens of the caller's own words in the last transcription (its first decode)."""
        return self.counts[0] if self.counts else 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def generate(self, *args: object, **kwargs: object) -> list:
        """Decode as the model does, keeping the first item's token count."""
        results = self.model.generate(*args, **kwargs)  # type: ignore[attr-defined]
        self.counts.append(len(results[0].sequences_ids[0]))  # the first item of each decode
        return results


def counted(whisper: MultilingualWhisper) -> Counting:
    """Wrap ``whisper``'s model so that each transcription's written token count is kept."""
    counter = Counting(whisper._model.model)
    whisper._model.model = counter
    return counter


def measure(whisper: MultilingualWhisper) -> None:
    """Print each language's rate from the speakers not held out."""
    held = {s for speakers in held_out_speakers().values() for s in speakers}
    whisper.token_rates = {lang: 10_000.0 for lang in CORPUS_LANGUAGE.values()}
    counter = counted(whisper)
    for corpus in CORPORA:
        lang = CORPUS_LANGUAGE[corpus]
        clips = stride([c for c in list_corpora(DATA, (corpus,)) if c.speaker not in held], 40)
        rates, empty, capped = [], 0, 0
        for clip in clips:
            wave = telephone_round_trip(load_audio(clip.path))
            counter.counts = []
            said = whisper.transcribe(wave, lang).original
            if not said:
                empty += 1
                continue
            n = counter.written
            capped += n >= MAX_TOKENS - 2
            rates.append(n / (len(wave) / SAMPLE_RATE))
        print(json.dumps({"language": lang, "corpus": corpus, "clips": len(clips), "kept": len(rates), "empty": empty,
                          "at_max_tokens": capped, "rate_p50": round(float(np.median(rates)), 2),
                          "rate_p95": round(float(np.percentile(rates, 95)), 2),
                          "rate": math.ceil(float(np.percentile(rates, 95)))}), flush=True)


def judge(whisper: MultilingualWhisper, rates: dict[str, float]) -> None:
    """Print the verdict figures with the old bound and with ``rates``."""
    held = held_out_speakers()
    verdict = []
    for corpus in CORPORA:
        clips = [c for c in list_corpora(DATA, (corpus,)) if c.speaker in held[corpus]]
        by_speaker: dict[str, list] = defaultdict(list)
        for c in clips:
            by_speaker[c.speaker].append(c)
        for speaker_clips in by_speaker.values():
            verdict += [(CORPUS_LANGUAGE[corpus], telephone_round_trip(load_audio(c.path)))
                        for c in stride(speaker_clips, 15)]
    chosen = neutral_rows(DATA / "nemo")
    nemo = [(r["text"], telephone_round_trip(load_audio(DATA / "nemo" / r["file"])))
            for rows in chosen.values() for r in rows]
    counter = counted(whisper)
    out: dict[str, object] = {"experiment": "multilingual_token_budget", "rates": rates,
                              "verdict_clips": len(verdict), "nemo_clips": len(nemo)}
    for name, table, limit in (("before", {}, old_limit), ("after", rates, repaired_limit)):
        whisper.token_rates = dict(table)
        multilingual.generation_length = limit  # type: ignore[assignment]
        cut: dict[str, list[bool]] = defaultdict(list)
        seconds = []
        for lang, wave in verdict:
            counter.counts = []
            start = time.perf_counter()
            said = whisper.transcribe(wave, lang).original
            seconds.append(time.perf_counter() - start)
            length = limit(PROMPT, whisper.max_new_tokens(lang, len(wave) / SAMPLE_RATE))
            cut[lang].append(counter.written >= min(length - PROMPT + 1, length // 2))
        errors, empty = [], 0
        for text, wave in nemo:
            said = whisper.transcribe(wave, "pl").original
            errors.append(cer(text, said))
            empty += not said
        out[name] = {"cut": {lang: round(float(np.mean(v)), 3) for lang, v in sorted(cut.items())},
                     "seconds_median": round(float(np.median(seconds)), 3),
                     "seconds_p95": round(float(np.percentile(seconds, 95)), 3),
                     "nemo_cer": round(float(np.mean(errors)), 3), "nemo_empty": empty}
        print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    print(json.dumps(out))


def main() -> None:
    """Run ``measure`` or ``judge RATES_JSON``."""
    torch.set_num_threads(1)
    whisper = MultilingualWhisper(languages=sorted(set(CORPUS_LANGUAGE.values()) - {"en"}))
    if sys.argv[1] == "measure":
        measure(whisper)
    else:
        judge(whisper, json.loads(sys.argv[2]))


if __name__ == "__main__":
    main()
