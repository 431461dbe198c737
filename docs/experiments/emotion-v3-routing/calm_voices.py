r"""Calm natural voices routed on tone alone: the outside check's complaint, per voice.

Rule: ../2026-12-07-emotion-v3-routing-choice-rule.md.

Every recording of the six natural voices in the five intent evaluation sets (caller requests read
calmly, already through the 8 kHz mu-law line) is scored by one emotion model and routed on its tone
alone with one policy (one reading per recording, as a first decision usually has). Prints one JSON
line: per voice, the share sent to retention and to sales, and the mean priority.

    python docs/experiments/emotion-v3-routing/calm_voices.py --model audio_models/models/emotion-v3-nine-corpora \
        [--policy router/policy.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from audio_models.audio_io import load_audio  # noqa: E402
from audio_models.backends import load_emotion_model  # noqa: E402
from audio_models.emotion_types import DEFAULT_BACKEND  # noqa: E402
from router.policy import TrajectoryPoint, decide, load_policy  # noqa: E402

VOICES = ("flite-awb", "flite-kal16", "flite-rms", "flite-slt", "festival-slt-hts", "piper-joe")
SETS = ("intents_eval", "intents_eval_2", "intents_eval_3", "intents_eval_4", "intents_eval_5")


def recordings() -> list[tuple[str, Path]]:
    """Return (voice, path) of every natural-voice recording of the five sets."""
    out = []
    for name in SETS:
        for path in sorted((ROOT / "benchmarks" / "data" / name).glob("*.wav")):
            voice = next((v for v in VOICES if path.stem.endswith(v)), None)
            if voice:
                out.append((voice, path))
    return out


def main() -> None:
    """Score and route every recording; print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="an emotion model directory")
    ap.add_argument("--backend", help="the model's backend (default: the service's; a v3 directory is read as v3)")
    ap.add_argument("--policy", type=Path, help="policy YAML (default: the shipped one)")
    args = ap.parse_args()
    model = load_emotion_model(args.backend or DEFAULT_BACKEND, args.model)
    policy = load_policy(args.policy) if args.policy else load_policy()
    found = recordings()
    queues: dict[str, list[str]] = defaultdict(list)
    priorities: dict[str, list[int]] = defaultdict(list)
    for start in range(0, len(found), 16):
        part = found[start:start + 16]
        readings = model.classify_batch([load_audio(p) for _, p in part])
        for (voice, _), r in zip(part, readings, strict=True):
            d = decide([TrajectoryPoint(1.0, r.probs, r.arousal, r.valence)], None, policy)
            queues[voice].append(d.queue)
            priorities[voice].append(d.priority)
    per_voice = {v: {"recordings": len(q), "to_retention": round(float(np.mean([x == "retention" for x in q])), 4),
                     "to_sales": round(float(np.mean([x == "sales" for x in q])), 4),
                     "mean_priority": round(float(np.mean(priorities[v])), 2)} for v, q in queues.items()}
    print(json.dumps({"model": str(args.model), "policy": str(args.policy or "shipped"),
                      "max_to_retention": max(v["to_retention"] for v in per_voice.values()),
                      "max_to_sales": max(v["to_sales"] for v in per_voice.values()), "per_voice": per_voice}))


if __name__ == "__main__":
    main()
