"""Dashboards in a real headless Chromium against a real server fed real audio."""

from __future__ import annotations

import csv as csv_module
import io
import json
import os
import re
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from router import keys
from router.phases import caller_hash
from tests.helpers import HeldCall, answer_identification, wait_for

SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}
AGENT = {"Authorization": "Bearer dev-agent-token"}
XSS = '<img src=x onerror="window.__xss=1">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    os.environ.get("CI") != "true" and not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them; CI always runs this)",
)


@pytest.fixture
def browser(tmp_path):
    assert CHROMIUM and CHROMEDRIVER, "install Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    path = Path(os.environ.get("EMOROUTE_SCREENSHOT_DIR", tmp_path / "shots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def js(driver, script: str):
    return driver.execute_script(f"return {script};")


def wait_js(driver, script: str, timeout: float = 20.0, what: str = ""):
    return wait_for(lambda: js(driver, script), timeout=timeout, what=what or script)


class EventClock:
    """Records when the server published each event (server clock) per call."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(keys.events_channel())
        self.events: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            msg = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if msg:
                self.events.append(json.loads(msg["data"]))

    def last(self, sid: str, kinds: tuple[str, ...]) -> dict:
        return [e for e in self.events if e["call_sid"] == sid and e["type"] in kinds][-1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.pubsub.close()
        self.client.close()


def test_pages_require_a_token_and_respect_roles(live_server):
    base = live_server.url
    pages = ("/dashboard/supervisor", "/dashboard/analytics", "/dashboard/agent?agent=agent-1", "/dashboard/calls/CA1")
    for path in pages:
        resp = httpx.get(base + path)
        assert resp.status_code == 401 and "Sign in" in resp.text
    assert httpx.get(base + "/dashboard/supervisor", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/analytics", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/agent?agent=agent-2", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/api/wallboard", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/api/agent/agent-2", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/events?scope=all", headers=AGENT).status_code == 403
    assert httpx.get(base + "/dashboard/api/analytics?start=yesterday", headers=SUPERVISOR).status_code == 422
    bad = httpx.post(base + "/dashboard/login", data={"token": "nope", "next": "/dashboard"})
    assert bad.status_code == 401 and "Unknown token" in bad.text
    plotly_js = httpx.get(base + "/dashboard/static/plotly.min.js")
    assert plotly_js.status_code == 200 and len(plotly_js.content) > 1_000_000


def test_supervisor_agent_timeline_and_analytics_in_a_real_browser(live_server, browser, angry_audio, neutral_audio,
                                                                    redis_url, shots):
    base, ws_url = live_server.url, live_server.url.replace("http://", "ws://") + "/twilio/stream"
    assert httpx.put(f"{base}/api/agents/agent-1", json={"name": "Ann", "skills": ["retention", "general"]},
                     headers=SUPERVISOR).status_code == 204
    clock = EventClock(redis_url)
    try:
        browser.get(f"{base}/dashboard/supervisor?token=dev-supervisor-token")
        assert "token=" not in browser.current_url  # the token moved into an HttpOnly cookie
        wait_js(browser, "window.emoroute && window.emoroute.updates > 0", what="first wallboard render")
        # an angry caller, calmer for a moment, then angry again: a trajectory worth drawing
        audio = np.concatenate([angry_audio, neutral_audio, angry_audio])
        with HeldCall(ws_url, audio, caller=XSS) as call:
            row = f"document.querySelector('tr[data-call=\"{call.sid}\"]')"
            wait_js(browser, f"{row} && {row}.textContent.includes('retention')", what="live call on the wallboard")
            assert js(browser, "window.__xss") is None
            assert XSS in js(browser, f"{row}.textContent")  # shown as text, not markup
            assert js(browser, "document.querySelector('[data-queue=retention] .big').textContent") == "1"
            browser.save_screenshot(str(shots / "supervisor.png"))

            # the agent whose queue holds the caller sees the cues, live
            agent = browser
            agent.delete_all_cookies()
            agent.get(f"{base}/dashboard/agent?agent=agent-1&token=dev-agent-token")
            wait_js(agent, "window.emoroute.updates > 0", what="agent page render")
            # still keying the account number: not the agent's next caller yet, and "take next" passes
            # over it; then Twilio posts the step's answer and the caller waits for an agent
            assert js(agent, "document.querySelector('#card').dataset.call || ''") != call.sid
            assert httpx.post(f"{base}/api/agents/agent-1/next", headers=AGENT).json()["call_sid"] is None
            assert "<Enqueue" in answer_identification(base, call.sid, "12345678#")
            wait_js(agent, f"document.querySelector('#card').dataset.call === '{call.sid}'", what="agent cue card")
            def readings():
                return [e for e in clock.events if e["call_sid"] == call.sid and e["type"] == "reading"]

            # readings come from utterances and sliding windows: wait for one from the last clip,
            # after which the card must settle on angry (under load it may still be catching up)
            last_clip_s = (len(angry_audio) + len(neutral_audio)) / 16000 + 1.0
            wait_for(lambda: len(readings()) >= 3 and readings()[-1]["t"] > last_clip_s,
                     what="the last clip scored")
            wait_js(agent, "document.querySelector('#label').textContent === 'angry'", timeout=10,
                    what="the card showing the last clip's anger")
            # with how sure the model is ("92 % sure"), whatever the call was routed on
            assert re.fullmatch(r"\d{1,3} % sure", js(agent, "document.querySelector('#confidence').textContent"))
            assert "Next caller" in js(agent, "document.querySelector('#mode').textContent")
            assert js(agent, "document.querySelector('#suggestion').textContent").startswith("Caller sounds")
            assert js(agent, "window.__xss") is None
            before = js(agent, "window.emoroute.updates")
            assert httpx.post(f"{base}/api/agents/agent-1/next", headers=AGENT).json()["call_sid"] == call.sid
            wait_js(agent, "document.querySelector('#mode').textContent === 'Connected caller'", timeout=5,
                    what="pickup shown live")
            assert js(agent, "window.emoroute.updates") > before
            pickup = clock.last(call.sid, ("pickup",))
            delay = js(agent, "window.emoroute.lastUpdate") / 1000 - pickup["ts"]
            assert 0 <= delay < 1.0, f"agent view updated {delay:.2f} s after the event"
            agent.save_screenshot(str(shots / "agent.png"))

            # the call's timeline: a chart with points, decision and pickup markers
            agent.delete_all_cookies()
            agent.get(f"{base}/dashboard/calls/{call.sid}?token=dev-supervisor-token")
            chart = "document.getElementById('chart')"
            wait_js(agent, f"{chart}.data && {chart}.data[0].x.length > 0", what="timeline chart points")
            assert js(agent, "document.querySelectorAll('#chart .scatterlayer .trace').length") >= 6
            assert js(agent, "document.getElementById('chart').layout.shapes.length") >= 2  # decision + pickup
            agent.save_screenshot(str(shots / "call-timeline.png"))
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        wait_for(lambda: r.hget(keys.call(call.sid), "status") == "ended", what="call end")
        r.close()
        history = live_server.app.state.services.history  # the analytics read the call from the history store
        wait_for(lambda: history.call(call.sid) is not None, what="the call archived")

        browser.get(f"{base}/dashboard/analytics")
        wait_js(browser, "window.emoroute.updates > 0", what="analytics render")
        assert js(browser, "document.querySelector('#kpis .big').textContent") == "1"
        assert js(browser, "document.getElementById('per-queue').data[0].y.reduce((a, b) => a + b, 0)") == 1
        csv = httpx.get(f"{base}/dashboard/api/analytics.csv", headers=SUPERVISOR)
        rows = list(csv_module.DictReader(io.StringIO(csv.text)))
        # numbers never reach the history store: the export names the caller by their salted hash
        assert len(rows) == 1 and rows[0]["call_sid"] == call.sid and rows[0]["caller"] == ""
        assert rows[0]["caller_hash"] == caller_hash(live_server.settings.secret_key, XSS)
        assert rows[0]["queue"] == "retention" and rows[0]["agent"] == "agent-1" and rows[0]["first_emotion"]
    finally:
        clock.close()


def test_agent_card_carries_what_the_caller_is_saying_now():
    from dashboards.cues import caller_cues
    from router.policy import load_policy

    summary = {"call_sid": "CA1", "partial_transcript": "I want to cancel my"}
    assert caller_cues(summary, [], load_policy().cues)["hearing"] == "I want to cancel my"
    assert caller_cues({"call_sid": "CA1"}, [], load_policy().cues)["hearing"] == ""


async def test_phase_bands_and_the_new_analytics_panels_in_a_real_browser(live_server, browser, angry_audio,
                                                                          neutral_audio, redis_url, shots):
    from emoroute.simulate import CallerScript, SimTarget, simulate_many

    base = live_server.url
    target = SimTarget(url=base, public_url=base, auth_token="dev-auth-token", api_token="dev-supervisor-token")
    talk = {"agent": "agent-1", "agent_audio": neutral_audio, "account_digits": "1234"}
    scripts = [CallerScript(**talk, survey_score="5"),  # angry, then calm with the agent: a high score
               CallerScript(key="3", key_after_s=0.4, **talk, survey_score="2"),  # a keypad caller
               CallerScript(account_digits="*")]  # refuses the analysis at identification
    audio = [("angry", np.concatenate([angry_audio, neutral_audio])), ("neutral", neutral_audio),
             ("angry", angry_audio)]
    # at real-time pace: the timeline's call time and the webhooks' wall-clock times then agree, as on a real call
    full, keyed, opted = await simulate_many(target, audio, calls=3, realtime=True, scripts=scripts,
                                             callers=["+15550002001", "+15550002002", "+15550002001"])
    assert full["csat"] == "5" and keyed["keypad"] == "3" and opted["opted_out"] == "1"
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    for call in (full, keyed, opted):
        wait_for(lambda c=call: r.hget(keys.call(c["call_sid"]), "status") == "ended", what="call end")
    r.close()

    # the timeline shows the call's phases as bands, in order
    browser.get(f"{base}/dashboard/calls/{full['call_sid']}?token=dev-supervisor-token")
    chart = "document.getElementById('chart')"
    wait_js(browser, f"{chart}.data && {chart}.data[0].x.length > 0", what="timeline chart points")
    assert js(browser, f"{chart}.dataset.phases") == "greeting,identification,queue,agent,survey"
    bands = js(browser, f"{chart}.layout.shapes.filter((s) => s.type === 'rect').length")
    assert bands >= 4  # identification may be too short to draw in a fast simulated call
    assert js(browser, "document.querySelectorAll('#chart .layer-below .shapelayer path').length") >= bands
    labels = js(browser, f"{chart}.layout.annotations.map((a) => a.text)")
    assert {"greeting", "queue", "agent", "survey"} <= set(labels)
    browser.execute_script("document.getElementById('chart').scrollIntoView()")
    browser.save_screenshot(str(shots / "call-phases.png"))

    # analytics: phases, topics, escalation, repeat callers, opt-outs, CSAT panels drawn from those calls
    history = live_server.app.state.services.history  # the analytics read the calls from the history store
    wait_for(lambda: history.query("SELECT count(*) FROM calls WHERE csat IS NOT NULL")[0][0] == 2,
             what="the calls archived with their surveys")
    browser.get(f"{base}/dashboard/analytics")
    wait_js(browser, "window.emoroute.updates > 0", what="analytics render")
    tiles = js(browser, "[...document.querySelectorAll('#kpis .tile')].map((t) => t.textContent)")
    assert any(t.startswith("opted out") and "1 (33 %)" in t for t in tiles), tiles
    assert any(t.startswith("repeat callers") and t.endswith("1 (33 %)") for t in tiles), tiles
    assert any(t.startswith("CSAT") and "3.5 (2)" in t for t in tiles), tiles
    phases = js(browser, "document.getElementById('phase-means').data[0].x")
    assert phases[0] == "greeting" and "agent" in phases
    assert js(browser, "document.querySelectorAll('#phase-means .bars path').length") >= len(phases)
    assert "purchase" in js(browser, "document.getElementById('topic-emotion').data[0].x")
    assert set(js(browser, "document.getElementById('phase-queue').data[0].y")) >= {"retention", "sales"}
    assert len(js(browser, "document.getElementById('csat-scatter').data[0].x")) == 2
    assert js(browser, "document.querySelectorAll('#csat-scatter .scatterlayer .point').length") == 2
    assert js(browser, "document.getElementById('escalation').data.length") == 3
    rows = js(browser, "[...document.querySelectorAll('#disagreements tbody tr')].map((t) => t.textContent)")
    assert rows and all(isinstance(t, str) for t in rows)
    # agent-1 took the two callers who stayed on: how they fared with the agent, and their scores
    agent_row = js(browser, "[...document.querySelectorAll('#agents tbody tr[data-agent=\"agent-1\"] td')]"
                            ".map((t) => t.textContent)")
    assert agent_row[:2] == ["agent-1", "2"] and agent_row[5] == "3.5 (2)", agent_row
    assert js(browser, "document.getElementById('synthetic').hidden")  # real calls: no synthetic-data notice


async def test_the_demo_week_fills_every_analytics_chart_and_is_labelled_synthetic(live_server, browser, shots):
    """``emoroute demo --synthetic-week``'s history on the analytics page: the README's analytics screenshots."""
    import asyncio

    from emoroute.synthetic_history import seed_week

    history = live_server.app.state.services.history
    calls = await asyncio.to_thread(seed_week, history)
    assert calls > 2000 and await asyncio.to_thread(seed_week, history) == calls  # a second seed replaces the first
    base = live_server.url
    browser.get(f"{base}/dashboard/supervisor?token=dev-supervisor-token")  # signs in (a session cookie)
    browser.get(f"{base}/dashboard/analytics?days=7")
    wait_js(browser, "window.emoroute && window.emoroute.updates > 0", what="analytics render")
    notice = js(browser, "document.getElementById('synthetic').textContent")
    assert f"{calls} of these {calls} calls are a made-up demo week" in notice, notice
    assert not js(browser, "document.getElementById('synthetic').hidden")
    assert js(browser, "document.querySelector('#kpis .big').textContent") == str(calls)
    hurts = js(browser, "document.getElementById('hurts').textContent")
    assert "Valence worsens most often from greeting to identification" in hurts, hurts
    assert len(js(browser, "document.getElementById('emotion-hour').data[0].x")) > 24 * 5  # hours of the week
    assert len(js(browser, "document.getElementById('csat-scatter').data[0].x")) > 500
    assert len(js(browser, "[...document.querySelectorAll('#agents tbody tr')]")) == 6
    browser.save_screenshot(str(shots / "analytics.png"))
    browser.execute_script("document.querySelector('h2').scrollIntoView()")
    browser.save_screenshot(str(shots / "analytics-phases.png"))
    browser.execute_script("document.querySelector('#csat-scatter').scrollIntoView()")
    browser.save_screenshot(str(shots / "analytics-csat.png"))
    browser.execute_script("document.querySelector('#disagreements').scrollIntoView()")
    browser.save_screenshot(str(shots / "analytics-agents.png"))
    # a synthetic call's page: its made-up timeline, read from the store (Redis never held it)
    (sid,), = await asyncio.to_thread(history.query, "SELECT call_sid FROM calls WHERE synthetic AND csat IS NOT NULL "
                                                     "ORDER BY started_at LIMIT 1")
    browser.get(f"{base}/dashboard/calls/{sid}")
    chart = "document.getElementById('chart')"
    wait_js(browser, f"{chart}.data && {chart}.data[0].x.length >= 4", what="the synthetic call's readings")
    assert js(browser, f"{chart}.dataset.phases").startswith("greeting,identification,queue,agent")
    assert await asyncio.to_thread(history.erase_synthetic) == calls


def test_a_cue_rule_with_min_probability_matches_on_the_probability():
    from dashboards.cues import pick_cue
    from router.policy import load_policy

    rules = load_policy().cues
    sad = next(r for r in rules if r.emotion == "sad")
    low = {"angry": 0.05, "happy": 0.05, "neutral": 0.55, "sad": 0.35}
    # as shipped, a reading labelled neutral gets the generic greeting, whatever its P(sad)
    assert pick_cue(rules, emotion="neutral", trend="steady", intents=set(), probs=low) != sad.say
    lowered = [r.model_copy(update={"min_probability": 0.3}) if r is sad else r for r in rules]
    assert pick_cue(lowered, emotion="neutral", trend="steady", intents=set(), probs=low) == sad.say
    assert pick_cue(lowered, emotion="neutral", trend="steady", intents=set(),
                    probs={**low, "sad": 0.2, "neutral": 0.7}) != sad.say
    # rules still match first to last: an angry reading keeps its own cue
    angry = next(r for r in rules if r.emotion == "angry" and not r.intent and not r.trend)
    assert pick_cue(lowered, emotion="angry", trend="steady", intents=set(),
                    probs={"angry": 0.5, "sad": 0.4, "happy": 0.05, "neutral": 0.05}) == angry.say


async def test_an_agent_name_is_plain_text_in_the_timeline_never_a_link(live_server, browser, redis_url):
    # the review's finding (#33): an agent name became a clickable outbound link inside the Plotly
    # timeline (<a xlink:href=...>), as Plotly renders a little HTML in chart text
    import time

    import redis.asyncio as aioredis

    from router.store import CallStore, Outbox
    from tests.helpers import new_call_sid

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = CallStore(client, outbox=Outbox(None), retention_s=86400, seconds_per_point=60,
                      queues=["retention", "sales", "general"])
    sid, name = new_call_sid(), '<a href="https://evil.example/">Nia</a>'
    await store.call_started(call_sid=sid, stream_sid="MZ", caller="+15550002121", started_at=time.time() - 30)
    assert await store.mark_with_agent(call_sid=sid, agent_id=name, source="taskrouter")
    await client.aclose()
    browser.get(f"{live_server.url}/dashboard/calls/{sid}?token=dev-supervisor-token")
    chart = "document.getElementById('chart')"
    wait_js(browser, f"{chart}.layout && {chart}.layout.annotations.some((a) => a.text.includes('Nia'))",
            what="the pickup drawn")
    assert js(browser, "document.querySelectorAll('#chart a').length") == 0
    shown = js(browser, "[...document.querySelectorAll('#chart .annotation-text')].map((t) => t.textContent)")
    assert f"agent {name}" in shown, shown
