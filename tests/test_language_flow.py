"""A caller in another language: the task carries it and its skill, the hold message is in it."""

import xml.etree.ElementTree as ET

from router.flow import CallFlow
from router.policy import Decision, load_policy
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
