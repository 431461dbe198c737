"""Analytics over long periods from hourly roll-ups: each closed hour is counted once, then merged.

A UTC hour is *closed* once none of its calls can change any more: every call that started in
it has ended (``max_call_s``) and a margin has passed (``settle_s`` in all). Its calls' tally
(``dashboards.insights.Tally``) is then stored in Redis (``CallStore.write_rollup``) and
every later request for a period holding that hour reads the stored sums instead of the hour's
calls. The parts of a period that are not closed hours (the partial hours at its ends, the
hours still open) are counted from their calls, as before. Repeat callers need each call's
caller hash and start, not sums: a roll-up keeps those pairs too (``callers``), for the period
and for the days before it that the repeat-caller figure looks back over.

Not stored while the process holds writes for Redis in its outbox; a longer Redis outage, whose
writes another process replays after an hour has closed, is the margin's to cover.

The figures are the same as ``insights_of`` and ``analytics_of`` over the period's calls
(tests/test_analytics.py checks it against real Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from dashboards.insights import INSIGHT_FIELDS, Tally, insights_from, repeat_figures
from dashboards.state import ANALYTICS_FIELDS
from router.store import CallStore

HOUR = 3600
TALLY_FIELDS = tuple(dict.fromkeys((*ANALYTICS_FIELDS, *INSIGHT_FIELDS)))
LISTED = ("points", "disagree")
CALLER_FIELDS = ("caller_hash", "started_at")
CHUNK_HOURS = 24  # closed hours counted per read when their roll-ups are missing


def rollup_version(key_intents: dict[str, str]) -> str:
    """Return the name of what a roll-up counts: the tally's version and the keypad's topics."""
    what = json.dumps([Tally.VERSION, sorted(key_intents.items()), TALLY_FIELDS])
    return hashlib.sha1(what.encode()).hexdigest()[:12]


def closed_hours(lo: float, hi: float, *, settle_s: float, now: float) -> list[int]:
    """Return the hours wholly inside [lo, hi] whose calls can no longer change, oldest first."""
    return [h for h in range(math.ceil(lo / HOUR), math.floor(hi / HOUR))
            if (h + 1) * HOUR + settle_s <= now]


async def period_figures(store: CallStore, lo: float, hi: float, *, queues: list[str], key_intents: dict[str, str],
                         repeat_days: float, settle_s: float, now: float | None = None) -> dict[str, Any]:
    """Return the analytics endpoint's figures for calls that started in [lo, hi]."""
    now = time.time() if now is None else now
    version = rollup_version(key_intents)
    tally = Tally(key_intents)
    hours = closed_hours(lo, hi, settle_s=settle_s, now=now)
    if not hours:
        tally.merge(await _tally_between(store, lo, hi, key_intents))
    else:
        first, after = hours[0] * HOUR, (hours[-1] + 1) * HOUR
        tally.merge(await _tally_between(store, lo, first, key_intents, end_open=True))
        await _merge_hours(store, version, tally, hours, now)
        tally.merge(await _tally_between(store, after, hi, key_intents))
    history = await callers_between(store, lo - repeat_days * 86400, hi, key_intents=key_intents,
                                    settle_s=settle_s, now=now)
    in_period = [r for r in history if float(r["started_at"]) >= lo]
    repeats = await asyncio.to_thread(repeat_figures, in_period, history, repeat_days)

    def figures() -> dict[str, Any]:
        return {"start": lo, "end": hi, **tally.analytics(queues), **insights_from(tally, queues, repeats)}

    return await asyncio.to_thread(figures)


async def _tally_between(store: CallStore, lo: float, hi: float, key_intents: dict[str, str], *,
                         end_open: bool = False) -> Tally:
    if hi < lo or (end_open and hi == lo):
        return Tally(key_intents)
    rows = await store.stored.summaries_between(lo, hi, TALLY_FIELDS, end_open=end_open)
    return await asyncio.to_thread(Tally.of, rows, key_intents)


