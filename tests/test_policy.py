from pathlib import Path

import pytest
import yaml

from router.policy import (
    DEFAULT_POLICY_FILE,
    PolicyError,
    TextSignals,
    TrajectoryPoint,
    anger_trend,
    decide,
    load_policy,
    reprioritise,
)

POLICY = load_policy()


def point(t=1.0, angry=0.0, happy=0.0, neutral=0.0, sad=0.0, arousal=0.0, valence=0.0):
    rest = max(0.0, 1 - angry - happy - neutral - sad)
    probs = {"angry": angry, "happy": happy, "neutral": neutral + rest, "sad": sad}
    return TrajectoryPoint(t, probs, arousal, valence)


def test_angry_caller_goes_to_retention_with_priority_rising_with_intensity():
    # on tone alone retention needs strong anger (emotion_routing.retention_min_anger); milder anger
    # waits in general at the anger priority it earns
    doubtful = decide([point(angry=0.5, arousal=0.3, valence=-0.3)], None, POLICY)
    mild = decide([point(angry=0.82, arousal=0.6, valence=-0.5)], None, POLICY)
    strong = decide([point(angry=0.95, arousal=0.8, valence=-0.7)], None, POLICY)
    assert mild.queue == strong.queue == "retention"
    assert 6 <= mild.priority < strong.priority <= 10
    assert "angry" in strong.reason
    assert doubtful.queue == "general" and doubtful.priority >= POLICY.anger.priority_min


def test_frustration_without_anger_label_raises_priority_in_general():
    d = decide([point(angry=0.3, neutral=0.4, arousal=0.35, valence=-0.4)], None, POLICY)
    assert d.queue == "general" and d.rule == "frustrated" and "frustrated" in d.reason
    assert d.priority >= POLICY.anger.priority_min


def test_happy_caller_goes_to_sales():
    # only clear happiness sends a caller to sales on tone alone (emotion_routing.sales_min_happy)
    d = decide([point(happy=0.95, arousal=0.4, valence=0.7)], None, POLICY)
    assert (d.queue, d.rule) == ("sales", "positive")
    assert 4 <= d.priority <= 7
    assert decide([point(happy=0.85, arousal=0.4, valence=0.7)], None, POLICY).queue == "general"


def test_neutral_and_silent_callers_go_to_general():
    assert decide([point(neutral=0.9)], None, POLICY).queue == "general"
    silent = decide([], None, POLICY)
    assert (silent.queue, silent.priority, silent.rule) == ("general", 3, "default")


def test_sad_caller_stays_general_but_sooner():
    d = decide([point(sad=0.7, arousal=-0.5, valence=-0.5)], None, POLICY)
    assert d.queue == "general" and d.priority > POLICY.default_priority


def test_rising_anger_raises_priority():
    calm_start = [point(t=t, angry=0.2, neutral=0.7) for t in (1, 2, 3)]
    rising = calm_start + [point(t=t, angry=0.7, arousal=0.5, valence=-0.5) for t in (4, 5, 6)]
    assert anger_trend(rising, 30) > 0.4
    flat = [point(t=t, angry=0.7, arousal=0.5, valence=-0.5) for t in range(1, 7)]
    assert decide(rising, None, POLICY).priority >= decide(flat, None, POLICY).priority
    assert "rising" in decide(rising, None, POLICY).reason
    assert reprioritise(6, rising, POLICY) == 7
    assert reprioritise(6, flat, POLICY) == 6
    assert reprioritise(10, rising, POLICY) == 10


def test_text_fusion_examples_from_the_design():
    calm = [point(neutral=0.9, arousal=-0.2)]
    assert decide(calm, TextSignals(intents=frozenset({"cancel"})), POLICY).queue == "retention"
    angry = [point(angry=0.9, arousal=0.7, valence=-0.7)]
    buy = decide(angry, TextSignals(intents=frozenset({"purchase"})), POLICY)
    assert buy.queue == POLICY.text.angry_purchase_queue == "sales"
    happy = [point(happy=0.8, valence=0.6, arousal=0.4)]
    up = decide(happy, TextSignals(intents=frozenset({"upgrade"})), POLICY)
    assert up.queue == "sales" and up.priority >= 7


def write_policy(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    mutate(raw)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_policy_naming_an_unknown_queue_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["anger"].__setitem__("queue", "vip"))
    with pytest.raises(PolicyError, match="anger.queue names queue 'vip'"):
        load_policy(path)


