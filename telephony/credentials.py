"""What a Media Stream must prove before it is accepted, and the shapes of Twilio's ids.

Twilio signs the WebSocket handshake over the stream URL alone, and that URL is the same
for every call: a replayed handshake proves nothing about which call follows. So the voice
webhook (whose signature covers the CallSid) mints a per-call credential, an HMAC of
(AccountSid, CallSid, issue time) under the server's secret, and hands it to Twilio as a
``<Parameter>`` of the ``<Stream>``. Twilio echoes it in the stream's ``start`` message; the
stream is accepted only if it matches that ``start``'s own ids and is fresh. Pure functions:
no Redis, no sockets (the one-stream-per-call record lives in router.store).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
STREAM_SID = re.compile(r"^MZ[0-9a-f]{32}$")
WORKSPACE_OR_WORKFLOW_SID = re.compile(r"^(WS|WW)[0-9a-f]{32}$")
TOKEN_PARAM = "emoroute_token"
ISSUED_PARAM = "emoroute_issued"


def is_call_sid(value: object) -> bool:
    """Return whether ``value`` has the shape of a Twilio CallSid (CA + 32 hex digits)."""
    return isinstance(value, str) and CALL_SID.fullmatch(value) is not None


def is_account_sid(value: object) -> bool:
    """Return whether ``value`` has the shape of a Twilio AccountSid (AC + 32 hex digits)."""
    return isinstance(value, str) and ACCOUNT_SID.fullmatch(value) is not None


def is_stream_sid(value: object) -> bool:
    """Return whether ``value`` has the shape of a Twilio StreamSid (MZ + 32 hex digits)."""
    return isinstance(value, str) and STREAM_SID.fullmatch(value) is not None


def _key(secret: str) -> bytes:
    # A key of its own for stream credentials, derived from the server secret.
    return hmac.new(secret.encode(), b"emoroute/stream-credential/v1", hashlib.sha256).digest()


def stream_token(secret: str, *, account_sid: str, call_sid: str, issued: int) -> str:
    """Return the credential for one call's Media Stream, minted when ``issued`` (Unix seconds)."""
    message = f"{account_sid}:{call_sid}:{issued}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def stream_parameters(secret: str, *, account_sid: str, call_sid: str, now: float | None = None) -> dict[str, str]:
    """Return the ``<Parameter>`` values that carry the credential (token and issue time)."""
    issued = int(now if now is not None else time.time())
    return {TOKEN_PARAM: stream_token(secret, account_sid=account_sid, call_sid=call_sid, issued=issued),
            ISSUED_PARAM: str(issued)}


@dataclass(frozen=True)
class StreamCheck:
    """The verdict on a ``start`` message: ``reason`` is a metric label when it is refused."""

    ok: bool
    reason: str = ""


def check_stream_start(
    secret: str,
    *,
    expected_account_sid: str,
    account_sid: str,
    call_sid: str,
    stream_sid: str,
    parameters: dict[str, str],
    ttl_s: float,
    now: float | None = None,
) -> StreamCheck:
    """Return whether a ``start`` message may open a stream, checking ids, account and credential."""
    if not is_call_sid(call_sid) or not is_stream_sid(stream_sid):
        return StreamCheck(False, "bad_sid")
    if not is_account_sid(account_sid) or not hmac.compare_digest(account_sid, expected_account_sid):
        return StreamCheck(False, "wrong_account")
    token, issued_text = parameters.get(TOKEN_PARAM, ""), parameters.get(ISSUED_PARAM, "")
    if not token or not issued_text.isdigit():
        return StreamCheck(False, "no_credential")
    issued = int(issued_text)
    expected = stream_token(secret, account_sid=account_sid, call_sid=call_sid, issued=issued)
    if not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
        return StreamCheck(False, "bad_credential")
    age = (now if now is not None else time.time()) - issued
    if age > ttl_s or age < -60:  # a minute of clock skew between processes
        return StreamCheck(False, "expired_credential")
    return StreamCheck(True)


class LocalLedger:
    """This process's own record of announced calls and open streams.

    Redis holds the shared record (router.store); this one lets a single process keep
    admitting the calls it announced itself while Redis is unreachable, and refuse a second
    stream for a call it is already streaming. Bounded: the oldest announcements go first.
    """

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000) -> None:
        """Remember at most ``max_entries`` announcements, each for ``ttl_s``."""
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._announced: dict[str, float] = {}
        self.streaming: set[str] = set()

    def announce(self, call_sid: str, now: float | None = None) -> None:
        """Record that this process answered the call's signed voice webhook."""
        now = now if now is not None else time.time()
        self._announced[call_sid] = now + self.ttl_s
        while len(self._announced) > self.max_entries:
            del self._announced[next(iter(self._announced))]

    def was_announced(self, call_sid: str, now: float | None = None) -> bool:
        """Return whether this process announced the call within the TTL."""
        expires = self._announced.get(call_sid)
        return expires is not None and expires >= (now if now is not None else time.time())
