"""Offline tone-only figures of saved leave-one-corpus-out posteriors at a given temperature (try 2's check).

python docs/experiments/emotion-v3-noisy/at_temperature.py var/v3n-probs/v3n.npz 6.08
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loco_noisy import summary  # noqa: E402

from audio_models.calibration import LOG_FLOOR, temperature_scale  # noqa: E402
from router.policy import load_policy  # noqa: E402


def main() -> None:
    """Print one JSON line: clean and noisy summaries at the temperature given."""
    z = np.load(sys.argv[1])
    t = float(sys.argv[2])
    policy = load_policy()
    out = {"posteriors": sys.argv[1], "temperature": t}
    for cond in ("clean", "noisy"):
        out[cond] = summary(temperature_scale(z[cond], t, LOG_FLOOR), z["labels"], z["corpus"], policy)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
