import csv, json, sys
from pathlib import Path
import torch
from audio_models import multilingual as M
from audio_models.audio_io import load_audio
from audio_models.multilingual import load_multilingual
from benchmarks.common import shipped_recogniser
from router.policy import load_policy
torch.set_num_threads(1)
policy = load_policy()
t = load_multilingual(shipped_recogniser(), list(policy.languages.routes), min_probability=policy.languages.min_probability)
seen = []
orig = M.finish_segments
def spy(segs, floor, name):
    out = orig(segs, floor, name)
    seen.append((segs[0].text[:40], round(float(out.confidence), 3), out.empty))
    return out
M.finish_segments = spy
data = Path("benchmarks/data/intents_languages_mbrola_3")
from collections import Counter
c = Counter()
for row in csv.DictReader((data / "sentences.csv").open(encoding="utf-8")):
    for p in sorted(data.glob(f"{row['id']}-*.wav")):
        seen.clear()
        seg = t.transcribe(load_audio(p))
        if seg.language == "en" or not seen:
            c["english or no multilingual decode"] += 1; continue
        own = seen[0]; tr = seen[1] if len(seen) > 1 else None
        if own[2]: c["own words below floor" + (" (text blank: loop)" if not own[0] else "")] += 1
        elif tr and tr[2]: c["translation below floor (own words fine)"] += 1
        else: c["returned"] += 1
print(dict(c))
