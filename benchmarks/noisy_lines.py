"""Routing and emotion on noisy lines: the same callers under babble, street, music and hiss (issue #30).

Callers: caller requests of the intent evaluation (benchmarks/data/intents_eval, 4 per intent and 4
general-service requests) in two natural voices (flite slt, piper joe), calm voices asking for
something. Each call is the request with 0.3 s before and 0.5 s after, mixed with a background at
0, 5, 10 or 20 dB (speech power over its active frames) and put through the 8 kHz mu-law line:

- babble: four RAVDESS actors talking at once without pause (real voices, none of them the caller);
- street: synthetic road rumble (brown noise) with passing louder bursts (engines, horns);
- music: synthetic music on hold (chords and a melody, amplitude-modulated);
- white: hiss.

Each call goes through what decides a live first utterance: the shipped emotion model's reading,
the line estimate (``audio_models.line_quality``), the shipped recogniser and analyser, and the
shipped policy's ``decide`` (tone set aside below the line floor). The same readings are also
decided with every line taken as good ("tone trusted"), to show what the floor changes.

A second population reads tone alone (no words): RAVDESS's four held-out actors, every neutral, calm
and angry clip (80), clean and under babble at 0, 5 and 10 dB: calm callers sent to retention and
angry callers reaching it, with the floor and with tone trusted.

The words come from the live transcriber (language identification included, as a live call's first
utterance), with its noisy-line ear (Whisper base for English below the line floor; judged and not
shipped) off as shipped, or on, or both: ``--ear off|on|both`` (figures prefixed ``off_`` / ``on_``),
plus the share of English callers taken for another language and the time per transcription. A
third population is plain speech (no request): the same RAVDESS actors' clips under babble at 5 and
10 dB, the calls given an intent by each ear.

Prints one JSON line: per condition, right queue, calm callers sent to retention, intents heard,
the share of readings whose tone was set aside, with the tone-trusted figures beside them; the
tone-only figures; plain speech's false intents.

    python -m benchmarks.noisy_lines --data ../shared/data [--ear both]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from audio_models.audio_io import load_audio
from audio_models.backends import load_emotion_model
from audio_models.g711 import telephone_round_trip
from audio_models.line_quality import assess
from audio_models.multilingual import LanguageAwareTranscriber, MultilingualWhisper
from benchmarks.common import shipped_recogniser
from benchmarks.transcription_benchmark import primary_intent
from router.policy import TrajectoryPoint, decide, load_policy
from router.text import load_text_analyser

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "intents_eval"
VOICES = ("flite-slt", "piper-joe")
PER_CLASS = 4
SR = 16000


def _ravdess(root: Path, actor: int, emotion: str, statement: str) -> Path:
    intensity = "01" if emotion == "01" else "02"
    return root / "ravdess" / f"Actor_{actor:02d}" / f"03-01-{emotion}-{intensity}-{statement}-01-{actor:02d}.flac"


def babble(root: Path, length: int, talkers: int = 4, first_actor: int = 5) -> np.ndarray:
    """RAVDESS actors (5-8 by default) talking at once without pause (their clips' speech joined), each at one level."""
    out = np.zeros(length, dtype=np.float32)
    for k in range(talkers):
        parts = []
        for statement in ("01", "02"):
            for emotion in ("01", "03", "04", "05"):
                wave = load_audio(_ravdess(root, first_actor + k, emotion, statement))
                frames = wave[: len(wave) // 320 * 320].reshape(-1, 320)
                power = (frames**2).mean(1)
                parts.append(frames[power > power.max() * 1e-3].ravel())
        stream = np.resize(np.concatenate(parts), length)
        out += stream / (np.sqrt(np.mean(stream**2)) + 1e-9)
    return out


def street(length: int, rng: np.random.Generator) -> np.ndarray:
    """Road rumble (brown noise) with louder passing bursts a few times a second."""
    brown = np.cumsum(rng.normal(size=length)).astype(np.float64)
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # no DC drift
    envelope = np.ones(length)
    for start in rng.integers(0, max(1, length - SR), size=max(1, length // SR * 2)):
        n = int(rng.integers(SR // 4, SR))
        envelope[start:start + n] += 3.0 * np.hanning(n)[: len(envelope[start:start + n])]
    return (brown * envelope).astype(np.float32)


def music(length: int) -> np.ndarray:
    """Chords changing every second with a melody on top, gently amplitude-modulated."""
    t = np.arange(length) / SR
    chords = ((262, 330, 392), (220, 262, 330), (349, 440, 523), (392, 494, 587))
    out = np.zeros(length)
    for i in range(int(np.ceil(length / SR))):
        seg = slice(i * SR, min(length, (i + 1) * SR))
        for f in chords[i % len(chords)]:
            out[seg] += np.sin(2 * np.pi * f * t[seg])
        out[seg] += 0.7 * np.sin(2 * np.pi * 2 * chords[i % len(chords)][(i // 2) % 3] * t[seg])
    return (out * (0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Return speech plus ``noise`` at ``snr_db`` (speech power over its active 20 ms frames)."""
    frames = speech[: len(speech) // 320 * 320].reshape(-1, 320)
    power = (frames**2).mean(1)
    p_speech = power[power > power.max() * 1e-4].mean()
    noise = np.resize(noise, speech.shape)
    return (speech + noise * np.sqrt(p_speech / (np.mean(noise**2) + 1e-12) / 10 ** (snr_db / 10))).astype(np.float32)


def _tone_only(root: Path, model, policy, rng: np.random.Generator) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """RAVDESS held-out actors' neutral, calm and angry clips, tone only, clean and under babble."""
    clips = sorted(p for actor in (1, 2, 23, 24) for p in (root / "ravdess" / f"Actor_{actor:02d}").glob("*.flac")
                   if p.name.split("-")[2] in ("01", "02", "05"))
    out: dict[str, dict[str, float]] = {}
    for name, snr in (("clean", None), ("babble 0 dB", 0), ("babble 5 dB", 5), ("babble 10 dB", 10)):
        tally: dict[str, list[bool]] = defaultdict(list)
        for path in clips:
            speech = load_audio(path)
            if snr is not None:
                speech = mix(speech, babble(root, len(speech)), snr)
            wave = telephone_round_trip(np.clip(speech, -1, 1))
            reading = model.classify_batch([wave])[0]
            noisy = not assess(wave).usable(policy.line.min_snr_db, policy.line.max_clipped)
            angry = path.name.split("-")[2] == "05"
            for tag, set_aside in (("floor", noisy), ("trusted", False)):
                point = TrajectoryPoint(1.0, reading.probs, reading.arousal, reading.valence, noisy=set_aside)
                decision = decide([point], None, policy)
                to_retention = decision.rule != "default" and decision.queue == policy.anger.queue
                tally[f"{tag}_{'angry_to_retention' if angry else 'calm_to_retention'}"].append(to_retention)
                if not angry:
                    tally[f"{tag}_calm_at_anger_priority"].append(decision.priority >= policy.anger.priority_min)
            tally["tone_set_aside"].append(noisy)
        out[name] = {k: round(float(np.mean(v)), 3) for k, v in sorted(tally.items())}
    return out


def _plain_speech(root: Path, ears: dict[str, LanguageAwareTranscriber], analyser, order: list[str]  # noqa: ANN001
                  ) -> dict[str, dict[str, int]]:
    """RAVDESS held-out actors' neutral, calm and angry clips under babble: calls given an intent, per ear."""
    clips = sorted(p for actor in (1, 2, 23, 24) for p in (root / "ravdess" / f"Actor_{actor:02d}").glob("*.flac")
                   if p.name.split("-")[2] in ("01", "02", "05"))
    out: dict[str, dict[str, int]] = {}
    for snr in (5, 10):
        tally: dict[str, list[bool]] = defaultdict(list)
        for path in clips:
            speech = load_audio(path)
            wave = telephone_round_trip(np.clip(mix(speech, babble(root, len(speech)), snr), -1, 1))
            for ear, transcriber in ears.items():
                seg = transcriber.transcribe(wave)
                heard = primary_intent(analyser, seg.text, order, seg.alternatives) if seg.text else "general"
                tally[f"{ear}_given_an_intent"].append(heard != "general")
        out[f"babble {snr} dB"] = {k: int(np.sum(v)) for k, v in sorted(tally.items())} | {"calls": len(clips)}
    return out


def main() -> None:
    """Decide every call under every condition and print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the corpora root (shared/data): the babble talkers")
    ap.add_argument("--model", type=Path, help="an emotion model directory (default: the shipped default)")
    ap.add_argument("--ear", choices=("off", "on", "both"), default="off",
                    help="the noisy-line ear (Whisper base for English below the line floor; not shipped, "
                         "docs/experiments/2026-12-07-noisy-line-ear-rule.md): off (as shipped), on or both")
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = load_policy()
    model = load_emotion_model() if args.model is None else load_emotion_model(source=args.model)
    multilingual = MultilingualWhisper(languages=policy.languages.routes)
    ears = {ear: LanguageAwareTranscriber(shipped_recogniser(), multilingual,
                                          min_probability=policy.languages.min_probability,
                                          line_floor_db=policy.line.min_snr_db, noisy_ear=ear == "on")
            for ear in (("off", "on") if args.ear == "both" else (args.ear,))}
    analyser = load_text_analyser(policy.text)
    order = list(policy.text.intent_routes)
    rows = list(csv.DictReader((DATA / "sentences.csv").open()))
    by_class: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_class[row["intent"]].append(row)
    chosen = [row for items in by_class.values() for row in items[:PER_CLASS]]
    rng = np.random.default_rng(7)
    conditions = [("clean", None)] + [(f"babble {snr} dB", ("babble", snr)) for snr in (0, 5, 10, 20)] + [
        (f"{kind} {snr} dB", (kind, snr)) for kind in ("street", "music", "white") for snr in (0, 5)]
    out: dict[str, dict[str, float]] = {}
    for name, condition in conditions:
        tally: dict[str, list[float]] = defaultdict(list)
        for row in chosen:
            for voice in VOICES:
                speech = load_audio(DATA / f"{row['id']}-{voice}.wav")
                speech = np.concatenate([np.zeros(int(0.3 * SR), np.float32), speech, np.zeros(SR // 2, np.float32)])
                if condition is not None:
                    kind, snr = condition
                    noise = (babble(args.data, len(speech)) if kind == "babble" else street(len(speech), rng)
                             if kind == "street" else music(len(speech)) if kind == "music"
                             else rng.normal(size=len(speech)).astype(np.float32))
                    speech = mix(speech, noise, snr)
                wave = telephone_round_trip(np.clip(speech, -1, 1))
                reading = model.classify_batch([wave])[0]
                line = assess(wave)
                noisy = not line.usable(policy.line.min_snr_db, policy.line.max_clipped)
                label = "general" if row["intent"] == "none" else row["intent"]
                for ear, transcriber in ears.items():
                    start = time.perf_counter()
                    seg = transcriber.transcribe(wave)
                    tally[f"{ear}_seconds"].append(time.perf_counter() - start)
                    text = analyser.analyse(seg.text, seg.alternatives) if seg.text else None
                    heard = primary_intent(analyser, seg.text, order, seg.alternatives) if seg.text else "general"
                    language = seg.language if seg.language != "en" else ""
                    for tag, set_aside in (("floor", noisy), ("trusted", False)):
                        point = TrajectoryPoint(1.0, reading.probs, reading.arousal, reading.valence, noisy=set_aside)
                        decision = decide([point], text, policy, language=language)
                        queue = policy.default_queue if decision.rule == "default" else decision.queue
                        tally[f"{ear}_{tag}_right_queue"].append(queue == row["queue"])
                        if row["queue"] != "retention":
                            tally[f"{ear}_{tag}_calm_to_retention"].append(queue == "retention")
                    tally[f"{ear}_intent_exact"].append(heard == label)
                    tally[f"{ear}_taken_for_another_language"].append(bool(language))
                    tally[f"{ear}_whisper_base_ear"].append(transcriber.noisy(wave))
                tally["tone_set_aside"].append(noisy)
                tally["snr_estimate_db"].append(line.snr_db)
        out[name] = {k: round(float(np.median(v) if k.endswith("_seconds") else np.mean(v)), 3)
                     for k, v in sorted(tally.items())}
    tone_only = _tone_only(args.data, model, policy, rng)
    plain = _plain_speech(args.data, ears, analyser, order)
    print(json.dumps({"benchmark": "noisy_lines", "model": str(args.model or "default"),
                      "callers": len(chosen) * len(VOICES), "voices": list(VOICES),
                      "line_floor_db": policy.line.min_snr_db, "conditions": out,
                      "ears": list(ears), "tone_only_ravdess_held_out": tone_only,
                      "plain_speech_ravdess_held_out": plain,
                      "target": "babble 5 dB: right queue within 0.05 of clean, calm callers to retention no more "
                                "often than clean; 0 dB: tone never decides alone"}))


if __name__ == "__main__":
    main()
