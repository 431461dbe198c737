"""EmoRoute on a real three-primary Redis Cluster (issue #32): every multi-key write stays in one slot.

The store's own tests run its writes against the cluster: placing, taking (two agents at once),
re-routing after a pickup, ending, reading many calls and erasing them, with the calls' keys
chosen to lie on every primary, and a transaction cut between two slots by a frozen node
finished from the outbox exactly once. The deployment test runs two `emoroute serve` web
processes and an `emoroute worker` against the cluster and routes callers as Twilio sends them.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from audio_models.audio_io import load_audio
from benchmarks.transcription_benchmark import INTENTS
from router import keys
from router.policy import Decision
from router.store import CallStore, Outbox
from tests.helpers import ACCOUNT, new_call_sid, signed_post, wait_for
from tests.redis_cluster import RedisClusterNodes
from tests.test_scale_out import PUBLIC, Cluster, call

pytestmark = pytest.mark.timeout(300)
SUPERVISOR = {"Authorization": "Bearer dev-supervisor-token"}


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    nodes = RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster"))
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


def sids_on_every_node(nodes: RedisClusterNodes, per_node: int = 1) -> list[str]:
    """Return call SIDs whose keys lie ``per_node`` on each primary, none with the queues."""
    avoid = nodes.port_of(keys.queue("general"))
    found: dict[int, list[str]] = {p: [] for p in nodes.ports}
    while any(len(v) < per_node for p, v in found.items() if p != avoid) or len(found[avoid]) < per_node:
        sid = new_call_sid()
        port = nodes.port_of(keys.call(sid))
        if len(found[port]) < per_node:
            found[port].append(sid)
    return [sid for group in found.values() for sid in group]


@pytest.fixture
async def store(redis_cluster: RedisClusterNodes, tmp_path: Path) -> AsyncIterator[CallStore]:
    client = AsyncRedisCluster(startup_nodes=[AsyncClusterNode("127.0.0.1", p) for p in redis_cluster.ports],
                               decode_responses=True, socket_timeout=1.0, socket_connect_timeout=1.0)
    s = CallStore(client, outbox=Outbox(tmp_path / "outbox.jsonl"), retention_s=3600, seconds_per_point=30,
                  queues=["retention", "sales", "general"])
    assert s.cluster
    yield s
    s.outbox.close()
    await client.aclose()
    redis_cluster.flush()  # the deployment test starts from an empty cluster


def decision(queue: str, priority: int = 5) -> Decision:
    return Decision(queue=queue, priority=priority, reason="test", rule="test")


async def test_calls_are_queued_taken_rerouted_and_erased_with_every_write_in_one_slot(store, redis_cluster):
    sids = sids_on_every_node(redis_cluster, per_node=2)
    assert {redis_cluster.port_of(keys.call(s)) for s in sids} == set(redis_cluster.ports)
    now = time.time()
    for i, sid in enumerate(sids):
        assert await store.call_started(call_sid=sid, stream_sid="MZ" + sid[2:], caller=f"+1555000{i:04d}",
                                        started_at=now - 60 + i)
        assert await store.record_decision(call_sid=sid, decision=decision("retention"), t=3.0, arrival=now + i,
                                           latency_ms=12.0) is True
    await store.desk.register_agent(agent_id="ana", name="Ana", skills=["retention"])
    await store.desk.register_agent(agent_id="ben", name="Ben", skills=["retention", "general"])
    # two agents taking at once: every call handed out once, oldest first, then none
    taken = await asyncio.gather(*(store.desk.take_next(agent_id=a) for a in ["ana", "ben"] * 3))
    assert sorted(taken) == sorted(sids), taken
    assert await store.desk.take_next(agent_id="ana") is None
    for sid in sids:
        call = await store.get_call(sid)
        assert call and call["status"] == "with_agent" and call["agent"] in ("ana", "ben"), call
    # a re-route that arrives after the pickup is refused on both sides: the call stays with its agent
    late = sids[0]
    assert await store.record_decision(call_sid=late, decision=decision("general", 9), t=9.0, arrival=now,
                                       latency_ms=None, kind="reroute") is False
    assert (await store.get_call(late))["status"] == "with_agent"
    assert (await store.desk.queue_stats(time.time()))["general"]["depth"] == 0
    # a first decision replayed for an ended call (its call side raced the end) never re-queues it
    await store.call_ended(call_sid=late, t=30.0, reason="hangup")
    assert await store.record_decision(call_sid=late, decision=decision("sales"), t=3.0, arrival=now,
                                       latency_ms=None) is False
    assert all(v["depth"] == 0 for v in (await store.desk.queue_stats(time.time())).values())
    # reading many calls' fields across the nodes (the analytics path)
    rows = [r async for batch in store.stored.summary_batches(sids, ("call_sid", "queue", "status")) for r in batch]
    assert {r["call_sid"] for r in rows} == set(sids) and {r["queue"] for r in rows} == {"retention"}
    kinds = [e["type"] for e in await store.get_timeline(sids[1])]
    assert kinds == ["started", "decision", "pickup"], kinds
    # erasure reaches every node
    assert await store.erasure.erase_calls(sids) == len(sids)
    for port in redis_cluster.ports:
        left = [k for k in redis_cluster.keys_on(port) if any(s in k for s in sids) and not k.endswith(":erased")]
        assert not left, (port, left)


async def test_a_write_cut_between_two_slots_is_finished_from_the_outbox_once(store, redis_cluster):
    queues_node = redis_cluster.port_of(keys.queue("retention"))
    sid = next(s for s in sids_on_every_node(redis_cluster) if redis_cluster.port_of(keys.call(s)) != queues_node)
    now = time.time()
    assert await store.call_started(call_sid=sid, stream_sid="MZ1", caller="+15550009999", started_at=now)
    redis_cluster.pause(queues_node)  # the call's slot answers, the queues' slot does not
    try:
        assert await store.record_decision(call_sid=sid, decision=decision("retention"), t=2.0, arrival=now,
                                           latency_ms=10.0) is None
    finally:
        redis_cluster.resume(queues_node)
    # the call side was written; only the queue side waits in the outbox
    assert (await store.get_call(sid))["queue"] == "retention"
    assert [op[1][0] for ops in store.outbox.pending for op in ops] == [store_place_script()]
    wait_for_outbox = time.monotonic() + 30
    while store.outbox.pending and time.monotonic() < wait_for_outbox:
        await store.flush_outbox()
        await asyncio.sleep(0.2)
    assert not store.outbox.pending
    assert (await store.desk.queue_stats(time.time()))["retention"]["calls"][0]["call_sid"] == sid
    kinds = [e["type"] for e in await store.get_timeline(sid)]
    assert kinds == ["started", "decision"], kinds  # once: nothing written twice


def store_place_script() -> str:
    from router.store import PLACE_CALL_LUA
    return PLACE_CALL_LUA


def skip_identification(d: Cluster, web: str, sid: str) -> bool:
    """Press # at the call's identification step if EmoRoute has played it (False: not yet)."""
    sent = httpx.get(d.url(web) + "/api/dry-run/requests", params={"call_sid": sid}, headers=SUPERVISOR,
                     timeout=10).json()
    steps = [g.get("action", "") for r in sent if "Twiml" in r["form"]
             for g in ET.fromstring(r["form"]["Twiml"]).iter("Gather") if "/twilio/identify" in g.get("action", "")]
    if not steps:
        return False
    path = steps[-1].removeprefix(PUBLIC).replace("&amp;", "&")
    signed_post(d.url(web), PUBLIC, path, {"CallSid": sid, "AccountSid": ACCOUNT, "Digits": "#"}).raise_for_status()
    return True


