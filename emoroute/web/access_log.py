"""Keeping secrets and callers' numbers out of the access log (security review, #33).

uvicorn's access log writes each request line whole: a dashboard sign-in by link
(``/dashboard/supervisor?token=...``) put the supervisor token there, and an erasure
(``DELETE /api/callers/%2B4477...``) the caller's full number. This filter rewrites the path
before any handler sees it: query values of credential names become ``[REDACTED]`` and a caller's
number in an erasure path is masked as everywhere else in the logs (router.redact.mask_phone).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

from router.redact import mask_phone

_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|api_token|access_token|key|secret|signature)=)[^&#\s]*")
_CALLER_PATH = re.compile(r"(/api/callers/)([^/?#\s]+)")


def scrub(path: str) -> str:
    """Return a request path fit for a log line."""
    path = _SECRET_QUERY.sub(r"\1[REDACTED]", path)
    return _CALLER_PATH.sub(lambda m: m.group(1) + mask_phone(unquote(m.group(2))), path)


class ScrubAccessLog(logging.Filter):
    """A filter for the ``uvicorn.access`` logger (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the path argument in place; never drop a record."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], scrub(args[2]), *args[3:])
        return True


def install() -> None:
    """Attach the filter to uvicorn's access logger once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, ScrubAccessLog) for f in access.filters):
        access.addFilter(ScrubAccessLog())

