"""Which recogniser hears English callers on noisy lines: tiny.en (shipped) or Whisper base (issue #30).

Caller requests of the four intent evaluation sets (every other sentence: 144), in flite slt and
piper joe, with 0.3 s before and 0.5 s after, mixed with a background as benchmarks/noisy_lines.py
mixes it and put through the 8 kHz mu-law line. Each call is transcribed by the shipped recogniser
(tiny.en, the policy's beam and next-best readings) and by multilingual Whisper base told the
caller speaks English (transcription task, the same beam; with ``--primed`` also tiny.en's
vocabulary prompt and next-best readings), and read by the shipped analyser.
Prints one JSON line per condition: intent exact and queue group for each recogniser, the share of
calls whose line estimate falls under the policy's floor, and seconds per call on one core.

    python docs/experiments/noisy-lines/noisy_asr.py --data ../shared/data [--conditions babble:5,babble:10]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.g711 import telephone_round_trip  # noqa: E402
from audio_models.line_quality import assess  # noqa: E402
from audio_models.multilingual import (  # noqa: E402
    MAX_COMPRESSION_RATIO,
    MAX_TOKENS,
    MAX_WINDOW_FRAMES,
    MIN_WINDOW_FRAMES,
    TOKENS_PER_SECOND,
    MultilingualWhisper,
    compression_ratio,
)
from audio_models.transcribe import (  # noqa: E402
    MIN_SPEECH_RATIO,
    SAMPLE_RATE,
    TranscriptSegment,
    _check,
    _Decoded,
    finish_segments,
    speech_ratio,
)
from benchmarks.common import shipped_recogniser  # noqa: E402
from benchmarks.noisy_lines import babble, mix, music, street  # noqa: E402
from benchmarks.transcription_benchmark import primary_intent  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import load_text_analyser  # noqa: E402

SETS = ("intents_eval", "intents_eval_2", "intents_eval_3", "intents_eval_4")
VOICES = ("flite-slt", "piper-joe")
SR = 16000


def base_english(base: MultilingualWhisper, wave: np.ndarray, vocabulary: str, alternatives: int
                 ) -> TranscriptSegment:
    """Return what Whisper base hears of an English caller (the transcription task, no translation)."""
    from faster_whisper.transcribe import get_suppressed_tokens

    audio = _check(wave)
    if audio is None or speech_ratio(audio) < MIN_SPEECH_RATIO:
        return TranscriptSegment("", engine=base.name, language="en")
    audio = audio[: (MAX_WINDOW_FRAMES - 100) * SAMPLE_RATE // 100]
    frames = min(MAX_WINDOW_FRAMES, max(MIN_WINDOW_FRAMES, int(len(audio) / SAMPLE_RATE * 100) + 100))
    max_new = min(MAX_TOKENS, int(TOKENS_PER_SECOND * len(audio) / SAMPLE_RATE) + 8)
    tok = base._tokenizer("en", "transcribe")
    previous = tok.encode(" " + vocabulary.strip()) if vocabulary else []
    prompt = base._model.get_prompt(tok, previous, without_timestamps=True)
    result = base._model.model.generate(
        base._encode(audio, frames), [prompt], beam_size=base.beam_size,
        num_hypotheses=1 + min(alternatives, base.beam_size - 1), length_penalty=1.0,
        max_length=len(prompt) + max_new, return_scores=True, return_no_speech_prob=True,
        suppress_blank=True, suppress_tokens=get_suppressed_tokens(tok, [-1]))[0]
    texts = [tok.decode([t for t in seq if t < tok.eot]).strip() for seq in result.sequences_ids]
    texts = ["" if compression_ratio(t) > MAX_COMPRESSION_RATIO else t for t in texts]
    n = len([t for t in result.sequences_ids[0] if t < tok.eot])
    others = tuple(dict.fromkeys(t for t in texts[1:] if t and t != texts[0]))
    decoded = _Decoded(texts[0], 0.0, len(audio) / SAMPLE_RATE, result.scores[0] * n / (n + 1),
                       result.no_speech_prob, alternatives=others)
    return finish_segments([decoded], base.min_confidence, base.name)


def main() -> None:
    """Transcribe every call both ways under each condition; print a JSON line per condition."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--conditions", default="babble:5,babble:10,white:5,clean:0")
    ap.add_argument("--every", type=int, default=2, help="take every Nth request of each set (default: 2)")
    ap.add_argument("--primed", action="store_true",
                    help="give Whisper base tiny.en's vocabulary prompt and next-best readings (try 2)")
    args = ap.parse_args()
    primed = args.primed
    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    order = list(policy.text.intent_routes)
    queue_of = {k: r.queue for k, r in policy.text.intent_routes.items()} | {"general": policy.default_queue}
    tiny = shipped_recogniser()
    base = MultilingualWhisper(beam_size=policy.text.asr_beam_size or 5)
    rows = [(data, row) for data in SETS
            for row in list(csv.DictReader((ROOT / "benchmarks/data" / data / "sentences.csv").open()))[::args.every]]
    for condition in args.conditions.split(","):
        kind, snr = condition.split(":")
        rng = np.random.default_rng(7)
        tally: dict[str, list[float]] = {}
        for data, row in rows:
            for voice in VOICES:
                speech = load_audio(ROOT / "benchmarks/data" / data / f"{row['id']}-{voice}.wav")
                speech = np.concatenate([np.zeros(int(0.3 * SR), np.float32), speech, np.zeros(SR // 2, np.float32)])
                if kind != "clean":
                    noise = (babble(args.data, len(speech)) if kind == "babble" else street(len(speech), rng)
                             if kind == "street" else music(len(speech)) if kind == "music"
                             else rng.normal(size=len(speech)).astype(np.float32))
                    speech = mix(speech, noise, float(snr))
                wave = telephone_round_trip(np.clip(speech, -1, 1))
                label = "general" if row["intent"] == "none" else row["intent"]
                tally.setdefault("under_floor", []).append(assess(wave).snr_db < policy.line.min_snr_db)
                for name in ("tiny.en", "base"):
                    started = time.perf_counter()
                    seg = tiny.transcribe(wave) if name == "tiny.en" else base_english(
                        base, wave, primed and policy.text.asr_vocabulary or "",
                        primed and policy.text.asr_alternatives or 0)
                    tally.setdefault(f"{name}_seconds", []).append(time.perf_counter() - started)
                    heard = primary_intent(analyser, seg.text, order, seg.alternatives) if seg.text else "general"
                    tally.setdefault(f"{name}_exact", []).append(heard == label)
                    tally.setdefault(f"{name}_queue", []).append(queue_of[heard] == row["queue"])
        print(json.dumps({"condition": condition, "calls": len(rows) * len(VOICES),
                          **{k: round(float(np.mean(v)), 3) for k, v in sorted(tally.items())}}), flush=True)


if __name__ == "__main__":
    main()
