"""Record the other-language caller requests with Debian's festival voices (issue #30).

The set: benchmarks/data/intents_languages_festival/sentences.csv (Italian, Czech and Finnish
requests). Each sentence is spoken by every festival voice of its language, voices built from
recorded human diphones (closer to people than espeak-ng's formant synthesis), then made
telephone-like with sox (8 kHz, mono, G.711 mu-law WAV, what a call carries) as
<id>-<voice>.wav. The recordings are committed; only re-recording needs the tools (none of them is
an EmoRoute dependency):

    apt-get install festival sox festlex-ifd festvox-italp16k festvox-itapc16k festvox-czech-dita
    apt-get install festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv
    python -m benchmarks.record_language_voices
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "intents_languages_festival"
# language -> (the text encoding festival's voices for it read, {voice name in files: festival voice})
VOICES = {
    "it": ("iso-8859-1", {"festival-it-lp": "lp_diphone", "festival-it-pc": "pc_diphone"}),
    "cs": ("iso-8859-2", {"festival-cs-dita": "czech_dita", "festival-cs-machac": "czech_machac",
                          "festival-cs-ph": "czech_ph"}),
    "fi": ("iso-8859-1", {"festival-fi-lj": "suo_fi_lj_diphone", "festival-fi-mv": "hy_fi_mv_diphone"}),
}


def main() -> None:
    """Record every sentence with every festival voice of its language into <id>-<voice>.wav."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="the set's folder, holding sentences.csv")
    args = ap.parse_args()
    rows = list(csv.DictReader((args.data / "sentences.csv").open(encoding="utf-8")))
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            encoding, voices = VOICES[row["language"]]
            text = Path(tmp) / "text.txt"
            text.write_bytes(row["text"].encode(encoding))
            for name, voice in voices.items():
                raw = Path(tmp) / f"{row['id']}-{name}.wav"
                subprocess.run(["text2wave", "-eval", f"({'voice_' + voice})", str(text), "-o", str(raw)],
                               check=True, capture_output=True)
                subprocess.run(["sox", "-G", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                                str(args.data / f"{row['id']}-{name}.wav")], check=True, capture_output=True)
                count += 1
    print(f"recorded {count} recordings of {len(rows)} sentences into {args.data}")


if __name__ == "__main__":
    main()
