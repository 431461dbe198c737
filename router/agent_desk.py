"""Agents and the queues they serve: who an agent is, what waits, and "take next".

Beside the live store (router.store.CallStore holds one as ``desk``, sharing its Redis client and
its writes): an agent's skills are the queues they serve; "take next" hands the best waiting call
across them, claiming it on the queue side first (one script in the queues' slot, so only one agent
can) and then writing the pickup on the call side through the store (see router/store.py's
docstring for why every interleaving ends right). A call still keying its identification is
passed over while it may.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from router import keys
from router.slots import Op

# Claim a call for an agent, queue side: it must still be in one of the agent's queues (KEYS[2..])
# and not claimed; it leaves them and its claim marker (KEYS[1]) is set. Returns 1, or 0 (taken).
TAKE_CALL_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local found = false
for i = 2, #KEYS do
  if redis.call('ZREM', KEYS[i], ARGV[1]) == 1 then found = true end
end
if not found then return 0 end
redis.call('SET', KEYS[1], 'with_agent', 'EX', ARGV[2])
return 1
"""


class AgentDesk:
    """Agents, the queues' state and "take next" (see the module docstring)."""

    def __init__(self, client: Any, *, queues: Sequence[str], cluster: bool, claim_ttl_s: int,
                 identification_max_s: float, apply: Callable[[list[Op]], Awaitable[Any]],
                 write: Callable[[list[Op]], Awaitable[bool]],
                 pickup: Callable[[str, str, dict[str, Any], float], Op]) -> None:
        """Serve ``queues`` through ``client``; ``apply``/``write``: the store's writes; ``pickup``: its pickup op.

        ``claim_ttl_s``: how long a claimed call's marker lives (its keys' longest life);
        ``identification_max_s``: the longest a caller can take over the identification steps.
        """
        self.redis: Any = client
        self.queues = tuple(queues)
        self.cluster = cluster
        self.claim_ttl_s = claim_ttl_s
        self.identification_max_s = identification_max_s
        self._apply = apply
        self._write = write
        self._pickup = pickup

    async def queue_head(self, queues: Sequence[str]) -> str | None:
        """Return the call "take next" would hand out across ``queues`` (lowest score first), or None."""
        best: tuple[float, str] | None = None
        now = time.time()
        for q in queues:
            head = await self._first_ready(self.redis, keys.queue(q), now)
            if head and (best is None or head[0] < best[0]):
                best = head
        return best[1] if best else None

    async def queue_stats(self, now: float) -> dict[str, dict[str, Any]]:
        """Return per-queue depth, oldest wait (s) and waiting calls in service order."""
        stats: dict[str, dict[str, Any]] = {}
        for q in self.queues:
            sids = await self.redis.zrange(keys.queue(q), 0, -1)
            arrivals = []
            if sids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for sid in sids:
                        pipe.hmget(keys.call(sid), "enqueued_at", "priority")
                    rows = await pipe.execute()
                arrivals = [(sid, float(a or now), int(p or 0)) for sid, (a, p) in zip(sids, rows, strict=True)]
            stats[q] = {
                "depth": len(sids),
                "oldest_wait_s": round(max((now - a for _, a, _ in arrivals), default=0.0), 1),
                "calls": [{"call_sid": s, "priority": p, "wait_s": round(now - a, 1)} for s, a, p in arrivals],
            }
        return stats

    async def move_legacy_queues(self) -> int:
        """Move the calls waiting in queues named the old way (before the queues shared a slot); return how many queues.

        Only on one Redis (a cluster deployment never had them); a call in both keeps its earlier score.
        """
        if self.cluster:
            return 0
        moved = 0
        for q in self.queues:
            old = keys.legacy_queue(q)
            if await self.redis.exists(old):
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zunionstore(keys.queue(q), [keys.queue(q), old], aggregate="MIN")
                    pipe.delete(old)
                    await pipe.execute()
                moved += 1
        return moved

    async def register_agent(self, *, agent_id: str, name: str, skills: Sequence[str]) -> None:
        """Create or update an agent and the queues they serve."""
        unknown = set(skills) - set(self.queues)
        if unknown:
            raise ValueError(f"unknown queues in skills: {sorted(unknown)}")
        await self._apply([("sadd", [keys.agents(), agent_id], {}),
                           ("hset", [keys.agent(agent_id)], {"mapping": {"name": name, "skills": ",".join(skills)}})])

    async def get_agent(self, agent_id: str) -> dict[str, str] | None:
        """Return an agent's hash, or None."""
        data = await self.redis.hgetall(keys.agent(agent_id))
        return data or None

    async def _first_ready(self, redis: Any, queue_key: str, now: float, scan: int = 50) -> tuple[float, str] | None:
        """Return (score, CallSid) of the best call in a queue that is not keying its identification.

        A call entered the identification phase less than ``identification_max_s`` ago is not
        waiting for an agent yet. Past that, or when its phase change was never stored, it is
        taken like any other call: one whose identification Twilio never reports back (a raw
        stream, an API-driven desk) is delayed, never stranded. ``redis``: the client, or a
        pipeline whose reads run at once.
        """
        ranked = await redis.zrange(queue_key, 0, scan - 1, withscores=True)
        if not ranked:
            return None
        if self.identification_max_s > 0:
            for sid, score in ranked:
                phase, phase_at = await redis.hmget(keys.call(sid), "phase", "phase_at")
                if phase != "identification" or not phase_at or now - float(phase_at) >= self.identification_max_s:
                    return float(score), str(sid)
            return None
        sid, score = ranked[0]
        return float(score), str(sid)

    async def take_next(self, *, agent_id: str, attempts: int = 20) -> str | None:
        """Hand the best waiting call across the agent's queues to them; return its SID (None: none waits).

        A call still keying its identification is passed over while it may (``_first_ready``).
        The call is claimed on the queue side first (one script in the queues' slot: only one agent
        can), then its pickup is written on the call side; a call another agent claimed between
        the look and the claim is looked for again, up to ``attempts`` times.
        """
        agent = await self.get_agent(agent_id)
        if agent is None:
            raise KeyError(agent_id)
        queues = [q for q in agent.get("skills", "").split(",") if q]
        if not queues:
            return None
        for _ in range(attempts):
            sid = await self.queue_head(queues)
            if sid is None:
                return None
            claimed = await self.redis.eval(TAKE_CALL_LUA, 1 + len(queues), keys.settled(sid),
                                            *(keys.queue(q) for q in queues), sid,
                                            self.claim_ttl_s)
            if int(claimed):
                break
        else:
            return None
        started = await self.redis.hget(keys.call(sid), "started_at")
        now = time.time()
        # t: seconds since the call started, like the other timeline entries
        t = round(now - float(started), 3) if started else 0.0
        await self._write([self._pickup(sid, agent_id, {"type": "pickup", "agent": agent_id, "t": t}, now),
                          ("hset", [keys.agent(agent_id)], {"mapping": {"current_call": sid}})])
        return sid
