r"""Tone-only routing of callers from corpora the model never heard, on the live path (issue #28's verdict).

For each of the nine corpora in ``../shared/data``, its callers are scored by emotion model v3
trained on the *other eight* (``emoroute train-emotion-v3 --leave-out CORPUS``, the shipped model's
recipe, temperature and class prior; trained here into ``--models-dir`` when missing, a cached one
given the shipped calibration). Each caller is a real Twilio call to a real server (``emoroute
serve``, embedded Redis, no transcriber: tone alone): the
Media Stream frames, the VAD, the windows, the first decision of the shipped policy. Callers: up to
``--per-class`` clips of each of the four classes per corpus, every speaker of the corpus, chosen by
a fixed stride. Per corpus: right queue (angry -> retention, happy -> sales, neutral and sad ->
general), non-angry callers sent to retention, angry callers sent to sales and to retention, the
first reading's UAR and the mean priority per class. One JSON line.

``--recipe``, ``--c`` and ``--temperature`` train the fold models of a candidate recipe instead of
the shipped v3's (a rule's live step). ``--model DIR`` scores every corpus with one model instead
(the shipped default, say): for the corpora that model never heard, the comparison the rule names.

    python -m benchmarks.loco_live --data ../shared/data
    python -m benchmarks.loco_live --data ../shared/data --model audio_models/models/emotion-whisper-ecapa \\
        --corpora bangla,eyase,emovo,savee,aesdd
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from audio_models.audio_io import load_audio
from audio_models.calibration import LOG_FLOOR, load_calibration
from audio_models.training.corpora import ALL_CORPORA, LABELS, Clip, list_corpora
from audio_models.training.head_v3 import train_v3, write_calibration
from benchmarks.common import served
from emoroute.simulate import SimTarget, simulate_many

V3_DIR = Path(__file__).resolve().parents[1] / "audio_models" / "models" / "emotion-v3-nine-corpora"
RIGHT = {"angry": "retention", "happy": "sales", "neutral": "general", "sad": "general"}


def callers(data: Path, corpus: str, per_class: int, offset: float = 0.0) -> list[Clip]:
    """Return up to ``per_class`` clips of each class, spread evenly over the corpus (a fixed stride).

    ``offset`` (0 <= offset < 1) starts the stride that share of a step later: 0.5 picks callers
    that the default run never streams (whenever a class has at least two clips per caller).
    """
    if not 0.0 <= offset < 1.0:
        raise ValueError(f"offset is a share of the stride, 0 <= offset < 1, not {offset}")
    clips = list_corpora(data, (corpus,))
    out: list[Clip] = []
    for label in LABELS:
        mine = [c for c in clips if c.label == label]
        if mine:
            step = max(1, len(mine) // per_class)
            out += mine[int(offset * step)::step][:per_class]
    return out


async def _stream(target: SimTarget, clips: list[Clip], at_once: int) -> list[dict]:
    out: list[dict] = []
    for i in range(0, len(clips), at_once):
        batch = [(c.key, load_audio(c.path)) for c in clips[i:i + at_once]]
        out += await simulate_many(target, batch, calls=len(batch), realtime=False)
    return out


Recipe = tuple[str, float, float | None, float, dict[str, float]]  # name, head C, temperature, log floor, prior


def shipped_recipe() -> Recipe:
    """Return the shipped v3's recipe, head C, temperature, and the log floor and class prior it was fitted with."""
    import yaml

    hparams = yaml.safe_load((V3_DIR / "hparams.yaml").read_text())
    calibration = load_calibration(V3_DIR)
    return (hparams["recipe"], float(hparams["training"].get("C", 1.0)),
            calibration.temperature if calibration else None, calibration.log_floor if calibration else LOG_FLOOR,
            dict(calibration.log_prior) if calibration else {})


def fold_model(data: Path, corpus: str, models_dir: Path, recipe: Recipe | None = None) -> Path:
    """Return the v3 model that never heard ``corpus``, training it (seconds, from cached features) if missing.

    ``recipe`` is (recipe name, C, temperature, log floor, class prior); the shipped v3's by default.
    """
    out = models_dir / f"without-{corpus}"
    name, c, temperature, log_floor, prior = recipe or shipped_recipe()
    if not (out / "head.npz").is_file():
        train_v3(data, out, recipe_name=name, leave_out=corpus, temperature=temperature, c=c, log_floor=log_floor,
                 log_prior=prior)
    elif temperature is not None:
        stored = load_calibration(out)
        if stored is None or (stored.temperature, stored.log_floor, dict(stored.log_prior)) != (
                temperature, log_floor, prior):  # a head trained before: its calibration is the recipe's now
            write_calibration(out, temperature, log_floor, prior)
    return out