def test_policy_threshold_out_of_range_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["positive"].__setitem__("min_probability", 1.5))
    with pytest.raises(PolicyError, match=r"positive\.min_probability"):
        load_policy(path)


def test_a_top_intent_floor_above_the_floor_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["text"]["intent_model"].__setitem__("top_min_probability", 0.7))
    with pytest.raises(PolicyError, match="top_min_probability .0.7. is the lower floor"):
        load_policy(path)
    fine = write_policy(tmp_path, lambda p: p["text"]["intent_model"].__setitem__("top_min_probability", 0.4))
    assert load_policy(fine).text.intent_model.top_min_probability == 0.4


def test_policy_unknown_key_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["anger"].__setitem__("min_probabilty", 0.5))
    with pytest.raises(PolicyError, match="min_probabilty"):
        load_policy(path)


def test_policy_not_yaml_or_missing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("queues: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


def test_policy_inverted_priority_range_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["anger"].update(priority_min=9, priority_max=6))
    with pytest.raises(PolicyError, match="priority_min 9 > priority_max 6"):
        load_policy(path)


def test_policy_empty_no_intent_phrase_is_rejected(tmp_path):
    path = write_policy(tmp_path, lambda p: p["text"]["no_intent_phrases"].append("  "))
    with pytest.raises(PolicyError, match="no_intent_phrases has an empty phrase"):
        load_policy(path)


def test_cost_aware_routing_sends_a_doubtful_happy_reading_to_general_not_sales():
    from router.policy import expected_costs

    policy = load_policy()
    assert policy.emotion_routing.cost_aware
    costs = policy.emotion_routing.costs
    # an angry caller heard as mostly happy: sales would be the costliest place to guess
    heard = {"angry": 0.3, "happy": 0.6, "neutral": 0.1, "sad": 0.0}
    assert expected_costs(heard, costs) == pytest.approx({"retention": 1.3, "sales": 3.1, "general": 1.5})
    point = TrajectoryPoint(t=1.0, probs=heard, arousal=0.6, valence=0.3)
    decision = decide([point], None, policy)
    # with retention's seat priced, general is cheapest; sales never was
    assert policy.emotion_routing.seat_costs == {"retention": 1.0}
    assert decision.queue == "general" and decision.rule in ("unsure", "neutral")
    # a clearly happy caller still goes to sales, a clearly sad one to general at the sadness priority
    happy = TrajectoryPoint(t=1.0, probs={"angry": 0.01, "happy": 0.96, "neutral": 0.03, "sad": 0.0},
                            arousal=0.5, valence=0.8)
    assert decide([happy], None, policy).queue == "sales"
    sad = TrajectoryPoint(t=1.0, probs={"angry": 0.0, "happy": 0.0, "neutral": 0.3, "sad": 0.7},
                          arousal=-0.5, valence=-0.6)
    d = decide([sad], None, policy)
    assert (d.queue, d.priority) == ("general", policy.sadness.priority)
    # no class above min_confidence: general, said so
    unsure = TrajectoryPoint(t=1.0, probs={"angry": 0.1, "happy": 0.4, "neutral": 0.35, "sad": 0.15},
                             arousal=0.0, valence=0.1)
    assert decide([unsure], None, policy).rule in ("unsure", "neutral")
    assert decide([unsure], None, policy).queue == "general"
    # an intent still routes on its own; a key beats the tone
    assert decide([point], TextSignals(intents=frozenset({"upgrade"})), policy).queue in ("sales", "retention")
    d = decide([happy], None, policy, "1")
    assert (d.queue, d.priority) == ("retention", 7)


def test_calibration_keeps_the_argmax_and_fits_a_temperature():
    import numpy as np

    from audio_models.calibration import expected_calibration_error, fit_temperature, temperature_scale

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 400)
    logits = rng.normal(0, 1, (400, 4))
    logits[np.arange(400), truth] += 1.0
    over = np.exp(logits * 4) / np.exp(logits * 4).sum(axis=1, keepdims=True)  # far too confident
    t = fit_temperature(over, truth)
    assert 2.5 < t < 6
    fixed = temperature_scale(over, t)
    assert (fixed.argmax(axis=1) == over.argmax(axis=1)).all()
    assert expected_calibration_error(fixed, truth) < expected_calibration_error(over, truth) / 2


