"""False intents on real speech, through the live call path.

Every clip of the four held-out RAVDESS actors (240 calls: "Kids are talking by the door",
"Dogs are sitting by the door", in eight emotions) is streamed to a real server as a Twilio
call, eight at a time; afterwards the calls that gained any intent are counted. None of these
sentences asks for anything, so every intent is a false one. Unlike the transcription
benchmark, which transcribes each clip whole, this reads what the service hears: the VAD's
utterances, each transcribed and analysed as in production. It also scores the word error rate
of what the service heard (each call's stored transcripts, best readings, joined in time order,
against the clip's sentence). Prints one JSON line.

    python -m benchmarks.live_false_intents --data ../shared/data [--realtime] [--asr-alternatives N]

``--corpus NAME [--calls N]`` streams another corpus's held-out speakers instead (the first N of
their clips in file order; for nEMO, EMOVO, EYASE, AESDD, BanglaSER and ASED the callers speak
another language, so what is read is the multilingual path's translation); the word error rate
is scored for RAVDESS only. ``--corpus all`` streams the eight corpora with held-out speakers
(TESS has none) at the headline's sizes (``ALL_CALLS``: 700 calls, about ten minutes on two
cores), one JSON line each, then a line with the total: the README's false-intent figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import httpx
import yaml

from audio_models.audio_io import load_audio
from audio_models.training.corpora import RAVDESS_STATEMENTS, held_out_speakers, list_corpora
from audio_models.transcribe import word_error_rate
from benchmarks.common import served
from emoroute.simulate import SimTarget, simulate_many
from router.policy import DEFAULT_POLICY_FILE

HELD_OUT = (1, 2, 23, 24)
# --corpus all: every corpus with held-out speakers, at the sizes of the headline figure
ALL_CALLS = {"savee": 60, "nemo": 80, "emovo": 80, "eyase": 60, "bangla": 60, "aesdd": 60, "ased": 60, "ravdess": 240}


async def _stream_all(target: SimTarget, paths: list[Path], at_once: int, realtime: bool) -> dict[str, str]:
    """Stream every file as a call; return call SID -> file name."""
    sids: dict[str, str] = {}
    for i in range(0, len(paths), at_once):
        batch = [(p.name, load_audio(p)) for p in paths[i:i + at_once]]
        for result in await simulate_many(target, batch, calls=len(batch), realtime=realtime):
            if "call_sid" in result:
                sids[result["call_sid"]] = result["file"]
    return sids


def _heard(timeline: list[dict]) -> str:
    """Return the call's final transcripts (best readings), in call time order, joined."""
    texts = [(float(e["t"]), e["transcript"].split(" [or: ")[0]) for e in timeline
             if e.get("transcript") and (e.get("type") == "transcript" or e.get("kind") == "utterance")]
    return " ".join(text for _, text in sorted(texts))


