"""Redis clients for every process: one URL, or the primary that Redis Sentinel names.

With ``REDIS_SENTINELS`` (``host:port,host:port,...``) each client asks the sentinels for the
primary of ``EMOROUTE_REDIS_SENTINEL_MASTER`` on every new connection, so after a fail-over the
processes follow the promoted replica. A connection still talking to the demoted primary gets
``READONLY``; redis-py's sentinel connection turns that into a connection error (and forgets the
old address), which the call store treats as an outage like any other: writes wait in the outbox
and are replayed to the new primary (router/store.py).

With ``REDIS_CLUSTER_NODES`` the clients are Redis Cluster clients: they learn every node from the
ones named, send each command to the primary of its key's slot and follow the cluster's
fail-overs. Every multi-key write EmoRoute makes stays in one slot (router/keys.py); the call
store splits a transaction over a call's keys and shared keys into one transaction per slot.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import MasterNotFoundError
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

from emoroute.settings import Settings, sentinel_addresses
from router.slots import is_cluster

__all__ = ["SharedSentinels", "async_client", "close_client", "cluster_nodes", "is_cluster", "sync_client"]


# One quick retry (a fail-over's stale connection reconnects to the new primary), not redis-py's
# default of ten with up to a second of backoff each: an unreachable Redis must cost about two
# timeouts, as the outbox, the workers and the job queue retry on their own terms.
RETRIES = 1


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.1, base=0.02)


class SharedSentinels(AsyncSentinel):
    """redis-py's asyncio Sentinel, with a discovery that many tasks may run at once.

    redis-py moves the sentinel that answered to the front of its list by swapping two indices
    after an ``await``; when several tasks discover at once (the archiver, the event hub, the
    lease and the control channel all do after a fail-over) a swap made meanwhile by another
    task makes it write one sentinel twice and drop another. The dropped sentinel is never asked
    again, nor closed at stop (its connections outlive the event loop). Here the answering
    sentinel is moved to the front in one step, so the list keeps every sentinel exactly once.
    """

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        """Return the address of ``service_name``'s primary as the first sentinel that knows it says."""
        errors = []
        for sentinel in list(self.sentinels):
            try:
                masters = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                errors.append(f"{sentinel} - {exc!r}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                if sentinel in self.sentinels:  # no await between the two: nothing else runs here
                    self.sentinels.remove(sentinel)
                    self.sentinels.insert(0, sentinel)
                forced = getattr(self, "_force_master_ip", None)
                return (forced if forced is not None else state["ip"]), state["port"]
        detail = f" : {', '.join(errors)}" if errors else ""
        raise MasterNotFoundError(f"No master found for {service_name!r}{detail}")


def cluster_nodes(settings: Settings) -> list[tuple[str, int]]:
    """Return the Redis Cluster nodes named in REDIS_CLUSTER_NODES (empty: not a cluster)."""
    return sentinel_addresses(settings.redis_cluster_nodes, setting="REDIS_CLUSTER_NODES")


def async_client(settings: Settings, url: str | None, *, decode: bool, timeout_s: float) -> Any:
    """Return an asyncio client of ``url``, of the sentinels' primary, or of the Redis Cluster."""
    options: dict[str, Any] = {"decode_responses": decode, "socket_connect_timeout": settings.redis_timeout_s,
                               "socket_timeout": timeout_s, "retry": AsyncRetry(_backoff(), RETRIES)}
    if nodes := cluster_nodes(settings):
        return AsyncRedisCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in nodes],
                                 password=settings.redis_password or None, **options)
    if settings.redis_sentinels:
        sentinels = SharedSentinels(sentinel_addresses(settings.redis_sentinels),
                                  sentinel_kwargs={"socket_timeout": settings.redis_timeout_s,
                                                   "socket_connect_timeout": settings.redis_timeout_s,
                                                   "retry": AsyncRetry(_backoff(), RETRIES)},
                                  password=settings.redis_password or None)
        return sentinels.master_for(settings.redis_sentinel_master, **options)
    assert url is not None
    return aioredis.Redis.from_url(url, **options)


def sync_client(settings: Settings, *, timeout_s: float = 5.0) -> Any:
    """Return a blocking client (bytes replies) of REDIS_URL, the sentinels' primary or the cluster (the worker's)."""
    options: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": timeout_s,
                               "retry": Retry(_backoff(), RETRIES)}
    if nodes := cluster_nodes(settings):
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes],
                            password=settings.redis_password or None, **options)
    if settings.redis_sentinels:
        sentinels = Sentinel(sentinel_addresses(settings.redis_sentinels),
                             sentinel_kwargs={"socket_timeout": 2.0, "socket_connect_timeout": 2.0,
                                              "retry": Retry(_backoff(), RETRIES)},
                             password=settings.redis_password or None)
        return sentinels.master_for(settings.redis_sentinel_master, **options)
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url, **options)


async def close_client(client: Any) -> None:
    """Close a client from :func:`async_client`, and its connections to the sentinels if it has them."""
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    await client.aclose()
    for sentinel in list(getattr(manager, "sentinels", [])):
        await sentinel.aclose()
