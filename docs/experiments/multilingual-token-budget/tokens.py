"""Tokens a word and a character that Whisper's multilingual tokenizer spends per language (issue #30).

The request sentences of benchmarks/data/intents_languages and intents_languages_festival, the first
40 English training sentences of each intent, and one sentence pair written for the count in Greek,
Arabic, Bangla, Amharic and German. Rule: docs/experiments/2026-12-07-multilingual-token-budget-rule.md.

    PYTHONPATH=. python docs/experiments/multilingual-token-budget/tokens.py
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import yaml
from faster_whisper.tokenizer import Tokenizer

from audio_models.multilingual import MultilingualWhisper

REPO = Path(__file__).resolve().parents[3]
WRITTEN = {
    "el": "Θέλω να ακυρώσω το συμβόλαιό μου από τον επόμενο μήνα. Ο λογαριασμός μου είναι λάθος, "
          "με χρεώσατε δύο φορές.",
    "ar": "أريد إلغاء اشتراكي من الشهر القادم. الفاتورة خاطئة، لقد خصمتم المبلغ مرتين.",
    "bn": "আমি পরের মাস থেকে আমার সংযোগ বাতিল করতে চাই। আমার বিল ভুল, আপনারা দুবার টাকা কেটেছেন।",
    "am": "ከሚቀጥለው ወር ጀምሮ ምዝገባዬን መሰረዝ እፈልጋለሁ። ሂሳቡ ስህተት ነው፣ ሁለት ጊዜ አስከፍላችሁኛል።",
    "de": "Ich möchte meinen Vertrag ab nächstem Monat kündigen. Die Rechnung ist falsch, Sie haben zweimal abgebucht.",
}


def main() -> None:
    """Print each language's tokens a word and a character."""
    whisper = MultilingualWhisper(languages=[])
    tok = Tokenizer(whisper._model.hf_tokenizer, True, task="transcribe", language="en")
    texts: list[tuple[str, str]] = []
    for name in ("intents_languages", "intents_languages_festival"):
        with (REPO / "benchmarks" / "data" / name / "sentences.csv").open(encoding="utf-8") as f:
            texts += [(row["language"], row["text"]) for row in csv.DictReader(f)]
    training = yaml.safe_load((REPO / "router" / "intents" / "training.yaml").read_text(encoding="utf-8"))
    texts += [("en", text) for sentences in training["intents"].values() for text in sentences[:40]]
    texts += list(WRITTEN.items())
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for language, text in texts:
        row = counts[language]
        row[0] += len(tok.encode(" " + text))
        row[1] += len(text)
        row[2] += len(text.split())
    for language, (n, chars, words) in counts.items():
        print(f"{language} tokens/word {n / words:.2f} tokens/char {n / chars:.3f}")


if __name__ == "__main__":
    main()
