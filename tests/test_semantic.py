"""The semantic intent classifier: the real sentence encoders from their wheels, the shipped examples."""

from pathlib import Path

import pytest

from router.policy import DEFAULT_POLICY_FILE, PolicyError, load_policy
from router.semantic import SemanticModelError, load_examples
from router.text import TextAnalyser, load_text_analyser

POLICY = load_policy()


@pytest.fixture(scope="module")
def analyser() -> TextAnalyser:
    return load_text_analyser(POLICY.text)


def test_shipped_policy_turns_the_classifier_on(analyser):
    assert analyser.semantic is not None
    assert set(analyser.semantic.intents) == set(POLICY.text.intents) | {"general"}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # no phrase of policy.yaml matches any of these
        ("Please shut the whole thing down, I'm moving to a rival", "cancel"),
        ("The engineer who was meant to fix it never came", "complaint"),
        ("You've taken more money than we agreed", "billing_dispute"),
        ("Could I get a bigger allowance each month?", "upgrade"),
        ("I'd like a smartwatch from your shop", "purchase"),
    ],
)
def test_meaning_names_the_intent_no_phrase_matches(analyser, text, intent):
    assert analyser.phrase_intents(text) == (frozenset(), frozenset())
    assert analyser.intents(text) == frozenset({intent})


def test_a_vague_wording_below_the_floor_stays_general(analyser):
    # the price of the 0.40 floor (docs/experiments/2026-11-29-minilm-similarity-floor.md): "the man"
    # is too far from every complaint example, where "the engineer" is close enough (above)
    guess = analyser.semantic.guess("The man who was meant to fix it never came")
    assert guess.intent == "general" and 0.35 < guess.similarity < 0.40


@pytest.mark.parametrize(
    "text",
    [
        "What time does your shop open on Saturday?",
        "Kids are talking by the door.",
        "I'd like to change my email address.",
        # out of domain: without the similarity floor these came out as complaints
        "Say the word bean.",
        "Say the word fail.",
        "Beautiful is better than ugly.",
    ],
)
def test_ordinary_and_unrelated_sentences_stay_general(analyser, text):
    assert analyser.intents(text) == frozenset()


def test_a_negated_phrase_is_not_brought_back_by_meaning(analyser):
    text = "I don't want to cancel my account"
    found, negated = analyser.phrase_intents(text)
    assert (found, negated) == (frozenset(), frozenset({"cancel"}))
    assert analyser.semantic is not None
    assert analyser.semantic.guess(text).intent == "cancel"  # what the negation guard is for
    assert analyser.intents(text) == frozenset()


def test_phrases_still_decide_first(analyser):
    # the classifier names at most one intent: two means the phrases answered
    assert analyser.intents("I'd like to upgrade to the premium plan") == frozenset({"upgrade", "purchase"})
    assert analyser.intents("   ") == frozenset()


def test_the_classifier_can_be_turned_off(tmp_path: Path):
    text = DEFAULT_POLICY_FILE.read_text().replace(
        "semantic: {examples: intent_examples.yaml, encoder: all-MiniLM-L6-v2, min_probability: 0.5, "
        "min_similarity: 0.40}", "semantic: null")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text)
    assert load_text_analyser(load_policy(policy_file).text, policy_file).semantic is None


def _policy_with_encoder(tmp_path: Path, encoder: str, floor: str) -> Path:
    text = DEFAULT_POLICY_FILE.read_text().replace(
        "examples: intent_examples.yaml, encoder: all-MiniLM-L6-v2, min_probability: 0.5, min_similarity: 0.40",
        f"examples: {DEFAULT_POLICY_FILE.parent / 'intent_examples.yaml'}, encoder: {encoder}, "
        f"min_probability: 0.5, min_similarity: {floor}")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text)
    return policy_file


def test_the_encoder_caches_its_example_embeddings_where_it_is_told(tmp_path: Path):
    policy_file = _policy_with_encoder(tmp_path, "all-MiniLM-L6-v2", "0.35")
    small = load_text_analyser(load_policy(policy_file).text, policy_file, model_cache_dir=tmp_path / "cache")
    assert small.semantic is not None and small.semantic.encoder.name == "all-MiniLM-L6-v2"
    assert small.intents("Please shut the whole thing down, I'm moving to a rival") == frozenset({"cancel"})
    assert small.intents("What time does your shop open on Saturday?") == frozenset()
    # its example embeddings were cached where it was told, keyed by encoder and content
    assert [p.name.split("-")[0] for p in (tmp_path / "cache" / "example-embeddings").glob("*.npy")] == ["all"]


def test_an_unknown_encoder_is_a_policy_error(tmp_path: Path):
    policy_file = _policy_with_encoder(tmp_path, "bert-huge", "0.3")
    with pytest.raises(PolicyError, match="text.semantic.encoder"):
        load_policy(policy_file)


def test_examples_are_read_relative_to_the_policy_file(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text("general: [hello there]\nbogus: [make it so]\n")
    text = DEFAULT_POLICY_FILE.read_text().replace("examples: intent_examples.yaml", "examples: mine.yaml")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text)
    policy = load_policy(policy_file)
    assert policy.text.examples_path(policy_file) == tmp_path / "mine.yaml"
    with pytest.raises(SemanticModelError, match=r"no phrases under text.intents: \['bogus'\]"):
        load_text_analyser(policy.text, policy_file)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cancel: [stop it]\n", "needs a 'general' list"),
        ("general: []\ncancel: [stop it]\n", "non-empty list"),
        ("general: [hi\n", "cannot read"),
    ],
)
def test_bad_example_files_fail_clearly(tmp_path: Path, content, message):
    path = tmp_path / "examples.yaml"
    path.write_text(content)
    with pytest.raises(SemanticModelError, match=message):
        load_examples(path)


def test_a_missing_example_file_fails_clearly(tmp_path: Path):
    with pytest.raises(SemanticModelError, match="cannot read intent examples"):
        load_examples(tmp_path / "nope.yaml")


def test_min_probability_is_validated(tmp_path: Path):
    text = DEFAULT_POLICY_FILE.read_text().replace("min_probability: 0.5,", "min_probability: 1.5,")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(text)
    with pytest.raises(PolicyError, match="text.semantic.min_probability"):
        load_policy(policy_file)


def test_the_similarity_floor_is_what_keeps_unrelated_text_out(analyser):
    assert analyser.semantic is not None
    assert analyser.semantic.probabilities("Say the word fail.")["complaint"] > 0.5
    guess = analyser.semantic.guess("Say the word fail.")
    assert guess.intent == "general" and guess.similarity < analyser.semantic.min_similarity
