"""Transcription and intent figures on telephone-band audio.

Word error rate and real-time factor on real speech; intent accuracy on the
labelled caller utterances (espeak-ng) and on real corpus speech.

WER: RAVDESS held-out actors (1, 2, 23, 24; sentences "kids/dogs ... by the door") and a
fixed sample of TESS ("say the word X"), all through an 8 kHz mu-law round trip. RTF: CPU
seconds per second of audio on one thread. Intent accuracy: the primary intent (first match
in the policy's intent_routes order, else "general") against the label, per set of the
labelled espeak-ng utterances (per set: dev, fresh, holdout, blind, final, test, test2 .. test13;
see the JSON comments)
and on real speech, with the shipped text analyser (phrases, then the semantic classifier)
and with the policy phrases alone.

    python -m benchmarks.transcription_benchmark --data ../shared/data [--intents-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import list_ravdess, list_tess
from audio_models.transcribe import PocketSphinxTranscriber, Transcriber, WhisperTranscriber, word_error_rate
from router.policy import load_policy
from router.text import TextAnalyser, load_text_analyser

INTENTS = Path(__file__).resolve().parent / "data" / "intents"
HELD_OUT = {"ravdess-01", "ravdess-02", "ravdess-23", "ravdess-24"}


def primary_intent(analyser: TextAnalyser, text: str, order: list[str], alternatives: tuple[str, ...] = ()) -> str:
    """Return the routing-order first intent found in ``text`` (else its alternative readings), else 'general'."""
    found, _ = analyser.intents_of_readings(text, alternatives)
    return next((name for name in order if name in found), "general")


def _measure(engine: Transcriber, waves: list, refs: list[str]) -> dict[str, float]:
    hyps, audio_s = [], 0.0
    start = time.process_time()
    for wave in waves:
        hyps.append(engine.transcribe(wave).text)
        audio_s += len(wave) / 16000
    cpu = time.process_time() - start
    return {"wer": round(word_error_rate(refs, hyps), 4), "rtf_cpu_1thread": round(cpu / audio_s, 4),
            "audio_s": round(audio_s, 1), "n": len(waves)}


def main() -> None:
    """Run and print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--tess-every", type=int, default=16, help="take every Nth TESS clip")
    ap.add_argument("--intents-only", action="store_true",
                    help="skip the WER/RTF runs and PocketSphinx: intent figures only")
    ap.add_argument("--sets", help="comma list of labelled sets to score (default: all)")
    ap.add_argument("--asr-beam-size", type=int, help="override the policy's text.asr_beam_size")
    ap.add_argument("--asr-band-extension", choices=("on", "off"),
                    help="override the policy's text.asr_band_extension")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rav = [c for c in list_ravdess(args.data) if c.speaker in HELD_OUT]
    tess = list_tess(args.data)[:: args.tess_every]
    corpora = {"ravdess_heldout": rav, "tess_sample": tess}
    waves = {k: [telephone_round_trip(load_audio(c.path)) for c in v] for k, v in corpora.items()}
    text_rules = load_policy().text
    # The live service's settings: no aligned word timestamps (they double the cost).
    engines: dict[str, Transcriber] = {"whisper": WhisperTranscriber(
        threads=1, vocabulary=text_rules.asr_vocabulary, word_timestamps=False,
        alternatives=text_rules.asr_alternatives, alternative_margin=text_rules.asr_alternative_margin,
        beam_size=args.asr_beam_size or text_rules.asr_beam_size,
        band_extension=(args.asr_band_extension == "on") if args.asr_band_extension else text_rules.asr_band_extension)}
    if not args.intents_only:
        engines["pocketsphinx"] = PocketSphinxTranscriber()
    wer = {} if args.intents_only else {
        name: {k: _measure(eng, waves[k], [c.transcript for c in corpora[k]]) for k in corpora}
        for name, eng in engines.items()}

    policy = load_policy()
    analyser = load_text_analyser(policy.text)
    phrases_only = TextAnalyser(policy.text)
    order = list(policy.text.intent_routes)
    with (INTENTS / "labels.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if not args.sets or r["set"] in args.sets.split(",")]
    whisper = engines["whisper"]
    labelled = []
    for row in rows:
        start = time.process_time()
        wave = load_audio(INTENTS / f"{row['id']}.wav")
        heard = whisper.transcribe(wave)
        text = heard.text
        labelled.append({"id": row["id"], "set": row["set"], "label": row["intent"],
                         "pred": primary_intent(analyser, text, order, heard.alternatives),
                         "from_text": primary_intent(analyser, row["text"], order), "heard": text,
                         "phrases_only": primary_intent(phrases_only, text, order, heard.alternatives),
                         "phrases_only_text": primary_intent(phrases_only, row["text"], order),
                         "cpu_s": time.process_time() - start, "audio_s": len(wave) / 16000})
    real = [primary_intent(analyser, seg.text, order, seg.alternatives)
            for seg in (whisper.transcribe(w) for w in waves["ravdess_heldout"])]
    tess_heard = [primary_intent(analyser, seg.text, order, seg.alternatives)
                  for seg in (whisper.transcribe(w) for w in waves["tess_sample"])]
    tess_general = [primary_intent(analyser, t, order) for t in sorted({c.transcript for c in list_tess(args.data)})]

    def accuracy(rows: list[dict], key: str) -> float:
        return round(sum(r[key] == r["label"] for r in rows) / len(rows), 4)

    by_set = {name: [r for r in labelled if r["set"] == name] for name in dict.fromkeys(r["set"] for r in rows)}
    print(json.dumps({
        "benchmark": "transcription", "default_engine": whisper.name, "wer": wer,
        "asr_beam_size": getattr(whisper, "beam_size", None),
        "asr_band_extension": getattr(whisper, "band_extension", None),
        "rtf_cpu_1thread_espeak_utterances": round(sum(r["cpu_s"] for r in labelled)
                                                   / sum(r["audio_s"] for r in labelled), 4),
        # dev: the 49 utterances the phrase lists and matching rules were tuned on; fresh: 40
        # written afterwards, then tuned on; holdout: 40 written before the semantic classifier
        # (its examples were written after); blind: 40 written after its first fit; final, test,
        # test2 .. test13: written after it was frozen, each scored once (docs/MODEL_CARD.md: every set's story)
        "intent_accuracy_espeak_audio": {k: accuracy(v, "pred") for k, v in by_set.items()}
        | {"all": accuracy(labelled, "pred")},
        "intent_accuracy_espeak_reference_text": {k: accuracy(v, "from_text") for k, v in by_set.items()},
        # the same without the semantic classifier (policy phrases only)
        "intent_accuracy_phrases_only": {"audio": {k: accuracy(v, "phrases_only") for k, v in by_set.items()},
                                         "text": {k: accuracy(v, "phrases_only_text") for k, v in by_set.items()}},
        "intent_accuracy_real_speech_general": round(real.count("general") / len(real), 4),
        # false intents on 200 different TESS carrier sentences ("say the word X"), from their text
        "tess_sentences_general": round(tess_general.count("general") / len(tess_general), 4),
        # the same sentences as the recogniser hears them: the 100-clip TESS sample through the 8 kHz line
        "tess_sample_audio_general": round(tess_heard.count("general") / len(tess_heard), 4),
        # the "labelled set": the espeak-ng utterances and the real-speech clips together
        "intent_accuracy_combined": round((sum(r["pred"] == r["label"] for r in labelled) + real.count("general"))
                                          / (len(labelled) + len(real)), 4),
        "n_labelled": {k: len(v) for k, v in by_set.items()}, "n_real": len(real),
        "errors": [{k: r[k] for k in ("id", "label", "pred", "heard")} for r in labelled if r["pred"] != r["label"]],
    }))


if __name__ == "__main__":
    main()
