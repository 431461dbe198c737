"""Redis clients for every process: one URL, or the primary that Redis Sentinel names.

With ``REDIS_SENTINELS`` (``host:port,host:port,...``) each client asks the sentinels for the
primary of ``EMOROUTE_REDIS_SENTINEL_MASTER`` on every new connection, so after a fail-over the
processes follow the promoted replica. A connection still talking to the demoted primary gets
``READONLY``; redis-py's sentinel connection turns that into a connection error (and forgets the
old address), which the call store treats as an outage like any other: writes wait in the outbox
and are replayed to the new primary (router/store.py).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from emoroute.settings import Settings, sentinel_addresses


def async_client(settings: Settings, url: str | None, *, decode: bool, timeout_s: float) -> aioredis.Redis:
    """Return an asyncio client of ``url``, or of the sentinels' primary when sentinels are set."""
    options: dict[str, Any] = {"decode_responses": decode, "socket_connect_timeout": settings.redis_timeout_s,
                               "socket_timeout": timeout_s}
    if settings.redis_sentinels:
        sentinels = AsyncSentinel(sentinel_addresses(settings.redis_sentinels),
                                  sentinel_kwargs={"socket_timeout": settings.redis_timeout_s,
                                                   "socket_connect_timeout": settings.redis_timeout_s},
                                  password=settings.redis_password or None)
        return sentinels.master_for(settings.redis_sentinel_master, **options)
    assert url is not None
    return aioredis.Redis.from_url(url, **options)


def sync_client(settings: Settings, *, timeout_s: float = 5.0) -> redis.Redis:
    """Return a blocking client (bytes replies) of REDIS_URL or of the sentinels' primary (the worker's)."""
    options: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": timeout_s}
    if settings.redis_sentinels:
        sentinels = Sentinel(sentinel_addresses(settings.redis_sentinels),
                             sentinel_kwargs={"socket_timeout": 2.0, "socket_connect_timeout": 2.0},
                             password=settings.redis_password or None)
        return sentinels.master_for(settings.redis_sentinel_master, **options)
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url, **options)


async def close_client(client: aioredis.Redis) -> None:
    """Close a client from :func:`async_client`, and its connections to the sentinels if it has them."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    await client.aclose()
    for sentinel in getattr(manager, "sentinels", []):
        await sentinel.aclose()
