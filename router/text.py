"""What the caller said, analysed for routing: sentiment (VADER) and intents (policy phrases)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from router.policy import TextRules, TextSignals
from router.redact import redact

_CONTRACTIONS = {
    "don't": "do not", "dont": "do not", "doesn't": "does not", "doesnt": "does not", "didn't": "did not",
    "won't": "will not", "wont": "will not", "can't": "can not", "cannot": "can not", "isn't": "is not",
    "aren't": "are not", "wasn't": "was not", "haven't": "have not", "hasn't": "has not", "shouldn't": "should not",
    "wouldn't": "would not", "i'm": "i am", "it's": "it is", "i'd": "i would", "i've": "i have", "i'll": "i will",
}


def tokens(text: str) -> list[str]:
    """Return lower-case word tokens with contractions expanded and punctuation dropped."""
    words = re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("’", "'")).split()
    out: list[str] = []
    for w in words:
        out.extend(_CONTRACTIONS.get(w, w.strip("'")).split())
    return [w for w in out if w]


def _phrase_words(phrase: str) -> tuple[str, ...]:
    """Return a policy phrase as match tokens, keeping a trailing '*' wildcard on a word."""
    out: list[str] = []
    for word in phrase.split():
        star = word.endswith("*")
        expanded = tokens(word.rstrip("*"))
        if star and expanded:
            expanded[-1] += "*"
        out.extend(expanded)
    return tuple(out)


@dataclass(frozen=True)
class _Phrase:
    intent: str
    words: tuple[str, ...]

    def matches_at(self, toks: list[str], i: int) -> bool:
        if i + len(self.words) > len(toks):
            return False
        for pattern, tok in zip(self.words, toks[i : i + len(self.words)], strict=True):
            if pattern.endswith("*"):
                if not tok.startswith(pattern[:-1]):
                    return False
            elif tok != pattern:
                return False
        return True


class TextAnalyser:
    """Turns a transcript into TextSignals; phrases and negation come from the policy file."""

    def __init__(self, rules: TextRules) -> None:
        """Compile the policy's intent phrases."""
        self.rules = rules
        self._phrases = [_Phrase(intent, _phrase_words(p)) for intent, phrases in rules.intents.items()
                         for p in phrases]
        self._negations = set(rules.negation_words)
        self._vader = SentimentIntensityAnalyzer()

    def intents(self, text: str) -> frozenset[str]:
        """Return the intents whose phrases occur un-negated in ``text``."""
        toks = tokens(text)
        found: set[str] = set()
        for i in range(len(toks)):
            for phrase in self._phrases:
                if phrase.intent in found or not phrase.matches_at(toks, i):
                    continue
                window = toks[max(0, i - self.rules.negation_window) : i]
                if phrase.words[0] in self._negations or not self._negations & set(window):
                    found.add(phrase.intent)
        return frozenset(found)

    def sentiment(self, text: str) -> float:
        """Return VADER's compound sentiment in [-1, 1]."""
        return float(self._vader.polarity_scores(text)["compound"])

    def analyse(self, text: str) -> TextSignals:
        """Return sentiment, intents and the redacted snippet of a transcript."""
        clean = redact(text)
        if not clean.strip():
            return TextSignals(None, frozenset(), "")
        return TextSignals(round(self.sentiment(clean), 3), self.intents(clean), clean)
