"""What the caller said, analysed for routing: sentiment (VADER), intents and topics.

Intents come from the policy's keyword phrases first; when no phrase matches, the optional
semantic classifier (router.semantic) may name one by meaning. Topics (``text.topics``, such as
hardship) are phrases matched in a pass of their own after the intents: they join the intents
the call stores, for its cues and analytics, but route nothing and never change which intent
is found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from router.policy import TextRules, TextSignals
from router.redact import redact
from router.semantic import GENERAL, SemanticIntents, SemanticModelError

log = logging.getLogger(__name__)

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


# Negation does not reach across these: "I'm switching, so cancel everything" is not negated.
_CLAUSE_BREAK = re.compile(r"[.,;:!?]+|\b(?:but|so|because|although|though|however)\b")
# A recogniser may split a word ("un subscribe", "over charged"): two tokens joined may match
# one phrase word, but a wildcard may then add at most this many letters ("can cellular" is not "cancel*").
_JOINED_SUFFIX = 3


def _word_matches(pattern: str, tok: str, *, joined: bool = False) -> bool:
    if not pattern.endswith("*"):
        return tok == pattern
    stem = pattern[:-1]
    return tok.startswith(stem) and (not joined or len(tok) <= len(stem) + _JOINED_SUFFIX)


@dataclass(frozen=True)
class _Phrase:
    intent: str
    words: tuple[str, ...]

    def match_length(self, toks: list[str], i: int) -> int:
        """Return how many tokens the phrase covers starting at ``toks[i]`` (0: no match)."""
        j = i
        for pattern in self.words:
            if j < len(toks) and _word_matches(pattern, toks[j]):
                j += 1
            elif j + 1 < len(toks) and _word_matches(pattern, toks[j] + toks[j + 1], joined=True):
                j += 2
            else:
                return 0
        return j - i


class TextAnalyser:
    """Turns a transcript into TextSignals; phrases and negation come from the policy file."""

    def __init__(self, rules: TextRules, *, semantic: SemanticIntents | None = None) -> None:
        """Compile the policy's intent phrases; ``semantic`` is asked when none matches."""
        self.rules = rules
        self.semantic = semantic
        self._phrases = [_Phrase(intent, _phrase_words(p)) for intent, phrases in rules.intents.items()
                         for p in phrases]
        # phrases that name no intent: they consume their words, so a shorter intent phrase inside
        # them does not count ("a fee for a line I cancelled" is not a wish to cancel)
        self._phrases += [_Phrase("", _phrase_words(p)) for p in rules.no_intent_phrases]
        self._topic_phrases = [_Phrase(topic, _phrase_words(p)) for topic, phrases in rules.topics.items()
                               for p in phrases]
        self._topic_phrases += [_Phrase("", _phrase_words(p)) for p in rules.no_topic_phrases]
        self._negations = set(rules.negation_words)
        self._vader = SentimentIntensityAnalyzer()

    def intents(self, text: str) -> frozenset[str]:
        """Return the intents said in ``text``: by phrase, else by meaning (if a classifier is set).

        The semantic classifier is asked only when no phrase matches un-negated, and it may not
        name an intent whose phrase was negated ("I won't be cancelling, just a question").
        """
        found, negated = self.phrase_intents(text)
        if found or self.semantic is None or not text.strip():
            return found
        try:
            guess = self.semantic.guess(text, exclude=negated)
        except Exception:  # noqa: BLE001 - the phrases' answer stands: a caller is routed regardless
            log.exception("semantic intent classifier failed; using the phrases' answer (none)")
            return found
        return frozenset() if guess.intent == GENERAL else frozenset({guess.intent})

    def phrase_intents(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """Return (intents whose phrases occur un-negated, intents whose phrases occur negated).

        Within each clause, the longest phrase starting at a word wins and its words are consumed
        ("buying the premium plan" is a purchase, not also an upgrade for "premium"); a phrase is
        negated by a negation word at most ``negation_window`` words before it in the same clause.
        """
        return self._scan(text, self._phrases)

    def topics(self, text: str) -> tuple[frozenset[str], frozenset[str]]:
        """Return (topics whose phrases occur un-negated, topics whose phrases occur negated).

        The same scan as ``phrase_intents`` over the topic phrases alone (and ``no_topic_phrases``,
        which consume their words: "the funeral director's office" is a business, not a loss).
        """
        return self._scan(text, self._topic_phrases) if self._topic_phrases else (frozenset(), frozenset())

    def topics_of_readings(self, text: str, alternatives: Sequence[str] = ()) -> tuple[frozenset[str], str]:
        """Return the topics of ``text``, else of the first alternative reading that names any.

        The second value is that alternative ("" when ``text`` named them, or none did); a topic
        ``text`` negates ("I'm not in debt") is never taken from an alternative.
        """
        found, negated = self.topics(text)
        if found or not text.strip():
            return found, ""
        for reading in alternatives:
            other = self.topics(reading)[0] - negated
            if other:
                return other, reading
        return frozenset(), ""

    def _scan(self, text: str, phrases: Sequence[_Phrase]) -> tuple[frozenset[str], frozenset[str]]:
        found: set[str] = set()
        negated: set[str] = set()
        for clause in _CLAUSE_BREAK.split(text.lower().replace("’", "'")):
            toks = tokens(clause)
            i = 0
            while i < len(toks):
                best: _Phrase | None = None
                length = 0
                for phrase in phrases:
                    n = phrase.match_length(toks, i)
                    if n > length:
                        best, length = phrase, n
                if best is None:
                    i += 1
                    continue
                window = toks[max(0, i - self.rules.negation_window) : i]
                if not best.intent:
                    pass
                elif best.words[0] in self._negations or not self._negations & set(window):
                    found.add(best.intent)
                else:
                    negated.add(best.intent)
                i += length
        return frozenset(found), frozenset(negated)

    def sentiment(self, text: str) -> float:
        """Return VADER's compound sentiment in [-1, 1]."""
        return float(self._vader.polarity_scores(text)["compound"])

    def intents_of_readings(self, text: str, alternatives: Sequence[str] = ()) -> tuple[frozenset[str], str]:
        """Return the intents of ``text``, else of the first alternative reading that names any.

        Each reading is read as ``intents`` reads one (phrases, else meaning). The second value is
        the alternative that named them ("" when ``text`` did, or none did); an intent that
        ``text`` negates is never taken from an alternative. The recogniser's next-best readings
        often hold the word the best one misheard ("I think I've been built while" / "I think I've
        been billed twice"); measured on the labelled caller utterances, looking in them gains 6%
        from audio (docs/MODEL_CARD.md). The readings the classifier must see go to it in one batch.
        """
        readings = [text, *alternatives]
        phrases = [self.phrase_intents(reading) for reading in readings]
        # An intent the best reading negates ("I don't want to cancel") is not taken from a
        # reading that lost the negation.
        negated_by_best = phrases[0][1]
        if phrases[0][0] or not text.strip():
            return phrases[0][0], ""
        # Readings past the first one whose phrases answer can never be reached.
        last = next((i for i, (found, _) in enumerate(phrases) if found - (negated_by_best if i else frozenset())),
                    len(readings) - 1)
        asked = [i for i in range(last + 1) if not phrases[i][0]]
        meaning = dict(zip(asked, self._guesses([readings[i] for i in asked], [phrases[i][1] for i in asked]),
                           strict=True))
        for i, reading in enumerate(readings[: last + 1]):
            found = phrases[i][0] or meaning[i]
            if i:
                found -= negated_by_best
            if found:
                return found, "" if i == 0 else reading
        return frozenset(), ""

    def _guesses(self, texts: list[str], negated: list[frozenset[str]]) -> list[frozenset[str]]:
        """The semantic classifier's intent for each text, or none (no classifier, or it failed)."""
        if self.semantic is None or not texts:
            return [frozenset()] * len(texts)
        try:
            guesses = self.semantic.guess_many(texts, negated)
        except Exception:  # noqa: BLE001 - the phrases' answer stands: a caller is routed regardless
            log.exception("semantic intent classifier failed; using the phrases' answer (none)")
            return [frozenset()] * len(texts)
        return [frozenset() if g.intent == GENERAL else frozenset({g.intent}) for g in guesses]

    def analyse(self, text: str, alternatives: Sequence[str] = (), *, sensitive: bool = False) -> TextSignals:
        """Return sentiment, intents (with any topics) and the redacted snippet of a transcript.

        ``alternatives`` are other readings of the same audio, likeliest first; when one of them
        names the intents or the topics, the snippet shows it too ("… [or: …]") so a reader sees why.
        ``sensitive``: the call's recent speech named a card, PIN, security code or account
        number, so short digit runs are masked too (router.redact).
        """
        clean = redact(text, sensitive=sensitive)
        if not clean.strip():
            return TextSignals(None, frozenset(), "")
        others = [redact(a, sensitive=sensitive) for a in alternatives]
        intents, reading = self.intents_of_readings(clean, others)
        topics, topic_reading = self.topics_of_readings(clean, others)
        shown = [r for r in dict.fromkeys((reading, topic_reading)) if r]
        snippet = "".join([clean, *(f" [or: {r}]" for r in shown)])
        return TextSignals(round(self.sentiment(clean), 3), intents | topics, snippet)


def load_text_analyser(rules: TextRules, policy_file: Path | None = None, *,
                       model_cache_dir: Path | None = None) -> TextAnalyser:
    """Return the analyser for ``rules``, with the semantic classifier when the policy asks for one.

    ``model_cache_dir`` is where the examples' embeddings are cached (router.semantic).

    Raises router.semantic.SemanticModelError when the examples are unreadable or name an
    intent the policy has no phrases for.
    """
    path = rules.examples_path(policy_file)
    if path is None or rules.semantic is None:
        return TextAnalyser(rules)
    semantic = SemanticIntents.from_file(path, min_probability=rules.semantic.min_probability,
                                         min_similarity=rules.semantic.min_similarity,
                                         encoder=rules.semantic.encoder, cache_dir=model_cache_dir)
    unknown = set(semantic.intents) - set(rules.intents) - {GENERAL}
    if unknown:
        raise SemanticModelError(f"{path} has examples for intents with no phrases under text.intents: "
                                 f"{sorted(unknown)}")
    return TextAnalyser(rules, semantic=semantic)
