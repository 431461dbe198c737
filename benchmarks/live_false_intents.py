"""False intents on real speech, through the live call path.

Every clip of the four held-out RAVDESS actors (240 calls: "Kids are talking by the door",
"Dogs are sitting by the door", in eight emotions) is streamed to a real server as a Twilio
call, eight at a time; afterwards the calls that gained any intent are counted. None of these
sentences asks for anything, so every intent is a false one. Unlike the transcription
benchmark, which transcribes each clip whole, this reads what the service hears: the VAD's
utterances, each transcribed and analysed as in production. Prints one JSON line.

    python -m benchmarks.live_false_intents --data ../shared/data [--asr-alternatives N]
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
from benchmarks.common import served
from emoroute.simulate import SimTarget, simulate_many
from router.policy import DEFAULT_POLICY_FILE

HELD_OUT = (1, 2, 23, 24)


async def _stream_all(target: SimTarget, paths: list[Path], at_once: int) -> None:
    for i in range(0, len(paths), at_once):
        batch = [(p.name, load_audio(p)) for p in paths[i:i + at_once]]
        await simulate_many(target, batch, calls=len(batch), realtime=False)


def _policy_with_alternatives(count: int, folder: Path) -> Path:
    """A copy of the shipped policy with ``text.asr_alternatives`` set to ``count``."""
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["text"]["asr_alternatives"] = count
    semantic = policy["text"].get("semantic")
    if semantic:
        semantic["examples"] = str(DEFAULT_POLICY_FILE.parent / semantic["examples"])
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def main() -> None:
    """Serve, stream every held-out clip as a call, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--asr-alternatives", type=int, help="override the policy's text.asr_alternatives")
    ap.add_argument("--at-once", type=int, default=8, help="calls streamed at the same time (default: 8)")
    args = ap.parse_args()
    paths = sorted(p for a in HELD_OUT for p in (args.data / "ravdess" / f"Actor_{a:02d}").glob("*.flac"))
    with tempfile.TemporaryDirectory() as tmp:
        env = ({} if args.asr_alternatives is None else
               {"EMOROUTE_POLICY_FILE": str(_policy_with_alternatives(args.asr_alternatives, Path(tmp)))})
        with served(env) as target:
            asyncio.run(_stream_all(target, paths, args.at_once))
            calls = httpx.get(target.url + "/api/calls", params={"limit": 10_000}, timeout=30,
                              headers={"Authorization": f"Bearer {target.api_token}"}).json()
    with_intent = [c for c in calls if c.get("intents")]
    print(json.dumps({
        "benchmark": "live_false_intents", "calls": len(calls), "streamed": len(paths),
        "asr_alternatives": args.asr_alternatives if args.asr_alternatives is not None else "policy",
        "with_intent": len(with_intent), "rate": round(len(with_intent) / max(1, len(calls)), 4),
        "by_intent": {i: sum(1 for c in with_intent if i in c["intents"].split(","))
                      for i in sorted({i for c in with_intent for i in c["intents"].split(",")})},
        "examples": [{"intents": c["intents"], "transcript": c.get("transcript", "")} for c in with_intent],
    }))


if __name__ == "__main__":
    main()
