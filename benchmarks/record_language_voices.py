"""Record the other-language caller requests with Debian's recorded-diphone voices (issue #30).

Two sets. benchmarks/data/intents_languages_festival/sentences.csv (Italian, Czech and Finnish
requests): each sentence spoken by every festival voice of its language. With ``--mbrola``,
benchmarks/data/intents_languages_mbrola/sentences.csv (Spanish, Italian, Polish and Greek requests,
written on 2026-12-07): each sentence spoken by espeak-ng driving Debian's mbrola voices of its
language (es3, es4; it1-it4; pl1; gr1, gr2; mbrola's es1 and es2 lose most vowels under espeak-ng
1.51 and are left out). Both are voices built from recorded human diphones (closer to people than
espeak-ng's formant synthesis), made telephone-like with sox (8 kHz, mono, G.711 mu-law WAV, what a
call carries) as <id>-<voice>.wav. The recordings are committed; only re-recording needs the tools
(none of them is an EmoRoute dependency; the mbrola voices are in Debian's non-free component):

    apt-get install festival sox festlex-ifd festvox-italp16k festvox-itapc16k festvox-czech-dita
    apt-get install festvox-czech-machac festvox-czech-ph festvox-suopuhe-lj festvox-suopuhe-mv
    apt-get install espeak-ng mbrola mbrola-es3 mbrola-es4 mbrola-it1 mbrola-it2 mbrola-it3 mbrola-it4 \
        mbrola-pl1 mbrola-gr1 mbrola-gr2
    python -m benchmarks.record_language_voices
    python -m benchmarks.record_language_voices --mbrola
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "intents_languages_festival"
MBROLA_DATA = Path(__file__).resolve().parent / "data" / "intents_languages_mbrola"
MBROLA = {"es": ("es3", "es4"), "it": ("it1", "it2", "it3", "it4"), "pl": ("pl1",), "el": ("gr1", "gr2")}
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
    ap.add_argument("--data", type=Path, default=None,
                    help="the set's folder, holding sentences.csv (default: the festival set, or the mbrola set)")
    ap.add_argument("--mbrola", action="store_true", help="speak with espeak-ng's mbrola voices, not festival's")
    args = ap.parse_args()
    data = args.data or (MBROLA_DATA if args.mbrola else DATA)
    rows = list(csv.DictReader((data / "sentences.csv").open(encoding="utf-8")))
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            if args.mbrola:
                for voice in MBROLA[row["language"]]:
                    raw = Path(tmp) / "raw.wav"
                    subprocess.run(["espeak-ng", "-v", f"mb-{voice}", "-w", str(raw), row["text"]], check=True,
                                   capture_output=True)
                    subprocess.run(["sox", "-G", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                                    str(data / f"{row['id']}-mbrola-{voice}.wav")], check=True, capture_output=True)
                    count += 1
                continue
            encoding, voices = VOICES[row["language"]]
            text = Path(tmp) / "text.txt"
            text.write_bytes(row["text"].encode(encoding))
            for name, voice in voices.items():
                raw = Path(tmp) / f"{row['id']}-{name}.wav"
                subprocess.run(["text2wave", "-eval", f"({'voice_' + voice})", str(text), "-o", str(raw)],
                               check=True, capture_output=True)
                subprocess.run(["sox", "-G", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                                str(data / f"{row['id']}-{name}.wav")], check=True, capture_output=True)
                count += 1
    print(f"recorded {count} recordings of {len(rows)} sentences into {data}")


if __name__ == "__main__":
    main()
