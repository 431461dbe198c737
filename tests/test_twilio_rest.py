"""The REST requests TwilioRestActions sends, received by a real local HTTP server standing where api.twilio.com is."""

import base64
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from telephony.actions import RouteSpec, TwilioRequestError, TwilioRestActions
from tests.helpers import ACCOUNT, new_call_sid


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, dict[str, list[str]]]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.seen.append(("POST", self.path, self.headers.get("Authorization", ""), parse_qs(body)))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "stopped"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def twilio_api():
    _Recorder.seen, _Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_stopping_a_stream_posts_to_the_stream_resource_by_name(twilio_api):
    actions = TwilioRestActions(account_sid=ACCOUNT, auth_token="secret-token",
                                api_base=f"http://127.0.0.1:{twilio_api.server_port}")
    sid = new_call_sid()
    try:
        await actions.stop_stream(sid)
        await actions.route_call(sid, RouteSpec(twilio_queue="sales", priority=5, attributes={},
                                                hold_prompt="Please hold.", voice="Polly.Joanna"))
        _Recorder.status = 404  # the stream already ended: a clear error, not a silent success
        with pytest.raises(TwilioRequestError, match="HTTP 404"):
            await actions.stop_stream(sid)
    finally:
        await actions.aclose()
    (method, path, auth, form), (_, route_path, _, route_form), _ = _Recorder.seen
    assert (method, path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}/Streams/emoroute.json")
    assert form == {"Status": ["stopped"]}
    assert auth == "Basic " + base64.b64encode(f"{ACCOUNT}:secret-token".encode()).decode()
    assert route_path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"
    assert ET.fromstring(route_form["Twiml"][0]).find("Enqueue").text == "sales"


async def test_a_malformed_call_sid_never_reaches_a_url(twilio_api):
    actions = TwilioRestActions(account_sid=ACCOUNT, auth_token="t", api_base=f"http://127.0.0.1:{twilio_api.server_port}")
    try:
        with pytest.raises(TwilioRequestError, match="malformed"):
            await actions.stop_stream("CA../../Accounts")
    finally:
        await actions.aclose()
    assert _Recorder.seen == []
