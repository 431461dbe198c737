"""Score intent classifiers on kept transcripts and plain-call readings, one JSON line per encoder.

For each ``--tuned`` delta (tune.py's output; ``base`` for the shipped encoder) a model folder is
made beside it (the wheel's files, the tuned layers merged in), the classifier is fitted on the
training file with that encoder exactly as the service fits it, and the policy's analyser reads:
the evaluation sets' texts and their kept transcripts in the six natural voices (exact intent and
queue group, as benchmarks/intent_eval.py counts them), and the kept readings of plain calls
(docs/experiments/intent-remarks/readings-*.json: any intent is a false one).

    python docs/experiments/intent-tuned-encoder/evaluate.py --sets 1 2 3 4 5 --tuned base var/tuned/l2-e4.safetensors
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import router.semantic  # noqa: E402
from benchmarks.record_natural_voices import VOICES  # noqa: E402
from benchmarks.transcription_benchmark import primary_intent  # noqa: E402
from router.model_bundles import minilm_dir  # noqa: E402
from router.policy import load_policy  # noqa: E402
from router.text import load_text_analyser  # noqa: E402

NATURAL = ("flite", "festival", "piper")
SETS = {1: "intents_eval", 2: "intents_eval_2", 3: "intents_eval_3", 4: "intents_eval_4", 5: "intents_eval_5",
        6: "intents_eval_6", 7: "intents_eval_7", 8: "intents_eval_8"}
TRANSCRIPTS = {1: "intent-eval", 2: "intent-eval-2", 3: "intent-eval-3", 4: "intent-eval-4", 5: "intent-eval-5",
               6: "intent-tuned-encoder/eval6", 7: "intent-training-v3/eval7", 8: "intent-training-v3/eval8"}
READINGS = ("dev", "judge", "fresh")


def merged_dir(delta: Path) -> Path:
    """Return a model folder: the wheel's files with the tuned layers of ``delta`` merged in."""
    from safetensors.torch import load_file, save_file

    out = delta.with_suffix("")
    if not (out / "model.safetensors").is_file():
        base = minilm_dir()
        out.mkdir(parents=True, exist_ok=True)
        for item in base.iterdir():
            if item.name != "model.safetensors" and not (out / item.name).exists():
                (out / item.name).symlink_to(item)
        state = load_file(str(base / "model.safetensors"))
        tuned = load_file(str(delta))
        for k, v in tuned.items():
            state[k] = v.float()
        save_file(state, str(out / "model.safetensors"))
    return out


def analyser_for(name: str, folder: Path | None, cache: Path, training: Path):  # noqa: ANN201
    """Return the shipped policy and its analyser, the classifier fitted on encoder ``name`` (in ``folder``)."""
    original = router.semantic.encoder_dir
    router.semantic.encoder_dir = lambda n: folder if (folder is not None and n == name) else original(n)
    raw = yaml.safe_load((ROOT / "router" / "policy.yaml").read_text())
    raw["text"]["intent_model"]["training"] = str(training.resolve())
    policy_file = cache / f"policy-{name}.yaml"
    policy_file.write_text(yaml.safe_dump(raw))
    policy = load_policy(policy_file)
    model = policy.text.intent_model.model_copy(update={"encoder": name})  # the policy names only wheel encoders
    rules = policy.text.model_copy(update={"intent_model": model})
    return policy, load_text_analyser(rules, policy_file)


def main() -> None:
    """Score each encoder (and floor) on the sets and the readings."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--tuned", nargs="+", default=["base"])
    ap.add_argument("--readings", nargs="*", default=list(READINGS))
    ap.add_argument("--training", type=Path, default=ROOT / "router" / "intents" / "training.yaml")
    ap.add_argument("--top-floors", type=float, nargs="*", default=[],
                    help="also score each floor for the likeliest intent (text.intent_model.top_min_probability)")
    args = ap.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="tuned-eval-"))
    for tuned in args.tuned:
        folder = None if tuned == "base" else merged_dir(Path(tuned))
        name = "all-MiniLM-L6-v2" if folder is None else f"tuned-{Path(tuned).stem}"
        policy, analyser = analyser_for(name, folder, cache, args.training)
        for floor in [None, *args.top_floors]:
            if floor is not None:
                analyser.classifier.top_min_probability = floor
            score(policy, analyser, args, {"encoder": tuned, "training": str(args.training),
                                                  "top_min_probability": floor})


def score(policy, analyser, args, result: dict[str, object]) -> None:
    """Print one JSON line: the sets and the readings as ``analyser`` reads them."""
    order = list(policy.text.intent_routes)
    queue_of = {n: r.queue for n, r in policy.text.intent_routes.items()}
    queue_of["general"] = policy.default_queue
    all_nat: list[bool] = []
    all_q: list[bool] = []
    all_gen = 0
    for s in args.sets:
        rows = list(csv.DictReader((ROOT / "benchmarks" / "data" / SETS[s] / "sentences.csv").open()))
        heard = json.loads((ROOT / "docs" / "experiments" / TRANSCRIPTS[s] / "transcripts.json").read_text())
        text_ok, nat, q, gen, misses = [], [], [], [], []
        for row in rows:
            label = "general" if row["intent"] == "none" else row["intent"]
            text_ok.append(primary_intent(analyser, row["text"], order) == label)
            for voice, family in VOICES.items():
                if family not in NATURAL:
                    continue
                text, alternatives = heard[f"{row['id']}-{voice}"]
                pred = primary_intent(analyser, text, order, tuple(alternatives))
                nat.append(pred == label)
                q.append(queue_of[pred] == row["queue"])
                if label == "general":
                    gen.append(pred != "general")
                if pred != label and voice == "flite-slt":
                    misses.append(f"{row['id']}:{pred}:{text}")
        all_nat += nat
        all_q += q
        all_gen += sum(gen)
        result[f"set{s}"] = {"natural_exact": round(sum(nat) / len(nat), 3),
                             "natural_queue": round(sum(q) / len(q), 3),
                             "text": round(sum(text_ok) / len(text_ok), 3), "general_with_intent": sum(gen),
                             "misses_slt": misses}
    result["all_sets"] = {"natural_exact": round(sum(all_nat) / max(len(all_nat), 1), 4),
                          "natural_queue": round(sum(all_q) / max(len(all_q), 1), 4), "n": len(all_nat),
                          "general_with_intent": all_gen}
    for which in args.readings:
        readings = json.loads((ROOT / "docs" / "experiments" / "intent-remarks" / f"readings-{which}.json")
                              .read_text())
        flagged = [k for k, r in readings.items() if analyser.analyse(r["text"], r["alternatives"]).intents]
        result[f"false_intents_{which}"] = [len(flagged), len(readings)]
    print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