class ClusterDeployment(Cluster):
    """Web processes and workers started with REDIS_CLUSTER_NODES instead of REDIS_URL."""

    def __init__(self, nodes: RedisClusterNodes, tmp: Path) -> None:
        super().__init__("", tmp)
        self.nodes = nodes

    def env(self, name: str) -> dict[str, str]:
        env = super().env(name)
        del env["REDIS_URL"]
        return {**env, "REDIS_CLUSTER_NODES": self.nodes.spec}

    def client(self):  # type: ignore[no-untyped-def, override]
        return self.nodes.client()


@pytest.fixture(scope="module")
def deployment(redis_cluster: RedisClusterNodes, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ClusterDeployment]:
    d = ClusterDeployment(redis_cluster, tmp_path_factory.mktemp("cluster-deployment"))
    for name in ("web-a", "web-b"):
        d.start_web(name)
    d.start_worker("worker-1")
    try:
        d.wait_ready()
        yield d
    finally:
        d.stop()
        for name in ("web-a", "web-b", "worker-1"):
            log = (d.tmp / f"{name}.log").read_text()
            assert "CROSSSLOT" not in log and "CrossSlot" not in log, (name, log[-3000:])


async def test_callers_are_routed_transcribed_and_served_on_a_redis_cluster(deployment, redis_cluster):
    r = redis_cluster.client()
    cancel = load_audio(INTENTS / "u01.wav")  # "I want to cancel my account."
    sids = sids_on_every_node(redis_cluster)
    api = httpx.AsyncClient(base_url=deployment.url("web-b"), headers=SUPERVISOR, timeout=30)
    assert (await api.put("/api/agents/ana", json={"name": "Ana", "skills": ["retention", "sales", "general"]}
                           )).status_code == 204
    taken: list[str] = []

    webs = dict(zip(sids, ("web-a", "web-b", "web-a"), strict=True))
    keyed: set[str] = set()

    async def agent_takes_each_call() -> None:
        # on web-b, whichever process holds the stream: the pickup reaches it over the cluster's pub/sub
        deadline = time.monotonic() + 120
        while len(taken) < len(sids) and time.monotonic() < deadline:
            for sid in set(sids) - keyed:  # the callers skip the identification step once it is played
                if await asyncio.to_thread(skip_identification, deployment, webs[sid], sid):
                    keyed.add(sid)
            got = (await api.post("/api/agents/ana/next")).json()["call_sid"]
            if got:
                taken.append(got)
            await asyncio.sleep(0.3)

    got = await asyncio.gather(agent_takes_each_call(), *(
        call(deployment, web, cancel, call_sid=sid, hold_max_s=60,
             hold_until=lambda s: r.hget(keys.call(s), "status") == "with_agent")
        for sid, web in webs.items()))
    assert got[1:] == sids and sorted(taken) == sorted(sids), (got, taken)
    owners = {r.hget(keys.call(s), "owner") for s in sids}
    assert owners == {deployment.health("web-a")["process"], deployment.health("web-b")["process"]}
    for sid in sids:
        # routed (on tone alone if the first transcripts miss the 1 s wait while the worker warms up)
        assert r.hget(keys.call(sid), "queue") in ("retention", "general") and r.hget(keys.call(sid), "agent") == "ana"
        # the transcript came through the job streams ({asr} slot) from the worker
        wait_for(lambda s=sid: "cancel" in " ".join(f.get("transcript", "") for _, f in r.xrange(keys.timeline(s))
                                                    ).lower(), timeout=60, what="a transcript from the worker")
        wait_for(lambda s=sid: r.hget(keys.call(s), "status") == "ended", what="the call ended")
        kinds = [f["type"] for _, f in r.xrange(keys.timeline(sid))]
        assert kinds.count("decision") == 1 and kinds.count("pickup") == 1 and kinds.count("ended") == 1, kinds
    # every primary holds some of the calls' keys
    for port in redis_cluster.ports:
        assert any(sid in k for k in redis_cluster.keys_on(port) for sid in sids), port
    # each web process archives into its own DuckDB file (the default; several processes share one
    # history through PostgreSQL): between them they hold every call, once
    def archived() -> int:
        return sum(httpx.get(deployment.url(web) + "/dashboard/api/analytics", headers=SUPERVISOR,
                             timeout=30).json()["calls"] for web in ("web-a", "web-b"))

    wait_for(lambda: archived() >= len(sids), timeout=30, what="every call archived")
    # erasure by the callers' number reaches every node
    erased = (await api.post("/api/erasures", json={"number": "+15550001111"})).json()
    assert set(sids) <= set(erased["erased"]), erased
    for port in redis_cluster.ports:
        assert not [k for k in redis_cluster.keys_on(port) for sid in sids
                    if sid in k and not k.endswith(":erased")], port
    # and every primary rewrites its append-only file without them (tombstones name only the SID)
    aofs = [redis_cluster.tmp / str(port) / "appendonly.aof" for port in redis_cluster.ports]
    wait_for(lambda: all(b"+15550001111" not in f.read_bytes() for f in aofs), timeout=30,
             what="every node's AOF rewritten without the erased number")
    await api.aclose()
    r.close()
