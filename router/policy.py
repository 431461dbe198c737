"""The routing policy: a pure function from an emotion trajectory (and text) to a Decision.

Loaded from a YAML file (``router/policy.yaml`` by default) and validated at
start-up; nothing here touches Redis, Twilio or audio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"
Priority = Field(ge=1, le=10)
Probability = Field(ge=0.0, le=1.0)
Affect = Field(ge=-1.0, le=1.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueSpec(_Strict):
    """One destination queue."""

    twilio_queue: str = Field(min_length=1, max_length=64)
    description: str = ""


class DecisionRules(_Strict):
    """When to decide."""

    max_listen_seconds: float = Field(gt=0, le=60)
    window_readings: int = Field(ge=1, le=20)


class _EmotionRoute(_Strict):
    """What every emotion rule has: its queue, its probability threshold and its priority range."""

    queue: str
    min_probability: float = Probability
    priority_min: int = Priority
    priority_max: int = Priority

    @model_validator(mode="after")
    def _priority_range(self) -> _EmotionRoute:
        if self.priority_min > self.priority_max:
            raise ValueError(f"priority_min {self.priority_min} > priority_max {self.priority_max}")
        return self


class AngerRules(_EmotionRoute):
    """Sustained anger or frustration."""

    frustration_arousal_min: float = Affect
    frustration_valence_max: float = Affect


class PositiveRules(_EmotionRoute):
    """Clear positive affect."""

    valence_min: float = Affect


class SadnessRules(_Strict):
    """Distress without anger."""

    min_probability: float = Probability
    priority: int = Priority


class IntentRoute(_Strict):
    """Where one intent sends a call; ``examples`` are a supervisor's own sentences for the classifier."""

    queue: str
    priority: int = Priority
    examples: list[str] = []


