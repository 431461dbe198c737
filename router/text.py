"""What the caller said, analysed for routing: sentiment (VADER), intents and topics.

Intents come from a trained classifier (router.intent_model: calibrated probabilities on sentence
embeddings, several intents or none) and from the policy's keyword phrases, which act as exact
overrides: a phrase said un-negated names its intent whatever the classifier thinks, and an intent
whose phrase is negated ("I don't want to cancel") is never taken from the classifier. Topics
(``text.topics``, such as hardship) are phrases matched in a pass of their own after the intents: they join the intents
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

from router.intent_model import IntentExamples, IntentModel, IntentVocabularyError, load_or_fit, read_examples
from router.model_bundles import default_cache_dir
from router.own_words import OwnWordsReader
from router.policy import TextRules, TextSignals
from router.redact import redact
from router.semantic import SemanticModelError, SentenceEncoder

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


class IntentClassifier:
    """The trained model with the policy's threshold: text -> the intents it names."""

    def __init__(self, model: IntentModel, min_probability: float, top_min_probability: float | None = None) -> None:
        """Name an intent when its calibrated probability reaches ``min_probability``.

        ``top_min_probability`` (lower): when no intent reaches ``min_probability``, the likeliest
        one is still named from this probability (None: the same floor).
        """
        self.model = model
        self.min_probability = min_probability
        self.top_min_probability = min_probability if top_min_probability is None else top_min_probability

    def said(self, texts: Sequence[str], excludes: Sequence[frozenset[str]]) -> list[frozenset[str]]:
        """Return each text's intents (one encoder call for all), leaving out its ``excludes``.

        A text the model's request gate finds not said to a contact centre names none.
        """
        probs, requests = self.model.read(texts)
        floor = self.model.request_floor
        return [self._named(row, exclude) if request >= floor else frozenset()
                for row, request, exclude in zip(probs, requests, excludes, strict=True)]

    def _named(self, row: dict[str, float], exclude: frozenset[str]) -> frozenset[str]:
        allowed = {k: p for k, p in row.items() if k not in exclude}
        named = frozenset(k for k, p in allowed.items() if p >= self.min_probability)
        if named or not allowed:
            return named
        top = max(allowed, key=allowed.__getitem__)
        return frozenset((top,)) if allowed[top] >= self.top_min_probability else frozenset()


