import pytest

from router.policy import load_policy
from router.redact import luhn_valid, redact
from router.text import TextAnalyser, tokens

ANALYSER = TextAnalyser(load_policy().text)


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("I want to cancel my account", {"cancel"}),
        ("I'd like to CANCEL!!! my subscription.", {"cancel"}),
        ("Please process the cancellation today", {"cancel"}),
        ("I don't want to cancel, I just have a question", set()),
        ("I do not want to terminate the contract", set()),
        ("I never want to switch providers", set()),
        ("It's not working and I want to cancel", {"cancel", "complaint"}),
        ("This is the third time I'm calling about this", {"complaint"}),
        ("I was charged twice and I want a refund", {"billing_dispute"}),
        ("I'd like to upgrade to the premium plan", {"upgrade", "purchase"}),
        ("Can I purchase a new phone?", {"purchase"}),
        # one-word phrases that are ordinary words are left to the classifier ("buy the door")
        ("Buy the door.", set()),
        ("What are your opening hours?", set()),
    ],
)
def test_intents_with_synonyms_negation_case_and_punctuation(text, intents):
    assert ANALYSER.intents(text) == frozenset(intents)


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("You're still charging me for a line I cancelled.", set()),
        ("Why do I owe you money when I've already cancelled?", set()),
        ("I'm disputing the cancellation charge on my account.", {"billing_dispute"}),
        ("I was charged an early termination fee.", set()),
        ("I want my account cancelled.", {"cancel"}),
        ("Please process the cancellation and stop the direct debit.", {"cancel"}),
        ("Can I set up voicemail on my new phone?", set()),
    ],
)
def test_phrases_that_name_no_intent_set_aside_the_intent_phrases_inside_them(text, intents):
    # phrases only (no meaning classifier): what the policy's own lists say
    assert ANALYSER.intents(text) == frozenset(intents)


def test_sentiment_sign():
    assert ANALYSER.sentiment("This is terrible, I am furious") < -0.5
    assert ANALYSER.sentiment("Great, thank you so much, I love it") > 0.5


def test_tokens_expand_contractions():
    assert tokens("I don't, it's") == ["i", "do", "not", "it", "is"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4111 1111 1111 1111 thanks", "my card is [CARD] thanks"),
        ("card four one one one one one one one one one one one one one one one", "card [CARD]"),
        ("call me on +44 20 7946 0958", "call me on [PHONE]"),
        ("it's john.doe@example.com", "it's [EMAIL]"),
        ("it's john at example dot com", "it's [EMAIL]"),
        ("my ssn is 123-45-6789", "my ssn is [ID]"),
        ("NI number QQ 12 34 56 C", "NI number [ID]"),
        ("account double seven three four five nine one two", "account [NUMBER]"),
        ("I have one question about two bills", "I have one question about two bills"),
        ("order 12345 arrived", "order 12345 arrived"),
    ],
)
def test_pii_is_redacted(text, expected):
    assert redact(text) == expected


def test_luhn():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_analyse_redacts_before_anything_else():
    signals = ANALYSER.analyse("Cancel it, my card is 4111 1111 1111 1111")
    assert "4111" not in signals.snippet and "[CARD]" in signals.snippet
    assert signals.intents == frozenset({"cancel"})
    assert ANALYSER.analyse("   ").snippet == ""


def test_csv_export_neutralises_spreadsheet_formulas():
    import csv
    import io

    from dashboards.state import calls_csv

    out = calls_csv([{"call_sid": "CA1", "caller": '=HYPERLINK("http://x")', "started_at": "1", "priority": "-3",
                      "reason": "+cmd", "intents": "\t=cmd|' /C calc'!A0", "end_reason": "\r@SUM(1)"}])
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["caller"] == "'=HYPERLINK(\"http://x\")"
    assert row["reason"] == "'+cmd"
    assert row["intents"].startswith("'\t=") and row["end_reason"].startswith("'\r@")
    assert row["priority"] == "-3"  # numbers stay numbers


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        # negation stops at a clause break
        ("I'm switching from I don't so cancel everything", {"cancel"}),
        ("No, cancel it please", {"cancel"}),
        ("I won't be cancelling, I just want some information", set()),
        # a recogniser's split words are joined, but a wildcard does not swallow a longer word
        ("I'd like to un subscribe from the plan", {"cancel"}),
        ("I was over charged", {"billing_dispute"}),
        ("you can cellular data roam", set()),
        # the longest phrase wins where phrases overlap
        ("I'm interested in buying the premium plan", {"purchase"}),
        ("I'd like to move to a faster plan", {"upgrade"}),
        ("I want double charges for the same thing", {"billing_dispute"}),
    ],
)
def test_clause_scoped_negation_joined_words_and_longest_match(text, intents):
    assert ANALYSER.intents(text) == frozenset(intents)


def test_an_alternative_reading_names_the_intent_only_when_the_best_names_none():
    # phrases only: the best reading decides when it names an intent
    assert ANALYSER.intents_of_readings("I want to cancel my account", ["I want to upgrade"]) == (
        frozenset({"cancel"}), "")
    readings = ["I'm built while", "I've been billed twice"]
    assert ANALYSER.intents_of_readings("I think I've been built while", readings) == (
        frozenset({"billing_dispute"}), "I've been billed twice")
    assert ANALYSER.intents_of_readings("Kids are talking by the door", ["Kids are talking by the door!"]) == (
        frozenset(), "")
    assert ANALYSER.intents_of_readings("   ", ["I want to cancel"]) == (frozenset(), "")