class IntentModelRules(_Strict):
    """The trained intent classifier (router.intent_model): its training file, encoder and threshold."""

    training: str = Field("intents/training.yaml", min_length=1)
    encoder: Literal["all-MiniLM-L6-v2"] = "all-MiniLM-L6-v2"
    # an intent is said when its calibrated probability reaches this
    min_probability: float = Probability
    # when none reaches it, the likeliest intent is still said from this probability (absent: the same)
    top_min_probability: float | None = Field(None, gt=0, le=1)
    # `emoroute train-intents` refuses intents whose held-out examples are read as another this often
    max_overlap: float = Field(0.25, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _top_floor_below_the_floor(self) -> IntentModelRules:
        if self.top_min_probability is not None and self.top_min_probability > self.min_probability:
            raise ValueError(f"top_min_probability ({self.top_min_probability}) is the lower floor for the likeliest "
                             f"intent: it cannot exceed min_probability ({self.min_probability})")
        return self


class EscalationRules(_Strict):
    """A caller asking for someone senior: the classifier's signal, which raises the priority."""

    intent: str = Field("escalation", min_length=1)
    priority_step: int = Field(2, ge=0, le=9)


class TextRules(_Strict):
    """Routing by what the caller said."""

    intents: dict[str, list[str]] = {}
    intent_model: IntentModelRules | None = None
    escalation: EscalationRules | None = None
    negation_words: list[str] = []
    no_intent_phrases: list[str] = []
    negation_window: int = Field(3, ge=0, le=10)
    asr_vocabulary: str = Field("", max_length=800)
    asr_alternatives: int = Field(0, ge=0, le=4)
    asr_alternative_margin: float = Field(0.1, ge=0, le=5)
    asr_beam_size: int = Field(5, ge=1, le=10)
    asr_band_extension: bool = False
    intent_routes: dict[str, IntentRoute] = {}
    angry_purchase_queue: str
    # Topics: phrases matched in a pass of their own, after the intents and never competing with
    # them; a topic is stored with the call's intents (so cues, the agent card and the analytics
    # see it) but routes nothing and is not known to the meaning classifier.
    topics: dict[str, list[str]] = {}
    no_topic_phrases: list[str] = []

    @model_validator(mode="after")
    def _routes_name_known_intents(self) -> TextRules:
        if self.intent_model is None:
            unknown = set(self.intent_routes) - set(self.intents)
            if unknown:
                raise ValueError(f"intent_routes names intents with no phrases under text.intents (and no "
                                 f"intent_model to learn them): {sorted(unknown)}")
        for name, route in self.intent_routes.items():
            if any(not s.strip() for s in route.examples):
                raise ValueError(f"text.intent_routes.{name}.examples has an empty sentence")
        clash = set(self.topics) & set(self.intents)
        if clash:
            raise ValueError(f"text.topics names intents (a name is a topic or an intent, not both): {sorted(clash)}")
        for kind, named, plain in (("intents", self.intents, self.no_intent_phrases),
                                   ("topics", self.topics, self.no_topic_phrases)):
            for name, phrases in named.items():
                if not phrases or any(not p.strip() for p in phrases):
                    raise ValueError(f"text.{kind}.{name} needs at least one non-empty phrase")
            if any(not p.strip() for p in plain):
                raise ValueError(f"text.no_{kind[:-1]}_phrases has an empty phrase")
        return self

    def training_path(self, policy_file: Path | None = None) -> Path | None:
        """Return the intent classifier's training file, relative paths taken from the policy file's folder."""
        if self.intent_model is None:
            return None
        path = Path(self.intent_model.training)
        return path if path.is_absolute() else (policy_file or DEFAULT_POLICY_FILE).resolve().parent / path

    def extra_examples(self) -> dict[str, list[str]]:
        """Return the examples the policy adds per intent (a supervisor's own intents and wordings)."""
        return {name: list(route.examples) for name, route in self.intent_routes.items() if route.examples}


class ReprioritiseRules(_Strict):
    """Raising a waiting call's priority when anger rises."""

    rising_delta: float = Field(gt=0, le=1)
    trend_seconds: float = Field(gt=0)
    step: int = Field(ge=1, le=9)


class AgeingRules(_Strict):
    """How waiting time turns into priority."""

    seconds_per_priority_point: float = Field(gt=0)


class AlertRules(_Strict):
    """When the supervisor wallboard raises an alert."""

    anger_probability: float = Probability
    anger_seconds: float = Field(gt=0)
    max_wait_seconds: float = Field(gt=0)


class CueRule(_Strict):
    """One suggested opening line and when it applies.

    ``emotion`` matches the latest reading's label; with ``min_probability`` it also matches when
    the reading's probability of that emotion reaches it (a cue whose misses cost more than its
    false alarms: "a few warm words" to a low caller heard as neutral).
    """

    emotion: str | None = None
    min_probability: float | None = Field(None, gt=0, le=1)
    trend: Literal["rising", "falling", "steady"] | None = None
    intent: str | None = None
    say: str = Field(min_length=1, max_length=300)


class Prompts(_Strict):
    """What the caller hears."""

    disclosure: str = Field(min_length=1)
    question: str = Field(min_length=1)
    hold: str = Field(min_length=1)
    voice: str = Field(min_length=1)


class EmotionRouting(_Strict):
    """Routing by tone as the least expected cost of a misroute (on) or by thresholds (off)."""

    cost_aware: bool = False
    # costs[true emotion][queue]: what sending such a caller to that queue costs (0: the right place)
    costs: dict[str, dict[str, float]] = Field(default_factory=dict)
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    # what a seat in a queue costs whoever takes it (a scarce retention seat), added to every caller's
    # expected cost there, so that queue cannot become the catch-all
    seat_costs: dict[str, float] = Field(default_factory=dict)
    # on tone alone, the anger queue needs at least this mean (calibrated) P(angry); below it the
    # caller goes to the default queue with the priority the tone earns
    retention_min_anger: float = Field(0.0, ge=0.0, le=1.0)
    # likewise the positive queue needs at least this mean P(happy) on tone alone (an angry caller
    # heard as happy sent to sales is the costliest mistake)
    sales_min_happy: float = Field(0.0, ge=0.0, le=1.0)
    # high arousal with negative valence (no anger evidence) sends a caller to the anger queue (true),
    # or only raises their priority where they go (false)
    frustration_to_anger_queue: bool = True

    @model_validator(mode="after")
    def _complete(self) -> EmotionRouting:
        if self.cost_aware and not self.costs:
            raise ValueError("emotion_routing.cost_aware needs costs")
        for emotion, row in self.costs.items():
            if any(v < 0 for v in row.values()):
                raise ValueError(f"emotion_routing.costs.{emotion} has a negative cost")
        if any(v < 0 for v in self.seat_costs.values()):
            raise ValueError("emotion_routing.seat_costs has a negative price")
        queues = {q for row in self.costs.values() for q in row}
        unknown = set(self.seat_costs) - queues
        if self.costs and unknown:
            raise ValueError(f"emotion_routing.seat_costs prices queues the costs do not name: {sorted(unknown)}")
        return self


class KeyChoice(_Strict):
    """One keypad menu entry: what the caller hears, the intent it states and where it routes."""

    say: str = Field(min_length=1, max_length=200)
    intent: str | None = None
    queue: str
    priority: int = Priority


KEYPAD_DIGITS = "0123456789"


class KeypadRules(_Strict):
    """The keypad: pressed while EmoRoute listens, or offered as a menu when nothing usable is heard."""

    menu: dict[str, KeyChoice] = Field(min_length=1)
    menu_intro: str = Field("Please choose from the following.", min_length=1)
    menu_timeout_seconds: int = Field(6, ge=1, le=30)

    @model_validator(mode="after")
    def _digits(self) -> KeypadRules:
        bad = [k for k in self.menu if len(k) != 1 or k not in KEYPAD_DIGITS]
        if bad:
            raise ValueError(f"keypad.menu keys must be single digits 0-9, got {bad}")
        return self

    def prompt(self) -> str:
        """Return the spoken menu: the intro, then "press N <say>" for each entry in key order."""
        order = sorted(self.menu.items(), key=lambda kv: (kv[0] == "0", kv[0]))  # 0 ("anything else") last
        return " ".join([self.menu_intro, *(f"Press {k} {c.say}." for k, c in order)])


class OptOutRules(_Strict):
    """How a caller refuses the analysis (the disclosure must say how)."""

    key: Literal["*", "#"] = "*"
    phrases: list[str] = Field(default_factory=list)
    confirmation: str = Field(min_length=1)


class IdentificationStep(_Strict):
    """One IVR step after the decision and before the queue ("key your account number")."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    prompt: str = Field(min_length=1)
    input: Literal["dtmf", "dtmf speech"] = "dtmf"
    finish_on_key: Literal["#", "*", ""] = "#"
    max_digits: int = Field(12, ge=1, le=30)
    timeout_seconds: int = Field(6, ge=1, le=30)


class SurveyRules(_Strict):
    """The one-question post-call survey (1-5 by keypad) after the agent leg ends."""

    enabled: bool = False
    question: str = Field(min_length=1)
    thanks: str = Field(min_length=1)
    retry: str = Field("Please press a key from 1 to 5.", min_length=1)
    timeout_seconds: int = Field(6, ge=1, le=30)


class LineRules(_Strict):
    """When a reading's line is too poor for its tone to count (audio_models/line_quality.py).

    A reading under ``min_snr_db`` (speech over background), over ``max_clipped`` (share of
    samples at full scale) or with more than ``max_dropped_share`` of its time lost in transit
    is kept on the timeline but does not steer routing: with only such readings, the words
    decide (intents, then sentiment) and the reason says so.
    """

    min_snr_db: float = Field(0.0, ge=0.0, le=40.0)
    max_clipped: float = Field(0.02, ge=0.0, le=1.0)
    max_dropped_share: float = Field(0.2, ge=0.0, le=1.0)
    negative_words_priority: int = Priority  # words alone: a clearly negative caller's priority


LANGUAGE_CODE = r"^[a-z]{2,3}$"


class LanguageRoute(_Strict):
    """Where callers of one language go: a queue of their own, or a skill on the task, and what they hear."""

    name: str = Field(min_length=1, max_length=40)  # for people: "Spanish"
    queue: str | None = None  # a queue of their own (overrides the queue tone and words chose)
    skill: str | None = Field(None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    say_language: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")  # <Say language=...>
    voice: str | None = None  # a voice that speaks it (e.g. Polly.Lucia); the prompts' voice otherwise
    hold: str | None = Field(None, min_length=1, max_length=300)  # what they hear while queued
    confirm: str | None = Field(None, min_length=1, max_length=200)  # the language check's sentence, in it
    # the language check offers this language by this key, saying ``offer`` in it ("Para español, pulse 3."),
    # to a caller taken for another language that the identifier ranked this one just behind
    key: str | None = Field(None, pattern=r"^[0-9]$")
    offer: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _offer_with_key(self) -> LanguageRoute:
        if (self.key is None) != (self.offer is None):
            raise ValueError(f"language route {self.name!r}: key and offer go together (the offer says the key)")
        return self


class LanguageCheck(_Strict):
    """What a caller taken for another language hears before the queue: that language, and keys to change it.

    The route's ``confirm`` sentence (in its ``say_language``, when given), ``english_prompt``, then
    the ``offer`` of up to ``offer_others`` served languages the identifier ranked next (each in its
    own language and voice). ``english_key`` within ``timeout_seconds`` says the caller speaks
    English (the call goes on in English, without the language's skill); a route's ``key`` moves
    the call to that language (offered or not); no key, or another, keeps the language.
    """

    enabled: bool = True
    english_prompt: str = Field("If you speak English, press 2.", min_length=1, max_length=200)
    english_key: str = Field("2", pattern=r"^[0-9]$")
    timeout_seconds: int = Field(4, ge=1, le=15)
    offer_others: int = Field(3, ge=0, le=5)  # 3: chosen by docs/experiments/2026-12-07-language-check-offers-rule.md


class LanguageRules(_Strict):
    """Callers who do not speak English: identified from the first utterance, transcribed, translated, routed.

    ``routes``: the languages this contact centre serves (ISO 639-1, as Whisper names them); a
    caller identified as speaking one goes by its route. ``fallback``: where a caller in any other
    language goes (nobody here speaks it: an interpreter line, say). ``detect`` false: every
    caller is taken to speak English (tiny.en only, the multilingual model not loaded).
    ``check``: a caller taken for another language can say by a key that they speak English.
    """

    detect: bool = True
    min_probability: float = Field(0.6, gt=0.0, le=1.0)
    routes: dict[str, LanguageRoute] = Field(default_factory=dict)
    fallback: LanguageRoute | None = None
    check: LanguageCheck = Field(default_factory=LanguageCheck)

    @model_validator(mode="after")
    def _codes(self) -> LanguageRules:
        bad = [code for code in self.routes if not re.match(LANGUAGE_CODE, code) or code == "en"]
        if bad:
            raise ValueError(f"languages.routes keys must be language codes other than en (es, pl, ...): {bad}")
        keys = [(code, r.key) for code, r in self.routes.items() if r.key is not None]
        taken = [k for _, k in keys] + [self.check.english_key]
        clash = sorted({f"{code}: {k}" for code, k in keys if taken.count(k) > 1})
        if clash:
            raise ValueError(f"languages.routes keys must differ from each other and from check.english_key "
                             f"{self.check.english_key}: {clash}")
        if self.fallback is not None and self.fallback.key is not None:
            raise ValueError("languages.fallback cannot have a key (a caller keys a language this centre serves)")
        return self

    def keyed(self, key: str) -> str | None:
        """Return the served language whose route has ``key`` (None: no route has it)."""
        return next((code for code, r in self.routes.items() if key and r.key == key), None)

    def offers(self, language: str, ranking: Sequence[str]) -> list[tuple[str, LanguageRoute]]:
        """Return the languages the check offers a caller taken for ``language``: ``ranking``'s next ones with a key."""
        found = [(code, r) for code in dict.fromkeys(ranking) if code not in ("en", language)
                 and (r := self.routes.get(code)) is not None and r.key is not None]
        return found[: self.check.offer_others]

    def route(self, code: str) -> LanguageRoute | None:
        """Return the route of a caller speaking ``code`` (None for English or an unknown language)."""
        if not code or code == "en":
            return None
        return self.routes.get(code) or self.fallback


class Policy(_Strict):
    """The whole routing policy file."""

    queues: dict[str, QueueSpec]
    default_queue: str
    default_priority: int = Priority
    decision: DecisionRules
    anger: AngerRules
    positive: PositiveRules
    sadness: SadnessRules
    text: TextRules
    reprioritise: ReprioritiseRules
    ageing: AgeingRules
    alerts: AlertRules
    cues: list[CueRule] = Field(min_length=1)
    retention_days: float = Field(gt=0)
    prompts: Prompts
    keypad: KeypadRules
    opt_out: OptOutRules
    identification: list[IdentificationStep] = Field(default_factory=list, max_length=5)
    survey: SurveyRules
    emotion_routing: EmotionRouting = EmotionRouting()
    languages: LanguageRules = LanguageRules(detect=False)
    line: LineRules = LineRules(negative_words_priority=5)

    def language_queue(self, queue: str, old: str, new: str) -> str:
        """Return the queue of a call moved at the language check from language ``old`` to ``new``.

        The new language's own queue if its route has one; the default queue if the call was in
        the old language's own queue (the queue tone and words chose is not known there); else ``queue``.
        """
        before, after = self.languages.route(old), self.languages.route(new)
        if after is not None and after.queue:
            return after.queue
        return self.default_queue if before is not None and before.queue == queue else queue

    def key_intents(self) -> dict[str, str]:
        """Return the topic each keypad menu key states (key -> intent; keys without one left out)."""
        return {k: c.intent for k, c in self.keypad.menu.items() if c.intent}

    @property
    def identification_max_s(self) -> float:
        """The longest a caller can take over the identification steps, in seconds.

        Per step: its prompt read at 2.5 words a second, then Twilio's <Gather> waiting up to
        ``timeout_seconds`` for each of ``max_digits`` keys and the finishing key. A caller taken for
        another language hears the language check first (its longest sentence, then its wait).
        """
        steps = sum(len(s.prompt.split()) / 2.5 + (s.max_digits + 1) * s.timeout_seconds for s in self.identification)
        rules = self.languages
        routes = [*rules.routes.values(), *([rules.fallback] if rules.fallback else [])]
        if not self.identification or not rules.check.enabled or not routes:
            return steps
        offers = sorted((len((r.offer or "").split()) for r in rules.routes.values()), reverse=True)
        words = (max(len((r.confirm or "").split()) for r in routes) + len(rules.check.english_prompt.split())
                 + sum(offers[: rules.check.offer_others]))
        return steps + words / 2.5 + rules.check.timeout_seconds

    @model_validator(mode="after")
    def _queues_exist(self) -> Policy:
        named = {
            "default_queue": self.default_queue,
            "anger.queue": self.anger.queue,
            "positive.queue": self.positive.queue,
            "text.angry_purchase_queue": self.text.angry_purchase_queue,
            **{f"text.intent_routes.{k}.queue": v.queue for k, v in self.text.intent_routes.items()},
            **{f"keypad.menu.{k}.queue": v.queue for k, v in self.keypad.menu.items()},
            **{f"languages.routes.{k}.queue": v.queue for k, v in self.languages.routes.items() if v.queue},
            **({"languages.fallback.queue": self.languages.fallback.queue}
               if self.languages.fallback and self.languages.fallback.queue else {}),
        }
        if self.emotion_routing.costs:
            queues = set(self.queues)
            for emotion, row in self.emotion_routing.costs.items():
                if set(row) != queues:
                    raise ValueError(f"emotion_routing.costs.{emotion} must price every queue "
                                     f"({', '.join(sorted(queues))}), got {', '.join(sorted(row))}")
        known = set(self.text.intents) | set(self.text.intent_routes)
        unknown = {k: c.intent for k, c in self.keypad.menu.items() if c.intent and c.intent not in known}
        if unknown:
            raise ValueError(f"keypad.menu names intents not under text.intents or text.intent_routes: {unknown}")
        said = known | set(self.text.topics) | ({self.text.escalation.intent} if self.text.escalation else set())
        unknown_cues = [c.intent for c in self.cues if c.intent and c.intent not in said]
        if unknown_cues:
            raise ValueError(f"cues name intents not under text.intents, text.intent_routes, text.escalation or "
                             f"text.topics: {sorted(set(unknown_cues))}")
        if len({s.name for s in self.identification}) != len(self.identification):
            raise ValueError("identification step names must be unique")
        for where, queue in named.items():
            if queue not in self.queues:
                raise ValueError(f"{where} names queue {queue!r}, which is not under 'queues' "
                                 f"({', '.join(sorted(self.queues))})")
        return self


class PolicyError(ValueError):
    """The policy file is missing, not YAML, or fails validation."""


def load_policy(path: Path | None = None) -> Policy:
    """Return the validated policy from ``path`` (default: the shipped policy.yaml)."""
    src = path or DEFAULT_POLICY_FILE
    try:
        raw = yaml.safe_load(src.read_text())
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {src}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {src} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {src} must hold a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"policy file {src} is invalid: {problems}") from exc


@dataclass(frozen=True)
class TrajectoryPoint:
    """One emotion reading placed in the call's time line (seconds since call start)."""

    t: float
    probs: dict[str, float]
    arousal: float
    valence: float
    kind: str = "utterance"
    noisy: bool = False  # read on a line too poor for its tone to steer routing (LineRules)


@dataclass(frozen=True)
class TextSignals:
    """What the caller said, analysed: sentiment in [-1, 1] and intents found (with any topics).

    ``snippet`` is in English (a translation when the caller spoke another language, whose own
    words, redacted alike, are ``original``).
    """

    sentiment: float | None = None
    intents: frozenset[str] = field(default_factory=frozenset)
    snippet: str = ""
    original: str = ""


@dataclass(frozen=True)
class Decision:
    """Where a call goes, how urgently, and why (in words a supervisor can read)."""

    queue: str
    priority: int
    reason: str
    rule: str


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _scale(value: float, low: float, lo_pri: int, hi_pri: int) -> int:
    """Map value in [low, 1] linearly onto [lo_pri, hi_pri]."""
    frac = 0.0 if low >= 1 else max(0.0, min(1.0, (value - low) / (1.0 - low)))
    return lo_pri + round(frac * (hi_pri - lo_pri))


def anger_trend(points: Sequence[TrajectoryPoint], seconds: float) -> float:
    """Return the change in P(angry) over the last ``seconds``: late-half mean minus early-half mean."""
    if not points:
        return 0.0
    recent = [p for p in points if p.t >= points[-1].t - seconds]
    if len(recent) < 2:
        return 0.0
    half = len(recent) // 2
    early = _mean([p.probs.get("angry", 0.0) for p in recent[:half]])
    late = _mean([p.probs.get("angry", 0.0) for p in recent[half:]])
    return late - early


def decide(points: Sequence[TrajectoryPoint], text: TextSignals | None, policy: Policy,
           key: str | None = None, language: str = "") -> Decision:
    """Return the routing decision for a call's trajectory so far, what the caller said and the key pressed.

    A key from the keypad menu is an explicit intent: it names the queue; the tone can only raise
    the priority (an angry caller who pressed "cancel" keeps the anger priority). A caller who asked
    for someone senior (``text.escalation``) gets that many priority points more, wherever routed.
    Readings taken on a poor line (``noisy``) do not steer: when every recent reading is noisy,
    the words decide alone. A caller speaking ``language`` (not English) goes by its route.
    """
    recent = list(points)[-policy.decision.window_readings:]
    if recent and all(p.noisy for p in recent) and (key is None or key not in policy.keypad.menu):
        decision = _words_only(text, policy)
    else:
        decision = _route([p for p in points if not p.noisy], text, policy, key)
    return with_language(_escalated(decision, text, policy), language, policy)


def with_language(decision: Decision, language: str, policy: Policy) -> Decision:
    """Return ``decision`` for a caller speaking ``language``: its route's queue (if it names one), said why."""
    route = policy.languages.route(language)
    if route is None:
        return decision
    if route.queue and route.queue != decision.queue:
        return Decision(route.queue, decision.priority, f"{decision.reason}; speaks {route.name}: {route.queue}",
                        decision.rule)
    return Decision(decision.queue, decision.priority, f"{decision.reason}; speaks {route.name}", decision.rule)


def _words_only(text: TextSignals | None, policy: Policy) -> Decision:
    """Route by what was said alone (the line was too poor for the tone): intents, then sentiment."""
    note = "noisy line: going by what was said"
    intents = text.intents if text else frozenset()
    hits = [name for name in policy.text.intent_routes if name in intents]
    if hits:
        top = policy.text.intent_routes[hits[0]]
        return Decision(top.queue, top.priority, f"{note}; said {', '.join(repr(i) for i in hits)}", "text")
    if text is not None and text.sentiment is not None and text.sentiment <= -0.5:
        return Decision(policy.default_queue, policy.line.negative_words_priority,
                        f"{note}; negative words (sentiment {text.sentiment:+.2f})", "words")
    if text is None:  # nothing usable heard: the keypad menu, as for a caller who said nothing
        return Decision(policy.default_queue, policy.default_priority, f"{note}; nothing understood", "default")
    return Decision(policy.default_queue, policy.default_priority, note, "words")


def _escalated(decision: Decision, text: TextSignals | None, policy: Policy) -> Decision:
    esc = policy.text.escalation
    if esc is None or text is None or esc.intent not in text.intents or decision.rule == "default":
        return decision
    return Decision(decision.queue, min(10, decision.priority + esc.priority_step),
                    f"{decision.reason}; asked for someone senior", decision.rule)


def _route(points: Sequence[TrajectoryPoint], text: TextSignals | None, policy: Policy,
           key: str | None) -> Decision:
    recent = list(points)[-policy.decision.window_readings :]
    if key is not None and key in policy.keypad.menu:
        return _keyed(key, recent, points, policy)
    intents = text.intents if text else frozenset()
    intent_hits = [name for name in policy.text.intent_routes if name in intents]
    said = f"; said {', '.join(repr(i) for i in intent_hits)}" if intent_hits else ""
    if not recent and not intent_hits:
        return Decision(policy.default_queue, policy.default_priority, "no speech heard yet", "default")
    p_angry = _mean([p.probs.get("angry", 0.0) for p in recent])
    p_happy = _mean([p.probs.get("happy", 0.0) for p in recent])
    p_sad = _mean([p.probs.get("sad", 0.0) for p in recent])
    arousal = _mean([p.arousal for p in recent])
    valence = _mean([p.valence for p in recent])
    trend = anger_trend(points, policy.reprioritise.trend_seconds)
    rising = " rising" if trend >= policy.reprioritise.rising_delta else ""
    a = policy.anger
    angry = p_angry >= a.min_probability
    frustrated = arousal >= a.frustration_arousal_min and valence <= a.frustration_valence_max
    if text is not None and text.sentiment is not None and text.sentiment <= -0.5 and arousal > 0:
        frustrated = True
    anger_priority = _scale(max(p_angry, (arousal + 1) / 2 if frustrated else 0.0),
                            a.min_probability, a.priority_min, a.priority_max)
    if rising:
        anger_priority = min(a.priority_max, anger_priority + policy.reprioritise.step)

    if intent_hits:
        top = policy.text.intent_routes[intent_hits[0]]
        if top.queue == policy.positive.queue and (angry or frustrated):
            queue = policy.text.angry_purchase_queue
            priority = max(top.priority, anger_priority if queue == a.queue else top.priority + 1)
            return Decision(queue, min(priority, 10), f"angry tone{rising}{said}", "text+anger")
        if top.queue == a.queue and (angry or frustrated):
            return Decision(a.queue, max(top.priority, anger_priority),
                            f"{'angry' if angry else 'frustrated'} tone{rising}{said}", "text+anger")
        tone = "happy tone; " if p_happy >= policy.positive.min_probability else ""
        bump = 1 if tone and top.queue == policy.positive.queue else 0
        return Decision(top.queue, min(top.priority + bump, 10), f"{tone}{said[2:]}", "text")
    if policy.emotion_routing.cost_aware:
        return _least_cost(recent, policy, frustrated=frustrated, anger_priority=anger_priority, rising=rising,
                           arousal=arousal, valence=valence)
    if angry or frustrated:
        what = f"angry tone (P={p_angry:.2f})" if angry else (
            f"frustrated tone (arousal {arousal:+.2f}, valence {valence:+.2f})")
        return Decision(a.queue, anger_priority, f"{what}{rising}", "anger")
    pos = policy.positive
    if p_happy >= pos.min_probability and valence >= pos.valence_min:
        priority = _scale(p_happy, pos.min_probability, pos.priority_min, pos.priority_max)
        return Decision(pos.queue, priority, f"happy tone (P={p_happy:.2f})", "positive")
    if p_sad >= policy.sadness.min_probability:
        return Decision(policy.default_queue, policy.sadness.priority,
                        f"sad tone (P={p_sad:.2f})", "sadness")
    return Decision(policy.default_queue, policy.default_priority, "neutral tone", "neutral")


def reprioritise(current: int, points: Sequence[TrajectoryPoint], policy: Policy) -> int:
    """Return the priority for a waiting call: raised by a step while anger is rising (on a line good enough)."""
    points = [p for p in points if not p.noisy]
    if anger_trend(points, policy.reprioritise.trend_seconds) >= policy.reprioritise.rising_delta:
        return min(policy.anger.priority_max, current + policy.reprioritise.step)
    return current


def _keyed(key: str, recent: Sequence[TrajectoryPoint], points: Sequence[TrajectoryPoint], policy: Policy) -> Decision:
    choice = policy.keypad.menu[key]
    what = f"pressed {key} ({choice.intent or choice.say})"
    if not recent:
        return Decision(choice.queue, choice.priority, what, "keypad")
    a = policy.anger
    p_angry = _mean([p.probs.get("angry", 0.0) for p in recent])
    rising = anger_trend(points, policy.reprioritise.trend_seconds) >= policy.reprioritise.rising_delta
    if p_angry >= a.min_probability:
        anger_priority = _scale(p_angry, a.min_probability, a.priority_min, a.priority_max)
        if rising:
            anger_priority = min(a.priority_max, anger_priority + policy.reprioritise.step)
        return Decision(choice.queue, max(choice.priority, anger_priority),
                        f"angry tone (P={p_angry:.2f}); {what}", "keypad+anger")
    return Decision(choice.queue, choice.priority, what, "keypad")


def expected_costs(probs: dict[str, float], costs: dict[str, dict[str, float]]) -> dict[str, float]:
    """Return each queue's expected misroute cost: sum over emotions of P(emotion) x cost(emotion, queue)."""
    queues = next(iter(costs.values())).keys() if costs else ()
    return {q: sum(p * costs.get(e, {}).get(q, 0.0) for e, p in probs.items()) for q in queues}


def _least_cost(recent: Sequence[TrajectoryPoint], policy: Policy, *, frustrated: bool, anger_priority: int,
                rising: str, arousal: float, valence: float) -> Decision:
    """Route by tone to the queue of least expected cost (seat prices included), abstaining to general.

    The anger queue needs ``retention_min_anger`` of mean P(angry) and the positive queue
    ``sales_min_happy`` of P(happy); a caller whose top probability is
    under ``min_confidence`` goes to general whatever the cheapest queue; frustration without anger
    evidence raises the priority only (unless ``frustration_to_anger_queue``).
    """
    rules = policy.emotion_routing
    labels = sorted({k for p in recent for k in p.probs})
    probs = {k: _mean([p.probs.get(k, 0.0) for p in recent]) for k in labels}
    top = max(probs, key=lambda k: probs[k])
    cost = {q: c + rules.seat_costs.get(q, 0.0) for q, c in expected_costs(probs, rules.costs).items()}
    queue = min(cost, key=lambda q: (cost[q], q != policy.default_queue))
    a, pos = policy.anger, policy.positive
    p_angry = probs.get("angry", 0.0)
    frustration = f"frustrated tone (arousal {arousal:+.2f}, valence {valence:+.2f})"
    if frustrated and p_angry < a.min_probability:
        if rules.frustration_to_anger_queue:
            extra = f"; least expected misroute cost {cost[a.queue]:.2f}" if queue == a.queue else ""
            return Decision(a.queue, anger_priority, f"{frustration}{extra}{rising}", "anger")
        return Decision(policy.default_queue, anger_priority, f"{frustration}: priority raised{rising}", "frustrated")
    if queue == a.queue and p_angry < rules.retention_min_anger:
        earned = anger_priority if p_angry >= a.min_probability else policy.default_priority
        return Decision(policy.default_queue, earned, f"anger possible (P={p_angry:.2f}), under the "
                        f"{rules.retention_min_anger:.2f} {a.queue} needs on tone alone{rising}", "unsure")
    if queue == pos.queue and probs.get("happy", 0.0) < rules.sales_min_happy:
        return Decision(policy.default_queue, policy.default_priority, f"happy tone possible (P="
                        f"{probs.get('happy', 0.0):.2f}), under the {rules.sales_min_happy:.2f} {pos.queue} needs "
                        "on tone alone", "unsure")
    if probs[top] < rules.min_confidence:
        return Decision(policy.default_queue, policy.default_priority,
                        f"tone unsure (top {top} P={probs[top]:.2f})", "unsure")
    why = f"{top} tone (P={probs[top]:.2f}); least expected misroute cost {cost[queue]:.2f}"
    if queue == a.queue:
        return Decision(queue, anger_priority, f"{why}{rising}", "anger")
    if queue == pos.queue:
        return Decision(queue, _scale(probs.get("happy", 0.0), pos.min_probability, pos.priority_min,
                                      pos.priority_max), why, "positive")
    if p_angry >= a.min_probability:  # anger likely enough to hurry, not to send to retention
        return Decision(queue, anger_priority, f"{why}; anger possible (P={p_angry:.2f}){rising}", "unsure")
    if probs.get("sad", 0.0) >= policy.sadness.min_probability:
        return Decision(queue, policy.sadness.priority, why, "sadness")
    return Decision(queue, policy.default_priority, why, "neutral")
