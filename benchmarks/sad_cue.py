"""How often a sad caller gets the sad cue, and a caller who is not sad gets it, for cue thresholds on P(sad).

The agent's cue card picks the first matching rule of policy.yaml's ``cues``; a rule with
``min_probability`` matches its emotion when the latest reading's label is that emotion or its
probability reaches the threshold. This scores the shipped model's fused readings of whole clips
(per clip, 8 kHz mu-law line) on RAVDESS validation actors 19, 20 and held-out actors 1, 2, 23, 24,
for each threshold: the sad-cue recall and the false sad cues (on non-sad clips, and on angry ones),
with the cue rules of ``router/policy.yaml`` and the sad rule's threshold replaced. Prints one
JSON line. The rule: docs/experiments/2026-11-29-sad-cue-rule.md

    python -m benchmarks.sad_cue --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audio_models.audio_io import load_audio
from audio_models.emotion import FUSED_MODEL_DIR
from audio_models.g711 import telephone_round_trip
from audio_models.training.corpora import LABELS, list_corpora, ravdess_speakers
from audio_models.whisper_head import FusedEmotionModel
from dashboards.cues import pick_cue
from router.policy import load_policy

THRESHOLDS = (0.50, 0.45, 0.40, 0.35, 0.30, 0.25)
SETS = {"validation": [19, 20], "held_out": [1, 2, 23, 24]}


def main() -> None:
    """Print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model-dir", type=Path, default=FUSED_MODEL_DIR)
    args = ap.parse_args()
    model = FusedEmotionModel.from_dir(args.model_dir)
    rules = load_policy(None).cues
    sad_rule = next(i for i, r in enumerate(rules) if r.emotion == "sad" and not r.intent and not r.trend)
    sad_say = rules[sad_rule].say
    clips = [c for c in list_corpora(args.data, ("ravdess",)) if c.label in LABELS]
    out: dict[str, object] = {"benchmark": "sad_cue", "model": model.name, "sets": {}}
    for name, actors in SETS.items():
        chosen = [c for c in clips if c.speaker in ravdess_speakers(actors)]
        readings = [r for b in range(0, len(chosen), 32)
                    for r in model.classify_batch([telephone_round_trip(load_audio(c.path)) for c in chosen[b:b + 32]])]
        per_theta = {}
        for theta in THRESHOLDS:
            variant = [r.model_copy(update={"min_probability": theta}) if i == sad_rule else r
                       for i, r in enumerate(rules)]
            cued = [pick_cue(variant, emotion=max(r.probs, key=lambda k: r.probs[k]), trend="steady",
                             intents=set(), probs=r.probs) == sad_say for r in readings]
            truth = [c.label for c in chosen]
            sad = [g for g, t in zip(cued, truth, strict=True) if t == "sad"]
            other = [g for g, t in zip(cued, truth, strict=True) if t != "sad"]
            angry = [g for g, t in zip(cued, truth, strict=True) if t == "angry"]
            neutral = [g for g, t in zip(cued, truth, strict=True) if t == "neutral"]
            per_theta[f"{theta:.2f}"] = {
                "sad_cue_recall": round(sum(sad) / len(sad), 4), "sad_cued": sum(sad), "sad_clips": len(sad),
                "false_sad_cue_share": round(sum(other) / len(other), 4), "false_sad_cues": sum(other),
                "non_sad_clips": len(other), "angry_given_sad_cue": sum(angry),
                "neutral_given_sad_cue": sum(neutral), "neutral_clips": len(neutral)}
        out["sets"][name] = per_theta  # type: ignore[index]
    val = out["sets"]["validation"]  # type: ignore[index]
    qualifying = [t for t in THRESHOLDS if val[f"{t:.2f}"]["sad_cue_recall"] >= 0.75
                  and val[f"{t:.2f}"]["false_sad_cue_share"] <= 0.15]
    out["chosen_on_validation"] = max(qualifying) if qualifying else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
