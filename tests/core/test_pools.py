"""The units of pools (:mod:`normandy_core.execution._pools`): taken all at once or not at
all, given back as attempts end, handed to the tasks waiting in the order they came."""

from __future__ import annotations

from types import MappingProxyType

from normandy_core.execution._pools import Pools
from normandy_core.plan import Task


def task(name: str, **pools: int) -> Task:
    return Task("f", "s", name, name, MappingProxyType({}), pools=MappingProxyType(pools))


def test_units_are_taken_all_or_none_and_given_back():
    pools = Pools({"db": 2, "gpu": 1})
    a, b, c = task("a", db=1, gpu=1), task("b", db=1, gpu=1), task("c", db=1)
    assert pools.take(a) is None
    assert pools.take(b) == "gpu"  # short of gpu: holds nothing meanwhile
    assert pools.free == {"db": 1, "gpu": 0}
    assert pools.take(c) == "db"  # b waits for db too: c does not pass it
    assert pools.give_back(a) == [b, c]  # in the order they came
    assert pools.free == {"db": 0, "gpu": 0}
    assert pools.waited(b) >= 0 and pools.waited(task("never")) == 0.0


def test_a_big_request_is_not_starved_by_small_ones():
    pools = Pools({"db": 2})
    small = [task(f"s{i}", db=1) for i in range(4)]
    big = task("big", db=2)
    assert pools.take(small[0]) is None
    assert pools.take(big) == "db"
    assert pools.take(small[1]) == "db"  # one unit is free, but big came first
    assert pools.give_back(small[0]) == [big]
    assert pools.give_back(big) == [small[1]]


def test_a_task_asking_for_no_pool_never_waits():
    pools = Pools({})
    free = task("free")
    assert pools.take(free) is None and pools.give_back(free) == []
