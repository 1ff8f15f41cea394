"""The worker pool (:mod:`normandy_core.executors._pool`) against a race in pebble: a
worker that dies after taking a task, before pebble's pool has read that it took it.

The race is made certain here by slowing pebble's reading of those notices (its
``Acknowledgement`` messages); the workers are real and really die (``os._exit``).
Before the pool closed it, the first test hung for ever and the second broke the pool
("All workers expired"), failing every task. These tests also check that the pebble
installed still has the private structure the pool completes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import wait
from typing import Any

import pytest

from normandy_core.executors._pool import WorkerPool

pebble_process = pytest.importorskip("pebble.pool.process")


def _nothing() -> None:
    pass


def crash() -> None:
    os._exit(3)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.fixture
def slow_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    """pebble reads that a worker took a task 0.5 s late."""
    receive = pebble_process.WorkerManager.receive

    def late(self: Any, timeout: float) -> Any:
        message = receive(self, timeout)
        if isinstance(message, pebble_process.Acknowledgement):
            time.sleep(0.5)
        return message

    monkeypatch.setattr(pebble_process.WorkerManager, "receive", late)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(2, _nothing)
    yield workers
    workers.close(cancel=True, timeout=10)


def test_a_crash_pebble_did_not_match_fails_its_task_instead_of_hanging(
    slow_notices: None, pool: WorkerPool
) -> None:
    running = pool.schedule(nap, (1.5,), None)  # started, so pebble does not break...
    time.sleep(0.8)
    crashed = pool.schedule(crash, (), None)  # ...it loses this one: a hang, before
    done, _ = wait([crashed], timeout=15)
    assert done, "the crashed task never ended"
    error = crashed.exception()
    assert isinstance(error, pool.expired), error
    assert error.exitcode == 3 and error.pid is not None
    assert running.result(timeout=15) == 1.5
    assert pool.schedule(nap, (0.01,), None).result(timeout=15) == 0.01  # the pool works


def test_a_crash_of_the_only_running_task_does_not_break_the_pool(
    slow_notices: None, pool: WorkerPool
) -> None:
    crashed = pool.schedule(crash, (), None)  # the only task: pebble broke its pool
    queued = [pool.schedule(nap, (0.01 * i,), None) for i in range(1, 4)]
    done, _ = wait([crashed, *queued], timeout=30)
    assert len(done) == 4, "tasks never ended"
    assert isinstance(crashed.exception(), pool.expired)
    assert crashed.exception().exitcode == 3
    assert [f.result() for f in queued] == [0.01, 0.02, 0.03]  # not failed with it
    later = pool.schedule(nap, (0.02,), None)
    assert later.result(timeout=15) == 0.02


def test_a_cancelled_task_stops_its_worker(pool: WorkerPool) -> None:
    pool.schedule(nap, (0.01,), None).result(timeout=15)  # the workers are up
    running = pool.schedule(nap, (30,), None)
    time.sleep(0.5)
    assert running.cancel()
    assert pool.schedule(nap, (0.01,), None).result(timeout=15) == 0.01