def scored(results: list[dict], label: dict[str, str]) -> dict[str, object]:
    """Return the routing and reading figures of one corpus's calls."""
    truth = [label[r["file"]] for r in results]
    queues = [r.get("queue") for r in results]
    firsts = [r.get("first_emotion") for r in results]
    present = [lab for lab in LABELS if lab in truth]
    recall = [np.mean([f == lab for f, t in zip(firsts, truth, strict=True) if t == lab]) for lab in present]
    priority: dict[str, list[int]] = defaultdict(list)
    for r, t in zip(results, truth, strict=True):
        if r.get("priority") is not None:
            priority[t].append(int(r["priority"]))
    angry = [q for q, t in zip(queues, truth, strict=True) if t == "angry"]
    calm = [q for q, t in zip(queues, truth, strict=True) if t != "angry"]
    return {
        "calls": len(results),
        "right_queue": round(float(np.mean([RIGHT[t] == q for q, t in zip(queues, truth, strict=True)])), 4),
        "non_angry_to_retention": round(float(np.mean([q == "retention" for q in calm])), 4) if calm else None,
        "angry_to_sales": round(float(np.mean([q == "sales" for q in angry])), 4) if angry else None,
        "angry_to_retention": round(float(np.mean([q == "retention" for q in angry])), 4) if angry else None,
        "first_reading_uar": round(float(np.mean(recall)), 4),
        "mean_priority": {k: round(float(np.mean(v)), 2) for k, v in priority.items()},
    }


def main() -> None:
    """Serve once per corpus with the model that never heard it, stream its callers, print the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--corpora", default=",".join(ALL_CORPORA))
    ap.add_argument("--per-class", type=int, default=20, help="callers per class and corpus (default: 20)")
    ap.add_argument("--offset", type=float, default=0.0,
                    help="start the callers' stride this share of a step later (0.5: callers the default run never "
                         "streams; default: 0)")
    ap.add_argument("--at-once", type=int, default=8, help="calls streamed at the same time (default: 8)")
    ap.add_argument("--models-dir", type=Path, default=Path("var/loco-models"),
                    help="where the leave-one-corpus-out models are kept (default: var/loco-models)")
    ap.add_argument("--model", type=Path, help="score every corpus with this one model directory instead")
    ap.add_argument("--policy", type=Path, help="policy YAML (default: the shipped one)")
    ap.add_argument("--recipe", help="a candidate v3 recipe for the fold models, e.g. base-b1-3 (default: the shipped "
                                     "v3's); give --models-dir a folder of its own")
    ap.add_argument("--c", type=float, help="the candidate head's C (default: the shipped v3's)")
    ap.add_argument("--temperature", type=float, help="the candidate's temperature (default: the shipped v3's)")
    ap.add_argument("--log-floor", type=float, help="the floor the candidate's temperature was fitted with "
                                                     "(default: the shipped v3's; audio_models.calibration)")
    args = ap.parse_args()
    name, c, temperature, log_floor, prior = shipped_recipe()
    recipe = (args.recipe or name, c if args.c is None else args.c,
              temperature if args.temperature is None else args.temperature,
              log_floor if args.log_floor is None else args.log_floor, prior)
    per_corpus: dict[str, object] = {}
    for corpus in args.corpora.split(","):
        clips = callers(args.data, corpus, args.per_class, args.offset)
        model = args.model or fold_model(args.data, corpus, args.models_dir, recipe)
        env = {"EMOROUTE_EMOTION_MODEL_DIR": str(model), "EMOROUTE_TRANSCRIBER": "none"}
        if args.policy:
            env["EMOROUTE_POLICY_FILE"] = str(args.policy)
        with served(env) as target:
            results = asyncio.run(_stream(target, clips, args.at_once))
        per_corpus[corpus] = scored(results, {c.key: c.label for c in clips})
    figures = list(per_corpus.values())

    def mean(key: str) -> float:
        vals = [f[key] for f in figures if f[key] is not None]  # type: ignore[index]
        return round(float(np.mean(vals)), 4)

    def worst(key: str) -> float:
        return max(f[key] for f in figures if f[key] is not None)  # type: ignore[index, type-var]

    print(json.dumps({
        "benchmark": "loco_live", "model": str(args.model) if args.model else "emotion-v3 leave-one-corpus-out",
        "recipe": None if args.model else {"recipe": recipe[0], "C": recipe[1], "temperature": recipe[2],
                                           "log_floor": recipe[3], "log_prior": recipe[4]},
        "transcriber": "none", "per_class": args.per_class, "offset": args.offset,
        "mean_right_queue": mean("right_queue"), "max_non_angry_to_retention": worst("non_angry_to_retention"),
        "max_angry_to_sales": worst("angry_to_sales"), "mean_angry_to_retention": mean("angry_to_retention"),
        "mean_first_reading_uar": mean("first_reading_uar"), "per_corpus": per_corpus}))


if __name__ == "__main__":
    main()
