"""Writes that survive a Redis outage: one transaction now, or kept in order and replayed later.

:class:`Writes` applies each multi-key write as one MULTI/EXEC transaction (on a Redis Cluster, one
per hash slot: router.slots). When Redis cannot be reached, or refuses a write, the transaction
goes to an :class:`Outbox` (in memory and a JSONL spool file) and is replayed, in order, once Redis
answers again; a transaction that keeps failing on its data is set aside in a dead-letter file so it
cannot block the rest, and one for a call erased meanwhile is dropped. The call store
(router.store) writes through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router import keys
from router.slots import Op, PartialWrite, apply_ops

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# Errors that refuse a whole MULTI/EXEC before anything runs (EXECABORT): safe to replay as they are.
TRANSIENT_REPLIES = ("READONLY", "OOM", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS", "CLUSTERDOWN",
                     "TRYAGAIN", "EXECABORT", "MISCONF")
MAX_DATA_ERROR_ATTEMPTS = 3

def is_transient(exc: BaseException) -> bool:
    """Return whether a Redis error means "try again later" rather than "this write is wrong"."""
    if isinstance(exc, PartialWrite):
        return is_transient(exc.cause)
    if isinstance(exc, REDIS_DOWN):
        return True
    text = str(exc).upper()
    return any(text.startswith(code) or f" {code} " in f" {text} " for code in TRANSIENT_REPLIES)


def calls_of(ops: list[Op]) -> set[str]:
    """Return the SIDs of the calls whose keys a transaction writes."""
    return {sid for _, args, _ in ops if args and (sid := keys.call_of_key(args[0]))}



class Outbox:
    """Transactions that could not reach Redis, oldest first, mirrored to a spool file.

    The spool is appended by one I/O thread (never on the event loop), so lines keep their
    order; it is compacted to exactly what is pending after a replay and whenever dropped
    transactions make it more than twice as long as needed, and a restart reloads at most
    ``max_items`` of its newest lines.
    """

    def __init__(self, spool: Path | None, *, max_items: int = 100_000) -> None:
        """Keep at most ``max_items`` transactions; the spool file survives a restart."""
        self.spool = spool
        self.max_items = max_items
        self.pending: deque[list[Op]] = deque()
        self.attempts = 0  # failed replays of the oldest transaction (a data error, not an outage)
        self.dropped = 0
        self.dead_lettered = 0
        self.spool_lines = 0
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-spool")
        if spool and spool.exists():
            lines = [line for line in spool.read_text().splitlines() if line.strip()]
            if len(lines) > max_items:
                log.error("outbox: spool %s holds %d transactions; keeping the newest %d", spool, len(lines),
                          max_items)
                self.dropped += len(lines) - max_items
            for line in lines[-max_items:]:
                try:
                    self.pending.append([tuple(op) for op in json.loads(line)])  # type: ignore[misc]
                except (json.JSONDecodeError, TypeError):
                    log.error("outbox: unreadable spool line skipped: %.120s", line)
            self.spool_lines = len(lines)
            if self.pending:
                log.warning("outbox: %d transactions from %s await Redis", len(self.pending), spool)
            if len(lines) != len(self.pending):
                self.rewrite_spool()

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, ops: list[Op]) -> None:
        """Queue one transaction (and have the spool thread append it)."""
        if len(self.pending) >= self.max_items:
            self.pending.popleft()
            self.attempts = 0
            self.dropped += 1
            log.error("outbox full (%d): oldest transaction dropped", self.max_items)
        self.pending.append(ops)
        if self.spool:
            self.spool_lines += 1
            self._io.submit(self._append, json.dumps(ops))
            if self.spool_lines > 2 * max(len(self.pending), 1000):
                self.rewrite_spool()

    def _append(self, line: str) -> None:
        assert self.spool is not None
        try:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("a") as fh:
                fh.write(line + "\n")
        except OSError:
            log.exception("outbox: cannot append to the spool %s (kept in memory)", self.spool)

    def rewrite_spool(self) -> None:
        """Have the spool thread make the spool file hold exactly what is still pending."""
        if not self.spool:
            return
        snapshot = [json.dumps(ops) for ops in self.pending]
        self.spool_lines = len(snapshot)
        self._io.submit(self._write_all, snapshot)

    def _write_all(self, lines: list[str]) -> None:
        assert self.spool is not None
        try:
            if not lines:
                self.spool.unlink(missing_ok=True)
                return
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.spool.with_suffix(".tmp")
            tmp.write_text("".join(line + "\n" for line in lines))
            tmp.replace(self.spool)
        except OSError:
            log.exception("outbox: cannot rewrite the spool %s (kept in memory)", self.spool)

    def dead_letter(self, ops: list[Op], error: str) -> None:
        """Set aside a transaction Redis keeps refusing for a data error (beside the spool, for an operator)."""
        self.dead_lettered += 1
        if self.spool:
            line = json.dumps({"error": error, "ops": ops})
            target = self.spool.with_name(self.spool.stem + "-dead.jsonl")
            self._io.submit(self._append_to, target, line)

    @staticmethod
    def _append_to(target: Path, line: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a") as fh:
                fh.write(line + "\n")
        except OSError:
            log.exception("outbox: cannot write the dead-letter file %s", target)

    def forget(self, needles: Sequence[str]) -> int:
        """Drop every pending or set-aside transaction naming one of ``needles``; return how many pending went.

        ``needles``: an erased call's SID, an erased caller's number. The files follow in order.
        """
        needles = [n for n in needles if n]
        if not needles:
            return 0

        def names_one(ops: object) -> bool:
            text = json.dumps(ops)
            return any(n in text for n in needles)

        kept = deque(ops for ops in self.pending if not names_one(ops))
        dropped = len(self.pending) - len(kept)
        if dropped:
            self.pending = kept
            self.attempts = 0
            self.rewrite_spool()
        if self.spool:
            self._io.submit(self._forget_dead, self.spool.with_name(self.spool.stem + "-dead.jsonl"), needles)
        return dropped

    @staticmethod
    def _forget_dead(target: Path, needles: list[str]) -> None:
        try:
            if not target.exists():
                return
            lines = target.read_text().splitlines(keepends=True)
            kept = [line for line in lines if not any(n in line for n in needles)]
            if len(kept) != len(lines):
                tmp = target.with_suffix(".tmp")
                tmp.write_text("".join(kept))
                tmp.replace(target)
        except OSError:
            log.exception("outbox: cannot remove erased writes from %s", target)

    def sync(self) -> None:
        """Wait until the spool thread has written everything submitted so far."""
        self._io.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the spool writes and stop the spool thread."""
        self._io.shutdown(wait=True)


