"""A non-English caller's own words read for intents by the multilingual encoder (router.own_words), real models."""

from __future__ import annotations

import os

import pytest

from router.policy import load_policy
from router.text import load_text_analyser


@pytest.fixture(scope="module")
def analyser(tmp_path_factory):
    text = load_text_analyser(load_policy().text, model_cache_dir=tmp_path_factory.mktemp("cache"))
    assert text.own_words is not None
    assert text.own_words.wait(60), "the shipped own-words fit did not load"
    return text


@pytest.mark.parametrize(("said", "intent"), [
    ("Voglio disdire il mio abbonamento alla palestra.", "cancel"),
    ("Chcę złożyć reklamację, obsługa w waszym salonie jest fatalna.", "complaint"),
    ("Quiero comprar un teléfono nuevo para mi hija.", "purchase"),
])
def test_own_words_name_the_intent_in_the_callers_language(analyser, said, intent):
    assert intent in analyser.own_words.intents(said)


def test_a_plain_remark_in_another_language_names_no_intent(analyser):
    assert analyser.own_words.intents("Dzisiaj jest bardzo ładna pogoda.") == frozenset()


def test_own_words_replace_a_translation_that_lost_the_request(analyser):
    # Whisper base's translation of "Ich möchte meinen Handyvertrag kündigen, er ist viel zu teuer."
    lost = "I want my hand to be able to carry them, because he is too expensive."
    assert "cancel" not in analyser.analyse(lost).intents
    said = "Ich möchte meinen Handyvertrag kündigen, er ist viel zu teuer."
    assert "cancel" in analyser.analyse(lost, original=said).intents


def test_the_translation_stands_when_the_own_words_name_nothing(analyser):
    translation = "I want to cancel my contract from next month."
    assert "cancel" in analyser.analyse(translation, original="Dzisiaj jest bardzo ładna pogoda.").intents


def test_the_shipped_own_words_fit_is_the_fit_of_the_shipped_examples():
    from router.intent_model import IntentModel
    from router.own_words import SHIPPED_OWN_WORDS_MODEL
    from router.text import intent_examples

    shipped = IntentModel.load(SHIPPED_OWN_WORDS_MODEL, digest=intent_examples(load_policy().text).digest)
    assert shipped is not None, "refit router/intents/own-words.npz after changing the training examples"
    assert shipped.encoder_name == "multilingual-e5-small-q4" and shipped.words.terms == []


def test_loading_the_multilingual_encoder_leaves_the_process_thread_settings_alone(monkeypatch):
    from router.multilingual_encoder import MultilingualEncoder

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    encoder = MultilingualEncoder(threads=1)
    assert "OMP_NUM_THREADS" not in os.environ
    vectors = encoder.encode(["Voglio disdire il mio abbonamento.", "I want to cancel my subscription."])
    assert vectors.shape == (2, 384) and float(vectors[0] @ vectors[1]) > 0.8
