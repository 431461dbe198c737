"""Development probe for the noisy-line ear (issue #30): tiny.en against Whisper base (English) under babble.

Set 2's first four requests per intent in the given voices, 0.3 s / 0.5 s of line around each,
babble of four RAVDESS actors from ``first_actor`` (9: never the benchmark's 5-8) at each SNR,
through the 8 kHz mu-law line; exact intent from each recogniser's transcript.

    PYTHONPATH=. python docs/experiments/noisy-line-ear/dev_probe.py benchmarks/data/intents_eval_2 \
        flite-awb,flite-rms,flite-kal16,festival-slt-hts clean,5 9
"""
import csv, sys, time, json
from collections import defaultdict
from pathlib import Path
import numpy as np, torch
from audio_models.audio_io import load_audio
from audio_models.g711 import telephone_round_trip
from audio_models.multilingual import MultilingualWhisper
from benchmarks.common import shipped_recogniser
from benchmarks.noisy_lines import babble, mix, SR
from benchmarks.transcription_benchmark import primary_intent
from router.policy import load_policy
from router.text import load_text_analyser
torch.set_num_threads(1)
policy = load_policy(); an = load_text_analyser(policy.text); order = list(policy.text.intent_routes)
tiny = shipped_recogniser()
base = shipped_recogniser()
base._model = MultilingualWhisper()._model; base._tokenizer = None; base.name = "base-en"
data = Path(sys.argv[1]); voices = sys.argv[2].split(","); snrs = [None if s == "clean" else float(s) for s in sys.argv[3].split(",")]
first_actor = int(sys.argv[4]) if len(sys.argv) > 4 else 9
rows = list(csv.DictReader((data / "sentences.csv").open()))
by = defaultdict(list)
for r in rows: by[r["intent"]].append(r)
chosen = [r for v in by.values() for r in v[:4]]
out = {}
for snr in snrs:
    tally = defaultdict(list)
    for r in chosen:
        label = "general" if r["intent"] == "none" else r["intent"]
        for v in voices:
            sp = load_audio(data / f"{r['id']}-{v}.wav")
            sp = np.concatenate([np.zeros(int(0.3*SR), np.float32), sp, np.zeros(SR//2, np.float32)])
            if snr is not None:
                sp = mix(sp, babble(Path("/work/shared/data"), len(sp), first_actor=first_actor), snr)
            w = telephone_round_trip(np.clip(sp, -1, 1))
            for name, rec in (("tiny", tiny), ("base", base)):
                t0 = time.perf_counter(); seg = rec.transcribe(w); tally[name+"_s"].append(time.perf_counter()-t0)
                pred = primary_intent(an, seg.text, order, seg.alternatives) if seg.text else "general"
                tally[name].append(pred == label)
    out[str(snr)] = {k: round(float(np.mean(v)), 3) for k, v in tally.items()}
    out[str(snr)]["n"] = len(tally["tiny"])
    print(snr, out[str(snr)], flush=True)