class Writes:
    """One transaction now, or queued behind the outbox and replayed in order (see the module docstring)."""

    def __init__(self, client: Any, outbox: Outbox, *, cluster: bool,
                 on_replayed: Callable[[set[str]], Awaitable[None]]) -> None:
        """Write through ``client``; ``on_replayed`` is told which calls a replay wrote to."""
        self.redis = client
        self.outbox = outbox
        self.cluster = cluster
        self.on_replayed = on_replayed
        self.redis_up = True
        self._flush_lock = asyncio.Lock()

    async def forget(self, needles: Sequence[str]) -> int:
        """Drop every queued transaction that names one of ``needles`` (erasure), never while a replay runs."""
        async with self._flush_lock:
            return self.outbox.forget(needles)

    async def apply(self, ops: list[Op]) -> list[Any]:
        """Apply one transaction now (no outbox); its replies."""
        return await apply_ops(self.redis, ops, cluster=self.cluster)

    async def write(self, ops: list[Op]) -> bool:
        """Apply one transaction now, or queue it; return True if it reached Redis.

        While earlier transactions wait in the outbox, this one queues behind them without
        asking Redis (the flusher replays them in order): a stalled Redis costs one timeout,
        not one per write.
        """
        return (await self.write_result(ops))[0]

    async def write_result(self, ops: list[Op]) -> tuple[bool, list[Any] | None]:
        """Like :meth:`write`, also returning the transaction's replies when it reached Redis."""
        if not self.outbox.pending:
            try:
                replies = await self.apply(ops)
                self.redis_up = True
                return True, replies
            except RedisError as exc:
                if is_transient(exc):
                    log.warning("Redis unavailable (%s): write kept in the outbox", exc)
                    self.redis_up = False
                else:
                    log.error("Redis refused a write (%s): kept in the outbox for a retry", exc)
                if isinstance(exc, PartialWrite):
                    ops = exc.remaining  # on a cluster, the slots already written are not written twice
        self.outbox.add(ops)
        return False, None

    async def flush(self) -> int:
        """Replay queued transactions in order; return how many reached Redis.

        An outage (connection, timeout, READONLY, OOM, LOADING...) stops the replay until the
        next flush. A data error (WRONGTYPE...) is retried on the next flushes and, after
        ``MAX_DATA_ERROR_ATTEMPTS``, set aside in the dead-letter file so it cannot block the rest.
        """
        done = 0
        touched: set[str] = set()
        async with self._flush_lock:
            while self.outbox.pending:
                ops = self.outbox.pending[0]
                try:
                    if await self._erased(ops):
                        log.info("outbox: a replayed transaction for an erased call dropped")
                    else:
                        await self.apply(ops)
                        touched |= calls_of(ops)
                except RedisError as exc:
                    if isinstance(exc, PartialWrite):  # replay only what was not applied
                        ops = self.outbox.pending[0] = exc.remaining
                        self.outbox.rewrite_spool()
                    if is_transient(exc):
                        self.redis_up = False
                        break
                    self.outbox.attempts += 1
                    log.error("outbox: Redis refused a replayed transaction (%s), attempt %d of %d", exc,
                              self.outbox.attempts, MAX_DATA_ERROR_ATTEMPTS)
                    if self.outbox.attempts < MAX_DATA_ERROR_ATTEMPTS:
                        break
                    self.outbox.dead_letter(ops, str(exc))
                self.outbox.pending.popleft()
                self.outbox.attempts = 0
                done += 1
            if done:
                self.redis_up = True
                self.outbox.rewrite_spool()
                log.info("outbox: %d transactions written to Redis, %d left", done, len(self.outbox))
            if touched:
                # a replay may land after another process counted those calls' hours (the store drops those roll-ups)
                try:
                    await self.on_replayed(touched)
                except RedisError as exc:
                    log.warning("outbox: roll-ups of replayed calls' hours not dropped (%s)", exc)
        return done

    async def _erased(self, ops: list[Op]) -> bool:
        """Return whether a queued transaction writes to a call that was erased meanwhile."""
        # one key at a time: each call's keys share a Redis Cluster slot, calls do not
        for sid in sorted(calls_of(ops)):
            if await self.redis.exists(keys.erased(sid)):
                return True
        return False