async def _hourly(store: CallStore, version: str, hours: list[int], field: str, read: tuple[str, ...],
                  build: Callable[[list[dict[str, str]]], dict[str, Any]], now: float) -> dict[int, Any]:
    """Return each hour's roll-up fields: ``field`` where stored, else all of them, built now and stored.

    ``build`` turns an hour's calls (``read`` fields) into the roll-up's fields (JSON-ready), among
    them ``field``.
    """
    out = {h: {field: json.loads(v)} for h, v in zip(hours, await store.stored.read_rollups(version, hours, field),
                                                      strict=True) if v}
    missing = [h for h in hours if h not in out]
    for first, last in _runs(missing):
        # a day of calls read at a time: a month never counted before is never all in memory
        for start in range(first, last + 1, CHUNK_HOURS):
            chunk = list(range(start, min(last, start + CHUNK_HOURS - 1) + 1))
            rows = await store.stored.summaries_between(chunk[0] * HOUR, (chunk[-1] + 1) * HOUR, read, end_open=True)

            def count(rows: list[dict[str, str]] = rows, chunk: list[int] = chunk) -> dict[int, dict[str, Any]]:
                by_hour: dict[int, list[dict[str, str]]] = {h: [] for h in chunk}
                for r in rows:
                    h = int(float(r.get("started_at") or 0) // HOUR)
                    if h in by_hour:
                        by_hour[h].append(r)
                return {h: build(hour_rows) for h, hour_rows in by_hour.items()}

            for h, built in (await asyncio.to_thread(count)).items():
                # the hour's first calls expire retention_s after they end: the roll-up goes with them
                await store.stored.write_rollup(version, h, {k: json.dumps(v) for k, v in built.items()},
                                         ttl_s=h * HOUR + store.retention_s - now)
                out[h] = built
    return out


async def _merge_hours(store: CallStore, version: str, tally: Tally, hours: list[int], now: float) -> None:
    """Merge each closed hour's tally into ``tally``, in time order."""
    def build(rows: list[dict[str, str]]) -> dict[str, Any]:
        sums = Tally.of(rows, tally.key_intents).to_dict()
        return {"tally": {k: v for k, v in sums.items() if k not in LISTED}, "listed": {k: sums[k] for k in LISTED},
                **_callers(rows)}

    stored = await _hourly(store, version, hours, "tally", TALLY_FIELDS, build, now)
    for h in hours:
        listed = stored[h].get("listed")
        if listed is None and not tally.lists_full():  # the scatter points: only until they are enough
            raw = (await store.stored.read_rollups(version, [h], "listed"))[0]
            listed = json.loads(raw) if raw else None
        tally.merge({**stored[h]["tally"], **(listed or {})})


async def callers_between(store: CallStore, lo: float, hi: float, *, key_intents: dict[str, str], settle_s: float,
                          now: float | None = None) -> list[dict[str, Any]]:
    """Return (caller hash, start) of the calls that started in [lo, hi], closed hours from their roll-ups."""
    now = time.time() if now is None else now
    version = rollup_version(key_intents)
    async def read(a: float, b: float, end_open: bool = False) -> list[list[Any]]:
        if b < a or (end_open and a == b):
            return []
        return _callers(await store.stored.summaries_between(a, b, CALLER_FIELDS, end_open=end_open))["callers"]

    hours = closed_hours(lo, hi, settle_s=settle_s, now=now)
    if not hours:
        found = await read(lo, hi)
    else:
        stored = await _hourly(store, version, hours, "callers", CALLER_FIELDS, _callers, now)
        found = [*await read(lo, hours[0] * HOUR, end_open=True),
                 *(p for h in hours for p in stored[h]["callers"]), *await read((hours[-1] + 1) * HOUR, hi)]
    return [{"caller_hash": who, "started_at": at} for who, at in found]


def _callers(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Return the roll-up field of (caller hash, start) of the calls that have a caller hash."""
    return {"callers": [[r["caller_hash"], float(r["started_at"])] for r in rows
                        if r.get("caller_hash") and r.get("started_at")]}


def _runs(hours: list[int]) -> list[tuple[int, int]]:
    """Return the runs of consecutive hours in ``hours`` (ascending) as (first, last)."""
    runs: list[tuple[int, int]] = []
    for h in hours:
        if runs and runs[-1][1] == h - 1:
            runs[-1] = (runs[-1][0], h)
        else:
            runs.append((h, h))
    return runs