def test_the_calibration_floor_caps_a_sure_reading_and_its_file_may_name_another(tmp_path):
    # the log is taken of posteriors raised to 1e-8: at v3's T = 6.08 no calibrated reading passes
    # 0.874, which is why the shipped sales floor (0.9) is never reached on tone alone; a
    # calibration.json may name another floor (try 3 of the routing-choice rule, not adopted)
    import json

    import numpy as np

    from audio_models.calibration import LOG_FLOOR, NO_CAP_LOG_FLOOR, load_calibration, temperature_scale

    sure = np.array([[1e-30, 1 - 2e-30, 1e-30, 1e-30]])  # a raw posterior of the kind v3's head gives
    capped = temperature_scale(sure, 6.08)[0]
    assert capped[1] == pytest.approx(1 / (1 + 3 * 1e-8 ** (1 / 6.08)), abs=1e-6) and capped[1] < 0.875
    assert temperature_scale(sure, 6.08, NO_CAP_LOG_FLOOR)[0, 1] > 0.95
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 6.08}))
    assert load_calibration(tmp_path).log_floor == LOG_FLOOR  # type: ignore[union-attr]
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 6.08, "log_floor": NO_CAP_LOG_FLOOR}))
    assert load_calibration(tmp_path).log_floor == NO_CAP_LOG_FLOOR  # type: ignore[union-attr]
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 6.08, "log_floor": 0.5}))
    with pytest.raises(ValueError, match="log_floor"):
        load_calibration(tmp_path)


def test_a_log_prior_moves_the_operating_point_toward_its_class(tmp_path):
    import json

    import numpy as np

    from audio_models.calibration import highest_reading, load_calibration, temperature_scale

    labels = ("angry", "happy", "neutral", "sad")
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 6.08, "log_prior": {"sad": 1.5}}))
    prior = load_calibration(tmp_path).prior(labels)  # type: ignore[union-attr]
    assert prior.tolist() == [0.0, 0.0, 0.0, 1.5]
    # a clip the head reads as neutral by less than e^1.5 to 1 is read as sad; a clearer one stays neutral
    close, clear = np.array([[0.05, 0.05, 0.55, 0.35]]), np.array([[0.05, 0.05, 0.8, 0.1]])
    assert temperature_scale(close, 6.08).argmax() == 2 and temperature_scale(close, 6.08, prior=prior).argmax() == 3
    assert temperature_scale(clear, 6.08, prior=prior).argmax() == 2
    # a sure sad reading can now pass the symmetric cap; none of the other classes can reach it
    sure_sad = temperature_scale(np.array([[1e-30, 1e-30, 1e-30, 1 - 3e-30]]), 6.08, prior=prior)[0, 3]
    assert sure_sad == pytest.approx(highest_reading(6.08, prior=prior)) and sure_sad > highest_reading(6.08)
    with pytest.raises(ValueError, match="classes the model does not have"):
        load_calibration(tmp_path).prior(("angry", "happy", "neutral"))  # type: ignore[union-attr]
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 6.08, "log_prior": {"sad": 9}}))
    with pytest.raises(ValueError, match="log_prior"):
        load_calibration(tmp_path)
    # what training writes (emoroute train-emotion-v3 --log-prior sad=1.5; loco_live's fold models) reads back
    from audio_models.training.head_v3 import write_calibration

    write_calibration(tmp_path, 6.08, log_prior={"sad": 1.5})
    assert load_calibration(tmp_path).log_prior == (("sad", 1.5),)  # type: ignore[union-attr]
    write_calibration(tmp_path, 6.08)
    assert load_calibration(tmp_path).log_prior == ()  # type: ignore[union-attr]


def test_identification_max_s_bounds_the_time_a_caller_can_spend_keying():
    # the shipped step: a 17-word prompt (6.8 s at 2.5 words a second), then up to 12 digits and
    # the hash, each with Twilio's 5 s <Gather> timeout
    (step,) = POLICY.identification
    assert len(step.prompt.split()) == 17 and step.max_digits == 12 and step.timeout_seconds == 5
    # ... after the language check a caller taken for another language hears first: the longest
    # route sentence, the English prompt and the three longest offers of other languages, then its wait
    check = POLICY.languages.check
    longest = max(len((r.confirm or "").split()) for r in POLICY.languages.routes.values())
    assert longest == 5 and len(check.english_prompt.split()) == 6 and check.timeout_seconds == 4
    offers = sorted((len((r.offer or "").split()) for r in POLICY.languages.routes.values()), reverse=True)
    assert check.offer_others == 3 and offers[:3] == [6, 4, 4]
    assert POLICY.identification_max_s == pytest.approx(17 / 2.5 + 13 * 5 + (11 + 14) / 2.5 + 4)
    off = POLICY.languages.model_copy(update={"check": check.model_copy(update={"enabled": False})})
    assert POLICY.model_copy(update={"languages": off}).identification_max_s == pytest.approx(17 / 2.5 + 13 * 5)
    assert POLICY.model_copy(update={"identification": []}).identification_max_s == 0


