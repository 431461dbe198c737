"""A caller in another language: the task carries it and its skill, the hold message is in it."""

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from router.flow import CallFlow
from router.policy import DEFAULT_POLICY_FILE, Decision, PolicyError, load_policy
from telephony.twiml import FlowUrls

POLICY = load_policy()
CALL = "CA" + "1" * 32


def flow(workflow: str | None = "WW" + "1" * 32) -> CallFlow:
    return CallFlow(POLICY, FlowUrls("https://emoroute.example"), workflow)


def test_a_spanish_callers_task_carries_the_language_and_skill_and_they_hear_spanish():
    decision = Decision("retention", 7, "said 'cancel'; speaks Spanish", "text")
    spec = flow().route_spec(CALL, decision, "neutral", identify=False, language="es")
    assert spec.attributes["language"] == "es" and spec.attributes["skill"] == "spanish"
    root = ET.fromstring(spec.twiml)
    say = root.find("Say")
    route = POLICY.languages.routes["es"]
    assert (say.text, say.get("language"), say.get("voice")) == (route.hold, "es-ES", "Polly.Lucia")
    task = root.find("Enqueue").find("Task")
    assert '"skill": "spanish"' in task.text and '"language": "es"' in task.text


def test_the_language_travels_through_identification_to_the_queue():
    decision = Decision("general", 3, "neutral tone; speaks Polish", "neutral")
    spec = flow().route_spec(CALL, decision, "neutral", language="pl")
    gather = ET.fromstring(spec.twiml).find("Gather")
    assert "language=pl" in gather.get("action")


def test_an_english_caller_hears_the_usual_hold_message_and_no_language_attribute():
    spec = flow().route_spec(CALL, Decision("general", 3, "neutral tone", "neutral"), "neutral", identify=False)
    assert "language" not in spec.attributes and "skill" not in spec.attributes
    say = ET.fromstring(spec.twiml).find("Say")
    assert say.text == POLICY.prompts.hold and say.get("language") is None


def test_a_language_nobody_speaks_gets_the_fallback_skill():
    spec = flow().route_spec(CALL, Decision("general", 3, "neutral tone", "neutral"), "neutral", identify=False,
                             language="de")
    assert spec.attributes["skill"] == "interpreter" and spec.attributes["language"] == "de"


def _says(root: ET.Element) -> list[tuple[str, str | None, str | None]]:
    return [(say.text, say.get("language"), say.get("voice")) for say in root.iter("Say")]


def test_a_caller_taken_for_another_language_hears_it_first_and_a_key_for_english():
    decision = Decision("retention", 7, "said 'cancel'; speaks Spanish", "text")
    spec = flow().route_spec(CALL, decision, "neutral", language="es", check_language=True)
    assert spec.attributes["skill"] == "spanish"  # the REST fallback still carries the language
    root = ET.fromstring(spec.twiml)
    gather = root.find("Gather")
    url = urlsplit(gather.get("action"))
    assert url.path == "/twilio/language"
    assert parse_qs(url.query) == {"queue": ["retention"], "priority": ["7"], "language": ["es"], "then": ["identify"]}
    assert (gather.get("numDigits"), gather.get("actionOnEmptyResult"), gather.get("input")) == ("1", "true", "dtmf")
    check = POLICY.languages.check
    assert _says(gather) == [(POLICY.languages.routes["es"].confirm, "es-ES", "Polly.Lucia"),
                             (check.english_prompt, None, POLICY.prompts.voice)]
    assert root.find("Redirect").text == gather.get("action") and root.find("Enqueue") is None
    # a re-route after it was asked goes straight to the queue
    again = flow().route_spec(CALL, decision, "neutral", identify=False, language="es", check_language=False)
    assert ET.fromstring(again.twiml).find("Enqueue") is not None


