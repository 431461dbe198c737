"""Record the labelled caller utterances (benchmarks/data/intents/labels.csv) with espeak-ng.

Each line is spoken by espeak-ng, then made telephone-like with sox: 8 kHz, mono,
G.711 mu-law WAV. Needs Debian's espeak-ng and sox; the recordings are committed,
so only re-recording needs them.

    python -m benchmarks.record_intent_utterances [ID ...]
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "intents"


def main() -> None:
    """Speak the rows of labels.csv into <id>.wav (all, or the ids given on the command line)."""
    with (DATA / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    wanted = set(sys.argv[1:])
    rows = [row for row in rows if not wanted or row["id"] in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            raw = Path(tmp) / f"{row['id']}.wav"
            subprocess.run(["espeak-ng", "-v", row["voice"], "-s", row["speed"], "-w", str(raw), row["text"]],
                           check=True)
            subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "mu-law",
                            str(DATA / f"{row['id']}.wav")], check=True)
    print(f"recorded {len(rows)} utterances into {DATA}")


if __name__ == "__main__":
    main()