def test_topics_must_not_share_a_name_with_an_intent_and_cues_must_name_known_ones(tmp_path):
    path = write_policy(tmp_path, lambda p: p["text"].__setitem__("topics", {"cancel": ["passed away"]}))
    with pytest.raises(PolicyError, match="a topic or an intent, not both"):
        load_policy(path)
    path = write_policy(tmp_path, lambda p: p["text"].__setitem__("topics", {"bereavement": [" "]}))
    with pytest.raises(PolicyError, match="text.topics.bereavement needs at least one non-empty phrase"):
        load_policy(path)
    path = write_policy(tmp_path, lambda p: p["cues"].insert(0, {"intent": "bereavement", "say": "Be kind."}))
    with pytest.raises(PolicyError, match=r"cues name intents not under text\.intents, .*text\.topics: \['bereavem"):
        load_policy(path)

    def with_topic(p: dict) -> None:
        p["text"]["topics"] = {"bereavement": ["passed away"]}
        p["cues"].insert(0, {"intent": "bereavement", "say": "Be kind."})
    policy = load_policy(write_policy(tmp_path, with_topic))
    assert policy.text.topics == {"bereavement": ["passed away"]} and "bereavement" not in policy.text.intent_routes


def _abstaining(**update):
    rules = POLICY.emotion_routing.model_copy(update={"cost_aware": True, "frustration_to_anger_queue": False,
                                                      **update})
    return POLICY.model_copy(update={"emotion_routing": rules})


def test_tone_alone_needs_strong_anger_evidence_for_retention():
    policy = _abstaining(retention_min_anger=0.7, seat_costs={"retention": 0.0})
    # anger likeliest but not sure enough: general, with the priority the tone earns, and said why
    doubtful = decide([point(angry=0.55, neutral=0.35, arousal=0.5, valence=-0.4)], None, policy)
    assert doubtful.queue == "general" and doubtful.rule == "unsure"
    assert doubtful.priority >= policy.anger.priority_min and "0.70" in doubtful.reason
    sure = decide([point(angry=0.85, arousal=0.7, valence=-0.6)], None, policy)
    assert sure.queue == "retention" and sure.rule == "anger"
    # a calm caller with a little anger probability never lands in retention (issue #28's calm callers)
    calm = decide([point(angry=0.32, neutral=0.5, arousal=0.1, valence=0.0)], None, policy)
    assert calm.queue == "general" and calm.priority == policy.default_priority


def test_a_retention_seat_price_stops_retention_being_the_catch_all():
    heard = point(angry=0.4, happy=0.05, neutral=0.5, sad=0.05, arousal=0.2, valence=-0.2)
    free = _abstaining(retention_min_anger=0.0, min_confidence=0.0, seat_costs={"retention": 0.0})
    priced = _abstaining(retention_min_anger=0.0, min_confidence=0.0, seat_costs={"retention": 1.0})
    assert decide([heard], None, free).queue == "retention"
    assert decide([heard], None, priced).queue == "general"


def test_frustration_without_anger_raises_priority_but_not_the_queue():
    policy = _abstaining(retention_min_anger=0.7)
    d = decide([point(angry=0.3, neutral=0.4, arousal=0.35, valence=-0.4)], None, policy)
    assert d.queue == "general" and d.rule == "frustrated" and d.priority >= policy.anger.priority_min


def test_seat_prices_must_name_priced_queues(tmp_path):
    path = write_policy(tmp_path, lambda p: p["emotion_routing"].__setitem__("seat_costs", {"vip": 1.0}))
    with pytest.raises(PolicyError, match="seat_costs prices queues the costs do not name"):
        load_policy(path)


def noisy(point_: TrajectoryPoint) -> TrajectoryPoint:
    return TrajectoryPoint(point_.t, point_.probs, point_.arousal, point_.valence, point_.kind, noisy=True)