def test_an_intent_the_best_reading_negates_is_not_taken_from_an_alternative():
    assert ANALYSER.intents_of_readings("I don't want to cancel", ["I want to cancel"]) == (frozenset(), "")
    assert ANALYSER.intents_of_readings("I don't want to cancel", ["I want to cancel and purchase a phone"]) == (
        frozenset({"purchase"}), "I want to cancel and purchase a phone")


def test_analyse_shows_the_reading_that_named_the_intent_redacted():
    signals = ANALYSER.analyse("I've been built twice, card 4111 1111 1111 1111",
                               ["I've been billed twice, card 4111 1111 1111 1111"])
    assert signals.intents == frozenset({"billing_dispute"})
    assert "4111" not in signals.snippet and signals.snippet.count("[CARD]") == 2
    assert signals.snippet.startswith("I've been built twice") and "[or: I've been billed twice" in signals.snippet


def test_short_numbers_are_masked_only_where_a_secret_was_named():
    from router.redact import mask_phone, names_secret, redact

    assert redact("I've called 4 times in 3 days") == "I've called 4 times in 3 days"
    assert redact("my PIN is 4 3 2 1", sensitive=True) == "my PIN is [NUMBER]"
    assert redact("the code on the back is 7 3 9", sensitive=True) == "the code on the back is [NUMBER]"
    assert redact("it's four three two one", sensitive=True) == "it's [NUMBER]"
    assert names_secret("What's the security code on the card?") and names_secret("my account number is")
    assert not names_secret("I want to cancel my contract")
    assert mask_phone("+15557654321") == "+1***21" and "7654" not in mask_phone("07700 900123")


async def test_a_card_named_in_one_utterance_masks_short_numbers_in_the_next(redis_url):
    """Pipeline level: the call's listener keeps the sensitive context across a call's utterances."""
    import redis.asyncio as aioredis

    from audio_models.transcribe import TranscriptSegment
    from router.call_state import CallState
    from router.listening import CallListener
    from router.metrics import Metrics
    from router.policy import load_policy
    from router.store import CallStore, Outbox
    from router.text import TextAnalyser

    async def no_transcriber(*_: object) -> TranscriptSegment:
        raise AssertionError("the analysis must not transcribe")

    async def no_late_text(*_: object) -> None:
        raise AssertionError("no transcript is late here")

    policy = load_policy()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=60, seconds_per_point=60, queues=list(policy.queues))
    listener = CallListener(policy=policy, store=store, metrics=Metrics(), text_analyser=TextAnalyser(policy.text),
                            transcribe=no_transcriber, persist=lambda *_: None,  # type: ignore[arg-type,return-value]
                            spawn=lambda *_: None, on_late_text=no_late_text)  # type: ignore[arg-type,return-value]
    from audio_models.pipeline import StreamSegmenter
    from audio_models.vad import SileroVAD

    state = CallState(call_sid="CA" + "1" * 32, caller="", started_wall=0.0, segmenter=StreamSegmenter(None),
                      vad=SileroVAD())
    before = await listener.analyse(state, TranscriptSegment("I moved here 2 years ago"), 2.0)
    named = await listener.analyse(state, TranscriptSegment("I'll read you my card details"), 5.0)
    group = await listener.analyse(state, TranscriptSegment("4 1 1 1"), 8.0)
    cvv = await listener.analyse(state, TranscriptSegment("and the code is 7 3 9"), 12.0)
    much_later = await listener.analyse(state, TranscriptSegment("it broke 2 days ago"), 60.0)
    assert "2 years" in before.snippet and "card" in named.snippet
    assert group.snippet == "[NUMBER]" and cvv.snippet == "and the code is [NUMBER]"
    assert "2 days" in much_later.snippet
    await client.aclose()


# A contact centre's own topics (none ships: docs/experiments/2026-11-29-hardship-cue-rule.md).
TOPICS = TextAnalyser(load_policy().text.model_copy(update={
    "topics": {"bereavement": ["passed away", "funeral", "cancel my late husband*"]},
    "no_topic_phrases": ["funeral director*"]}))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("My husband passed away and I need to cancel his contract", {"bereavement", "cancel"}),
        # a longer topic phrase does not consume an intent phrase's words: the passes are separate
        ("I need to cancel my late husband's contract", {"bereavement", "cancel"}),
        ("The funeral was on Monday", {"bereavement"}),
        ("I'm calling from the funeral director's office about broadband", set()),
        ("I never said anyone passed away", set()),
        ("Kids are talking by the door", set()),
    ],
)
def test_topics_join_the_intents_said_without_changing_them(text, said):
    signals = TOPICS.analyse(text)
    assert signals.intents == frozenset(said)
    assert TOPICS.intents(text) == ANALYSER.intents(text)  # the routing intents are the plain analyser's


def test_a_topic_is_taken_from_an_alternative_reading_only_when_the_best_names_none():
    signals = TOPICS.analyse("My husband past a way", ["My husband passed away"])
    assert signals.intents == frozenset({"bereavement"}) and "[or: My husband passed away]" in signals.snippet
    assert TOPICS.topics_of_readings("My mother passed away", ["The funeral"]) == (frozenset({"bereavement"}), "")
    assert TOPICS.topics_of_readings("I never said anyone passed away", ["Anyone passed away"]) == (frozenset(), "")