def _policy_with(overrides: dict, folder: Path) -> Path:
    """A copy of the shipped policy with ``text`` settings replaced by ``overrides``."""
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["text"].update(overrides)
    model = policy["text"].get("intent_model")
    if model:
        model["training"] = str(DEFAULT_POLICY_FILE.parent / model["training"])
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def run(args: argparse.Namespace, corpus: str, calls: int) -> dict:
    """Serve, stream ``corpus``'s held-out clips as calls, return the JSON line's fields."""
    if corpus == "ravdess":
        paths = sorted(p for a in HELD_OUT for p in (args.data / "ravdess" / f"Actor_{a:02d}").glob("*.flac"))
        # all eight emotions (not only the model's four classes); the fifth field names the statement
        sentence = {p.name: RAVDESS_STATEMENTS[p.stem.split("-")[4]] for p in paths}
    else:
        speakers = set(held_out_speakers()[corpus])
        clips = sorted((c for c in list_corpora(args.data, (corpus,)) if c.speaker in speakers),
                       key=lambda c: c.key)
        paths, sentence = [c.path for c in clips[:calls]], {}
    overrides: dict = {}
    if args.asr_alternatives is not None:
        overrides["asr_alternatives"] = args.asr_alternatives
    if args.asr_beam_size is not None:
        overrides["asr_beam_size"] = args.asr_beam_size
    if args.asr_band_extension is not None:
        overrides["asr_band_extension"] = args.asr_band_extension == "on"
    with tempfile.TemporaryDirectory() as tmp:
        env = {"EMOROUTE_POLICY_FILE": str(_policy_with(overrides, Path(tmp)))} if overrides else {}
        if args.policy is not None:
            env = {"EMOROUTE_POLICY_FILE": str(args.policy.resolve())}
        with served(env) as target:
            sids = asyncio.run(_stream_all(target, paths, args.at_once, args.realtime))
            auth = {"Authorization": f"Bearer {target.api_token}"}
            stored = httpx.get(target.url + "/api/calls", params={"limit": 10_000}, timeout=30, headers=auth).json()
            heard = {sid: _heard(httpx.get(f"{target.url}/api/calls/{sid}/timeline", timeout=30,
                                           headers=auth).json()["timeline"]) for sid in sids}
    with_intent = [c for c in stored if c.get("intents")]
    return {
        "benchmark": "live_false_intents", "corpus": corpus, "calls": len(stored), "streamed": len(paths),
        "asr_alternatives": args.asr_alternatives if args.asr_alternatives is not None else "policy",
        "asr_beam_size": args.asr_beam_size or "policy",
        "asr_band_extension": args.asr_band_extension or "policy",
        "pace": "realtime" if args.realtime else "fast",
        # what the service heard of each call, against the clip's sentence
        "wer_live": round(word_error_rate([sentence[f] for f in sids.values()], list(heard.values())), 4)
        if sentence else None,
        "with_intent": len(with_intent), "rate": round(len(with_intent) / max(1, len(stored)), 4),
        "by_intent": {i: sum(1 for c in with_intent if i in c["intents"].split(","))
                      for i in sorted({i for c in with_intent for i in c["intents"].split(",")})},
        "examples": [{"intents": c["intents"], "transcript": c.get("transcript", "")} for c in with_intent],
        "languages": {lang: sum(1 for c in stored if c.get("language", "") == lang)
                      for lang in sorted({c.get("language", "") for c in stored})},
    }


def main() -> None:
    """Serve, stream every held-out clip as a call, print the JSON line (one per corpus, and a total, for all)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--asr-alternatives", type=int, help="override the policy's text.asr_alternatives")
    ap.add_argument("--asr-beam-size", type=int, help="override the policy's text.asr_beam_size")
    ap.add_argument("--asr-band-extension", choices=("on", "off"),
                    help="override the policy's text.asr_band_extension")
    ap.add_argument("--at-once", type=int, default=8, help="calls streamed at the same time (default: 8)")
    ap.add_argument("--realtime", action="store_true",
                    help="stream at the caller's pace (20 ms a frame) instead of as fast as the server takes it")
    ap.add_argument("--policy", type=Path, help="serve with this policy file (its intent_model.training absolute)")
    ap.add_argument("--corpus", default="ravdess",
                    help="whose held-out speakers call (default: ravdess; all: the eight corpora, ALL_CALLS)")
    ap.add_argument("--calls", type=int, default=240, help="calls from --corpus other than ravdess (default: 240)")
    args = ap.parse_args()
    if args.corpus != "all":
        print(json.dumps(run(args, args.corpus, args.calls)))
        return
    total = [0, 0]
    for corpus, calls in ALL_CALLS.items():
        line = run(args, corpus, calls)
        total[0] += line["with_intent"]
        total[1] += line["calls"]
        print(json.dumps(line), flush=True)
    print(json.dumps({"benchmark": "live_false_intents", "corpus": "all", "calls": total[1], "with_intent": total[0],
                      "rate": round(total[0] / max(1, total[1]), 4), "target": "<= 0.03"}))


if __name__ == "__main__":
    main()
