"""The transcription queue takes urgent work first, in order within a priority."""

import threading

import pytest

from audio_models.asr_queue import NORMAL, SPARE, URGENT, PriorityPool


def test_urgent_work_overtakes_what_waits_and_order_holds_within_a_priority():
    pool = PriorityPool(workers=1)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    busy = pool.submit(NORMAL, lambda: (started.set(), release.wait(5), ran.append("busy")))
    assert started.wait(5)
    jobs = [pool.submit(priority, ran.append, name) for priority, name in
            [(NORMAL, "routed-1"), (SPARE, "partial"), (URGENT, "waiting-1"), (NORMAL, "routed-2"),
             (URGENT, "waiting-2")]]
    assert pool.waiting == 5
    release.set()
    busy.result(5)
    for job in jobs:
        job.result(5)
    assert ran == ["busy", "waiting-1", "waiting-2", "routed-1", "routed-2", "partial"]
    pool.shutdown()


def test_a_failure_reaches_the_caller_and_the_worker_goes_on():
    pool = PriorityPool(workers=1)

    def fail() -> None:
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"):
        pool.submit(URGENT, fail).result(5)
    assert pool.submit(URGENT, lambda: 42).result(5) == 42
    pool.shutdown()


def test_cancelled_and_unstarted_work_never_runs_and_a_shut_pool_refuses_more():
    pool = PriorityPool(workers=1)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    busy = pool.submit(URGENT, lambda: (started.set(), release.wait(5))[1])
    assert started.wait(5)
    cancelled = pool.submit(URGENT, ran.append, "cancelled")
    assert cancelled.cancel()
    pending = pool.submit(NORMAL, ran.append, "pending")
    pool.shutdown()
    release.set()
    assert busy.result(5) is True
    assert pending.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(URGENT, ran.append, "late")
    for thread in pool._threads:
        thread.join(5)
    assert ran == []


def test_a_full_queue_drops_partials_first_then_routed_callers_never_a_deciding_utterance():
    from audio_models.pipeline import WorkDropped

    pool = PriorityPool(workers=1, max_waiting=3)
    started, release = threading.Event(), threading.Event()
    pool.submit(NORMAL, lambda: (started.set(), release.wait(5)))
    assert started.wait(5)
    partial = pool.submit(SPARE, str, "partial")
    routed = pool.submit(NORMAL, str, "routed")
    deciding = [pool.submit(URGENT, str, f"deciding-{i}") for i in range(3)]
    with pytest.raises(WorkDropped):
        partial.result(1)
    with pytest.raises(WorkDropped):
        routed.result(1)
    late_partial = pool.submit(SPARE, str, "late partial")  # the queue holds only deciding work now
    with pytest.raises(WorkDropped):
        late_partial.result(1)
    release.set()
    assert [job.result(5) for job in deciding] == ["deciding-0", "deciding-1", "deciding-2"]
    assert pool.dropped == 3
    pool.shutdown()