def test_after_the_check_the_call_goes_on_in_the_language_kept_or_in_english():
    kept = ET.fromstring(flow().after_language_check(CALL, "retention", 7, "es", "queue"))
    assert '"skill": "spanish"' in kept.find("Enqueue/Task").text
    assert _says(kept)[0][:2] == (POLICY.languages.routes["es"].hold, "es-ES")
    english = ET.fromstring(flow().after_language_check(CALL, "retention", 7, "", "queue"))
    assert '"skill"' not in english.find("Enqueue/Task").text and '"language"' not in english.find("Enqueue/Task").text
    assert _says(english)[0] == (POLICY.prompts.hold, None, POLICY.prompts.voice)
    identify = ET.fromstring(flow().after_language_check(CALL, "retention", 7, "es", "identify"))
    assert "/twilio/identify" in identify.find("Gather").get("action") and "language=es" in identify.find(
        "Gather").get("action")


def test_a_language_without_a_sentence_of_its_own_hears_only_the_english_key_and_english_is_never_asked():
    # German: nobody here speaks it (the fallback, an interpreter line, has no sentence of its own)
    german = ET.fromstring(flow().language_check("general", 3, "de", "queue"))
    assert _says(german) == [(POLICY.languages.check.english_prompt, None, POLICY.prompts.voice)]
    assert flow().language_check("general", 3, "en", "queue") is None
    assert flow().language_check("general", 3, "", "queue") is None
    off = POLICY.model_copy(update={"languages": POLICY.languages.model_copy(
        update={"check": POLICY.languages.check.model_copy(update={"enabled": False})})})
    assert CallFlow(off, FlowUrls("https://emoroute.example")).language_check("general", 3, "es", "queue") is None


def test_the_check_offers_the_identifiers_next_served_languages_each_in_its_own():
    decision = Decision("general", 4, "neutral tone", "default")
    ranked = ("en", "de", "pl", "it", "es", "el")  # English has its key; German is served by nobody here
    spec = flow().route_spec(CALL, decision, "neutral", language="ar", check_language=True, runners_up=ranked)
    gather = ET.fromstring(spec.twiml).find("Gather")
    routes, check = POLICY.languages.routes, POLICY.languages.check
    assert check.offer_others == 3
    assert _says(gather) == [(routes["ar"].confirm, "ar-AE", routes["ar"].voice),
                             (check.english_prompt, None, POLICY.prompts.voice),
                             (routes["pl"].offer, "pl-PL", "Polly.Ewa"), (routes["it"].offer, "it-IT", "Polly.Carla"),
                             (routes["es"].offer, "es-ES", "Polly.Lucia")]
    assert routes["pl"].key in routes["pl"].offer and routes["it"].key in routes["it"].offer
    # an Amharic speaker taken for Arabic (the commonest wrong take on real speakers) hears Amharic's offer in it
    amharic = ET.fromstring(flow().language_check("general", 4, "ar", "queue", ("am", "en"))).find("Gather")
    assert _says(amharic)[2:] == [(routes["am"].offer, "am-ET", "Google.am-ET-Standard-A")]
    # nothing ranked (an older worker's transcript): English only
    plain = ET.fromstring(flow().language_check("general", 4, "ar", "queue")).find("Gather")
    assert len(_says(plain)) == 2


def test_language_keys_are_checked_and_a_keyed_language_brings_its_own_queue(tmp_path):
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    routes = data["languages"]["routes"]
    for change, match in (({"pl": {**routes["pl"], "key": routes["es"]["key"]}}, "must differ"),
                          ({"pl": {**routes["pl"], "key": data["languages"]["check"]["english_key"]}}, "must differ"),
                          ({"pl": {k: v for k, v in routes["pl"].items() if k != "offer"}}, "go together")):
        bad = {**data, "languages": {**data["languages"], "routes": {**routes, **change}}}
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True))
        with pytest.raises(PolicyError, match=match):
            load_policy(tmp_path / "policy.yaml")
    assert POLICY.languages.keyed(routes["pl"]["key"]) == "pl" and POLICY.languages.keyed("0") is None
    own = POLICY.model_copy(update={"languages": POLICY.languages.model_copy(update={"routes": {
        **POLICY.languages.routes, "pl": POLICY.languages.routes["pl"].model_copy(update={"queue": "sales"})}})})
    assert own.language_queue("retention", "es", "pl") == "sales"
    assert own.language_queue("sales", "pl", "en") == POLICY.default_queue  # Polish's own queue left for English
    assert POLICY.language_queue("retention", "es", "pl") == "retention"