def test_tone_on_a_noisy_line_never_sends_a_caller_to_retention_or_raises_them_to_anger_priority():
    furious = [noisy(point(t, angry=0.97, arousal=0.9, valence=-0.8)) for t in (1.0, 2.0, 3.0)]
    calm_words = decide(furious, TextSignals(sentiment=0.2), POLICY)
    assert calm_words.queue == "general" and calm_words.priority < POLICY.anger.priority_min
    assert calm_words.reason.startswith("noisy line: going by what was said") and calm_words.rule == "words"
    # the same readings on a good line: retention at the anger priority
    clean = decide([TrajectoryPoint(p.t, p.probs, p.arousal, p.valence) for p in furious], None, POLICY)
    assert clean.queue == "retention" and clean.priority >= POLICY.anger.priority_min
    # rising anger heard on a noisy line does not raise a waiting caller's priority either
    rising = [noisy(point(t, angry=a)) for t, a in ((1.0, 0.1), (10.0, 0.2), (20.0, 0.9), (25.0, 0.95))]
    assert reprioritise(4, rising, POLICY) == 4
    assert reprioritise(4, [TrajectoryPoint(p.t, p.probs, 0, 0) for p in rising], POLICY) == 5


def test_on_a_noisy_line_the_words_route():
    furious = [noisy(point(angry=0.97, arousal=0.9, valence=-0.8))]
    upgrade = decide(furious, TextSignals(sentiment=0.0, intents=frozenset({"upgrade"})), POLICY)
    assert upgrade.queue == "sales" and "said 'upgrade'" in upgrade.reason and "noisy line" in upgrade.reason
    angry_words = decide(furious, TextSignals(sentiment=-0.8), POLICY)
    assert angry_words.queue == "general" and angry_words.priority == POLICY.line.negative_words_priority
    assert "negative words" in angry_words.reason
    nothing = decide(furious, None, POLICY)
    assert nothing.rule == "default" and "noisy line" in nothing.reason  # the keypad menu, as for silence
    # one good reading in the window: its tone counts, the noisy ones do not
    mixed = decide([point(1.0, neutral=0.95), noisy(point(2.0, angry=0.97))], None, POLICY)
    assert mixed.queue == "general" and "noisy" not in mixed.reason and mixed.priority < POLICY.anger.priority_min


def test_a_caller_in_another_language_goes_by_its_route():
    spanish = decide([point(neutral=0.9)], TextSignals(intents=frozenset({"cancel"})), POLICY, language="es")
    assert spanish.queue == "retention" and spanish.reason.endswith("speaks Spanish")
    english = decide([point(neutral=0.9)], TextSignals(intents=frozenset({"cancel"})), POLICY, language="en")
    assert "speaks" not in english.reason
    unlisted = decide([point(neutral=0.9)], None, POLICY, language="de")
    assert unlisted.reason.endswith(f"speaks {POLICY.languages.fallback.name}")
    assert POLICY.languages.route("de").skill == "interpreter" and POLICY.languages.route("es").skill == "spanish"


def test_a_language_route_with_its_own_queue_overrides_the_queue(tmp_path):
    def own_queue(p):
        p["queues"]["espanol"] = {"twilio_queue": "espanol"}
        for emotion in p["emotion_routing"]["costs"].values():
            emotion["espanol"] = 5
        p["languages"]["routes"]["es"] = {"name": "Spanish", "queue": "espanol"}
    policy = load_policy(write_policy(tmp_path, own_queue))
    d = decide([point(neutral=0.9)], TextSignals(intents=frozenset({"cancel"})), policy, language="es")
    assert d.queue == "espanol" and "speaks Spanish: espanol" in d.reason


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["languages"]["routes"].__setitem__("es", {"name": "Spanish", "queue": "nowhere"}),
     "languages.routes.es.queue names queue 'nowhere'"),
    (lambda p: p["languages"]["routes"].__setitem__("Spanish", {"name": "Spanish"}), "language codes"),
    (lambda p: p["languages"]["routes"].__setitem__("en", {"name": "English"}), "language codes"),
    (lambda p: p["line"].__setitem__("min_snr_db", 80), "min_snr_db"),
    (lambda p: p["languages"]["check"].__setitem__("english_key", "#"), "english_key"),
    (lambda p: p["languages"]["check"].__setitem__("english_key", "22"), "english_key"),
    (lambda p: p["languages"]["routes"]["es"].__setitem__("confirm", ""), "confirm"),
])
def test_bad_language_and_line_rules_are_refused(tmp_path, mutate, message):
    with pytest.raises(PolicyError, match=message):
        load_policy(write_policy(tmp_path, mutate))