class TextAnalyser:
    """Turns a transcript into TextSignals; phrases and negation come from the policy file."""

    def __init__(self, rules: TextRules, *, classifier: IntentClassifier | None = None,
                 own_words: OwnWordsReader | None = None) -> None:
        """Compile the policy's intent phrases; ``classifier`` names intents by meaning beside them.

        ``own_words`` reads a non-English caller's own words (``analyse(original=...)``).
        """
        self.rules = rules
        self.classifier = classifier
        self.own_words = own_words
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
        """Return the intents said in ``text``: its phrases' and the classifier's (if one is set).

        The classifier may not name an intent whose phrase was negated ("I won't be cancelling,
        just a question").
        """
        found, negated = self.phrase_intents(text)
        if not text.strip():
            return found
        return found | self._guesses([text], [negated])[0]

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
        if not text.strip():
            return frozenset(), ""
        readings = [text, *alternatives]
        phrases = [self.phrase_intents(reading) for reading in readings]
        # An intent the best reading negates ("I don't want to cancel") is not taken from a
        # reading that lost the negation.
        negated_by_best = phrases[0][1]
        best = phrases[0][0] | self._guesses([text], [negated_by_best])[0]
        if best or not alternatives:
            return best, ""
        # only when the best reading names nothing are the others read (one batch: the common
        # case costs one encoder call)
        meaning = self._guesses(list(alternatives), [negated | negated_by_best for _, negated in phrases[1:]])
        for reading, (said, _), guessed in zip(alternatives, phrases[1:], meaning, strict=True):
            found = (said | guessed) - negated_by_best
            if found:
                return found, reading
        return frozenset(), ""

    def _own_words(self, original: str) -> frozenset[str]:
        """The intents a non-English caller's own words name, or none (no reader, not ready, or it failed)."""
        if self.own_words is None:
            return frozenset()
        try:
            return self.own_words.intents(original)
        except Exception:  # noqa: BLE001 - the translation's reading stands: a caller is routed regardless
            log.exception("own-words intent reading failed; using the translation's")
            return frozenset()

    def _guesses(self, texts: list[str], negated: list[frozenset[str]]) -> list[frozenset[str]]:
        """The classifier's intents for each text, or none (no classifier, or it failed)."""
        if self.classifier is None or not texts:
            return [frozenset()] * len(texts)
        try:
            return self.classifier.said(texts, negated)
        except Exception:  # noqa: BLE001 - the phrases' answer stands: a caller is routed regardless
            log.exception("intent classifier failed; using the phrases' answer")
            return [frozenset()] * len(texts)

    def analyse(self, text: str, alternatives: Sequence[str] = (), *, sensitive: bool = False,
                original: str = "") -> TextSignals:
        """Return sentiment, intents (with any topics) and the redacted snippet of a transcript.

        ``alternatives`` are other readings of the same audio, likeliest first; when one of them
        names the intents or the topics, the snippet shows it too ("… [or: …]") so a reader sees why.
        ``sensitive``: the call's recent speech named a card, PIN, security code or account
        number, so short digit runs are masked too (router.redact). ``original``: what a caller
        in another language said, of which ``text`` is the translation; the intents it names
        (router.own_words) replace the translation's, which stand when it names none.
        """
        clean = redact(text, sensitive=sensitive)
        if not clean.strip():
            return TextSignals(None, frozenset(), "")
        others = [redact(a, sensitive=sensitive) for a in alternatives]
        intents, reading = self.intents_of_readings(clean, others)
        own = self._own_words(redact(original, sensitive=sensitive)) if original else frozenset()
        if own:
            intents, reading = own, ""
        topics, topic_reading = self.topics_of_readings(clean, others)
        shown = [r for r in dict.fromkeys((reading, topic_reading)) if r]
        snippet = "".join([clean, *(f" [or: {r}]" for r in shown)])
        return TextSignals(round(self.sentiment(clean), 3), intents | topics, snippet)


SHIPPED_INTENT_MODEL = Path(__file__).resolve().parent / "intents" / "model.npz"


def intent_examples(rules: TextRules, policy_file: Path | None = None) -> IntentExamples:
    """Return the classifier's examples: the training file plus the policy's own per intent."""
    path = rules.training_path(policy_file)
    if path is None:
        raise IntentVocabularyError("the policy has no text.intent_model")
    return read_examples(path, rules.extra_examples())


def load_text_analyser(rules: TextRules, policy_file: Path | None = None, *,
                       model_cache_dir: Path | None = None) -> TextAnalyser:
    """Return the analyser for ``rules``, with the trained intent classifier when the policy names one.

    The shipped fit (``router/intents/model.npz``) is used when the examples are exactly those it was
    fitted on; otherwise the fit cached under ``model_cache_dir`` is, or a fresh one (seconds).

    Raises router.semantic.SemanticModelError when the encoder is missing or the examples are
    unreadable, or a routed intent is neither learnt nor phrased.
    """
    if rules.intent_model is None:
        return TextAnalyser(rules)
    try:
        examples = intent_examples(rules, policy_file)
    except IntentVocabularyError as exc:
        raise SemanticModelError(str(exc)) from exc
    unknown = set(rules.intent_routes) - set(examples.intents) - set(rules.intents)
    if unknown:
        raise SemanticModelError(f"text.intent_routes names intents with neither examples nor phrases: "
                                 f"{sorted(unknown)}; add examples under text.intent_routes.<name>.examples")
    encoder = SentenceEncoder(rules.intent_model.encoder, cache_dir=model_cache_dir)
    model = load_or_fit(examples, encoder, shipped=SHIPPED_INTENT_MODEL,
                        cache_dir=model_cache_dir or default_cache_dir())
    own_words = OwnWordsReader(examples, rules.intent_model.min_probability,
                               cache_dir=model_cache_dir or default_cache_dir())
    return TextAnalyser(rules, classifier=IntentClassifier(model, rules.intent_model.min_probability,
                                                                 rules.intent_model.top_min_probability),
                        own_words=own_words)
