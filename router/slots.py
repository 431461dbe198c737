"""Apply one store transaction on one Redis (a MULTI/EXEC) or on a Redis Cluster (one per hash slot).

A store transaction is a list of ops, ``(method, args, kwargs)`` as a redis-py pipeline takes them
(router.store). On one Redis they run as one MULTI/EXEC. A Redis Cluster runs a MULTI/EXEC only
over keys of one slot, so there the ops are grouped by their key's slot, in the order the ops
first name each slot, and each group runs as its own MULTI/EXEC on the slot's primary; a
``publish`` (no key; a cluster pipeline refuses it) is sent on its own after the groups before it.

Every write the store makes is built so that this split is safe: each script touches one slot
(a call's keys share the CallSid's hash tag; the queues and their claim markers share
``{queues}``), and what spans slots is ordered so that any prefix of it is a state the rest of
the code expects (router.store, "Queues on a Redis Cluster"). When a group fails after earlier
ones were applied, :class:`PartialWrite` carries the ops not yet applied, so a replay from the
outbox applies each op once, never twice.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

Op = tuple[str, list[Any], dict[str, Any]]
"""One Redis command: (method name on a redis-py pipeline, args, kwargs), JSON-serialisable."""


class PartialWrite(RedisError):
    """A cluster transaction failed part-way: ``remaining`` ops were not applied (``cause`` says why)."""

    def __init__(self, remaining: list[Op], cause: RedisError) -> None:
        """Keep the ops still to apply and the error that stopped them."""
        super().__init__(str(cause))
        self.remaining = remaining
        self.cause = cause


def is_cluster(client: object) -> bool:
    """Return whether a client (asyncio or blocking) talks to a Redis Cluster."""
    return isinstance(client, (AsyncRedisCluster, RedisCluster))


def op_keys(op: Op) -> list[str]:
    """Return the keys an op names (none for ``publish``)."""
    name, args, _ = op
    if name == "publish":
        return []
    if name in ("eval", "evalsha"):
        return [str(k) for k in args[2 : 2 + int(args[1])]]
    return [str(args[0])]


def op_slot(op: Op) -> int | None:
    """Return the hash slot of an op's keys (None: it names none).

    Raises:
        ValueError: the op's keys lie in different slots (a script that cannot run on a cluster).
    """
    slots = {key_slot(k.encode()) for k in op_keys(op)}
    if len(slots) > 1:
        raise ValueError(f"{op[0]} names keys in {len(slots)} slots: {op_keys(op)}")
    return slots.pop() if slots else None


def slot_groups(ops: list[Op]) -> list[list[int]]:
    """Return the ops' indices in groups that may each run as one cluster transaction, in run order.

    Keyed ops go by slot, in the order their slots are first named; a ``publish`` is a group of its
    own, placed after every group named before it, so an event never precedes the write it reports.
    """
    groups: list[list[int]] = []
    by_slot: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        slot = op_slot(op)
        if slot is None:
            groups.append([i])
            by_slot.clear()  # a later write to a slot seen before starts a new group after the event
            continue
        if slot not in by_slot:
            by_slot[slot] = []
            groups.append(by_slot[slot])
        by_slot[slot].append(i)
    return groups


async def apply_ops(client: Any, ops: list[Op], *, cluster: bool) -> list[Any]:
    """Apply ``ops`` (one MULTI/EXEC, or one per slot on a cluster); return their replies in op order.

    Raises:
        RedisError: as redis-py raised it when nothing was applied; :class:`PartialWrite` when
            some groups were applied on a cluster and a later one failed.
    """
    if not cluster:
        async with client.pipeline(transaction=True) as pipe:
            for name, args, kwargs in ops:
                getattr(pipe, name)(*args, **kwargs)
            return list(await pipe.execute())
    replies: list[Any] = [None] * len(ops)
    done: set[int] = set()
    for group in slot_groups(ops):
        try:
            if ops[group[0]][0] == "publish":
                _, args, kwargs = ops[group[0]]
                replies[group[0]] = await client.publish(*args, **kwargs)
            else:
                async with client.pipeline(transaction=True) as pipe:
                    for i in group:
                        name, args, kwargs = ops[i]
                        getattr(pipe, name)(*args, **kwargs)
                    for i, reply in zip(group, await pipe.execute(), strict=True):
                        replies[i] = reply
        except RedisError as exc:
            if not done:
                raise
            raise PartialWrite([op for i, op in enumerate(ops) if i not in done], exc) from exc
        done.update(group)
    return replies
