"""Share of callers taken for a wrong other language who are offered their own (issue #30 experiment).

For each clip that the live first utterance took for a served language other than its own (and
not English): is its own language among the first ``k`` served languages with a key that the
identifier ranked after the one taken (``LanguageRules.offers``)? Per condition and pooled, for
k = 1..5.

    PYTHONPATH=. python docs/experiments/language-check-offers/choose.py docs/experiments/language-check-offers/dev.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from router.policy import load_policy


def main() -> None:
    """Print one JSON object: per condition and pooled, wrong takes and the share offered their own, per k."""
    rows = json.loads(Path(sys.argv[1]).read_text())
    rules = load_policy().languages
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    served = {code for code, r in rules.routes.items() if r.key}
    for row in rows:
        taken, own = row["taken"], row["language"]
        if taken in ("en", own):
            continue  # (a language without a key, Amharic here, is never offered: those callers count as not offered)
        offered = [c for c in dict.fromkeys(row["ranking"]) if c not in ("en", taken) and c in served]
        for k in range(1, 6):
            for where in (row["condition"], "pooled"):
                cell = table[where][str(k)]
                cell[0] += own in offered[:k]
                cell[1] += 1
    out = {where: {"wrong": by_k["1"][1], **{f"k{k}": round(hit / n, 3) for k, (hit, n) in by_k.items()}}
           for where, by_k in table.items()}
    keyed = [r for r in rows if r["taken"] not in ("en", r["language"]) and r["language"] in served]
    out["pooled, own language has a key"] = {
        "wrong": len(keyed), **{f"k{k}": round(sum(r["language"] in [c for c in dict.fromkeys(r["ranking"])
                                                                     if c not in ("en", r["taken"]) and c in served][:k]
                                                   for r in keyed) / max(1, len(keyed)), 3) for k in range(1, 6)}}
    pairs: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["taken"] not in ("en", row["language"]):
            pairs[f"{row['language']}->{row['taken']}"] += 1
    out["wrong_takes"] = dict(sorted(pairs.items(), key=lambda kv: -kv[1]))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
