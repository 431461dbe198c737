"""``emoroute demo``: embedded Redis, the real server, and simulated calls from real audio."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from audio_models.audio_io import load_audio
from emoroute.app import create_app
from emoroute.redis_server import free_port
from emoroute.settings import Settings
from emoroute.simulate import CallerScript, SimTarget, simulate_many

log = logging.getLogger(__name__)

# RAVDESS clips of actors the shipped model never trained on (1, 2, 23, 24),
# strong intensity: what an angry, happy, neutral or sad caller sounds like.
DEMO_CLIPS = (
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",  # angry
    "ravdess/Actor_02/03-01-03-02-02-01-02.flac",  # happy
    "ravdess/Actor_23/03-01-01-01-01-01-23.flac",  # neutral
    "ravdess/Actor_24/03-01-04-02-01-02-24.flac",  # sad
    "ravdess/Actor_24/03-01-05-02-02-01-24.flac",  # angry
    "ravdess/Actor_23/03-01-03-02-01-02-23.flac",  # happy
)


def demo_scripts(agent: str, agent_audio: np.ndarray) -> list[CallerScript]:
    """What each demo caller does beyond speaking (in DEMO_CLIPS order, then the silent caller).

    Most reach an agent and answer the survey; one presses 3 while asked; one refuses the analysis
    (star at identification); the silent one gets the keypad menu and presses 2.
    """
    def talks(score: str, **more: Any) -> CallerScript:
        return CallerScript(agent=agent, agent_audio=agent_audio, account_digits="40721193", survey_score=score,
                            **more)

    return [talks("2"), talks("5"), talks("4", key="3", key_after_s=0.6), talks("3"),
            CallerScript(agent=agent, account_digits="*"), talks("4"), talks("1", menu_key="2")]


def demo_audio(data: Path) -> list[tuple[str, np.ndarray]]:
    """Return (name, 16 kHz waveform) for the demo clips found under ``data``."""
    found = [(rel, load_audio(data / rel)) for rel in DEMO_CLIPS if (data / rel).exists()]
    if not found:
        raise FileNotFoundError(
            f"no demo clips under {data}: pass --data pointing at the corpora (ravdess/Actor_NN/...) "
            "or set EMOROUTE_CORPORA")
    return found


async def run_demo(*, data: Path, port: int, exit_after: bool, realtime: bool, data_dir: Path,
                   synthetic_week: bool = False) -> int:
    """Start everything, route the demo calls, print what happened, then keep serving.

    ``synthetic_week``: first write a labelled synthetic week of history (emoroute.synthetic_history)
    to the history store, so the analytics page shows what a supervisor sees after a week.
    """
    try:
        audios = demo_audio(data)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    # the simulated callers speak faster than real time unless --realtime: lift the message-rate limit
    settings = Settings(environment="development", public_url=url, data_dir=data_dir, redis_url=None,
                        max_frames_per_second=(Settings.model_fields["max_frames_per_second"].default if realtime
                                               else 10_000.0))
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", ws_max_size=1 << 20))
    serving = asyncio.create_task(_serve(server))
    while not server.started:
        if serving.done():
            log.error("the server did not start (see the error above)")
            return 2
        await asyncio.sleep(0.05)
    if synthetic_week:
        await _seed_week(app)
    target = SimTarget(url=url, public_url=url, auth_token=settings.twilio_auth_token,
                       api_token=settings.api_token)
    await _register_demo_agent(url, settings)
    agent_id = next(iter(settings.agent_token_map()))
    audios.append(("(a caller who says nothing)", np.zeros(16000 * 7, dtype=np.float32)))
    _say(f"EmoRoute demo: server {url}, embedded Redis under {data_dir}/redis, "
         f"{len(audios)} simulated calls ({'real time' if realtime else 'fast'})")
    scripts = demo_scripts(agent_id, audios[2][1])
    # two callers call twice (a repeat caller in analytics)
    callers = ["+15550001001", "+15550001002", "+15550001003", "+15550001001", "+15550001005",
               "+15550001002", "+15550001007"]
    results = await simulate_many(target, audios, calls=len(audios), realtime=realtime, scripts=scripts,
                                  callers=callers)
    for r in results:
        label = Path(r["file"]).name
        if "error" in r or not r.get("queue"):
            _say(f"  {label}: NOT ROUTED {r.get('error', '(no decision observed)')}")
            continue
        extra = "".join([f", pressed {r['keypad']}" if r.get("keypad") else "",
                         ", opted out of analysis" if r.get("opted_out") else "",
                         f", survey {r['csat']}/5" if r.get("csat") else ""])
        _say(f"  {label}: -> {r['queue']:<9} priority {r['priority']:>2}  {r['reason']}  "
             f"[emotion {r.get('emotion', '–')}, decided in {r.get('decision_latency_ms', '–')} ms{extra}]")
    token = settings.api_token
    agent_token = settings.agent_token_map()[agent_id]
    _say(f"Dashboards: {url}/dashboard/supervisor?token={token}")
    _say(f"Agent view: {url}/dashboard/agent?agent={agent_id}&token={agent_token}")
    _say(f"Analytics:  {url}/dashboard/analytics?token={token}{'&days=7' if synthetic_week else ''}")
    _say(f"API:        {url}/api/calls   (Authorization: Bearer {token})   Metrics: {url}/metrics   Docs: {url}/docs")
    if exit_after:
        server.should_exit = True
    else:
        _say("Serving; press Ctrl-C to stop.")
    await serving
    return 0 if all(r.get("queue") for r in results) else 1


async def _seed_week(app: Any) -> None:
    from emoroute.synthetic_history import seed_week

    history = app.state.services.history
    if history is None:
        _say("No history store (EMOROUTE_HISTORY_URL=off): no synthetic week written")
        return
    calls = await asyncio.to_thread(seed_week, history)
    _say(f"Synthetic week: {calls} made-up calls written to the history store, marked synthetic "
         "(the analytics page says so)")


async def _register_demo_agent(url: str, settings: Settings) -> None:
    agent_id = next(iter(settings.agent_token_map()))
    async with httpx.AsyncClient() as client:
        resp = await client.put(f"{url}/api/agents/{agent_id}",
                                json={"name": "Demo agent", "skills": ["retention", "sales", "general"]},
                                headers={"Authorization": f"Bearer {settings.api_token}"})
        resp.raise_for_status()


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits on a failed start-up; the demo reports it
        log.debug("uvicorn exited with %s", exc.code)


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo's output is for a person
