"""What a task reads and writes, and what a ``dataflow`` schedule derives from it
(:mod:`normandy_core.dependencies`): the tasks each task waits for — so that what it reads
is what the steps before it left, as under ``steps`` — and the flows that may run side by
side."""

from __future__ import annotations

from types import MappingProxyType

from normandy_core.binding import Outputs, Parameter, Signature
from normandy_core.config import MapSpec
from normandy_core.dependencies import (
    SHARED,
    TaskData,
    flows_after,
    plan_data,
    task_data,
    waits_for,
)
from normandy_core.plan import Flow, Plan, Selection, Step, Task


def task(step: str, name: str, reads=(), writes=(), flow: str = "f", **options) -> Task:
    outputs = Outputs("sequence", tuple(writes)) if writes else None
    return Task(
        flow, step, name, name, MappingProxyType({}), reads=tuple(reads), outputs=outputs, **options
    )


def flow_of(*steps: list[Task], name: str = "f") -> Flow:
    return Flow(name, (), tuple(Step(name, s[0].step, tuple(s)) for s in steps))


def waits(flow: Flow) -> dict[str, set[str]]:
    data = plan_data(Plan((flow,), Selection()), lambda name: None)
    return {
        k.rpartition(".")[2]: {d.rpartition(".")[2] for d in v}
        for k, v in waits_for(flow, data).items()
    }


def test_a_task_waits_for_the_last_earlier_writer_of_what_it_reads_only():
    flow = flow_of(
        [task("s1", "fast", writes=["a"]), task("s1", "slow", writes=["b"])],
        [task("s2", "uses_a", reads=["a"], writes=["c"])],
        [task("s3", "uses_c", reads=["c"]), task("s3", "free")],
    )
    assert waits(flow) == {
        "fast": set(),
        "slow": set(),
        "uses_a": {"fast"},
        "uses_c": {"uses_a"},
        "free": set(),
    }


def test_a_rewrite_waits_for_the_readers_of_the_version_it_replaces_and_its_writer():
    flow = flow_of(
        [task("s1", "first", writes=["x"])],
        [task("s2", "reader", reads=["x"]), task("s2", "rewriter", reads=[], writes=["x"])],
        [task("s3", "late_reader", reads=["x"])],
    )
    found = waits(flow)
    # the reader of step 2 sees step 1's x: the rewrite of step 2 waits for it
    assert found["reader"] == {"first"}
    assert found["rewriter"] == {"first", "reader"}
    assert found["late_reader"] == {"rewriter"}


def test_an_optional_read_with_no_writer_still_orders_a_later_writer():
    flow = flow_of([task("s1", "maybe", reads=["x"])], [task("s2", "writer", writes=["x"])])
    assert waits(flow) == {"maybe": set(), "writer": {"maybe"}}


def test_a_mapped_task_reads_what_it_maps_over_not_the_parameter_given_each_element():
    mapped = task("s2", "each", writes=["results"], map=MapSpec("files", "item"))
    sig = Signature((), (Parameter("item", False), Parameter("config", False)))
    data = task_data(mapped, sig)
    assert data.reads == (("f", "config"), ("f", "files"))
    assert data.writes == (("f", "results"),)
    assert data.variables_read("f") == ("config", "files")


def test_flows_run_side_by_side_unless_they_share_data():
    plan = Plan(
        (
            flow_of([task("s", "a", writes=["x"], flow="f1")], name="f1"),
            flow_of([task("s", "b", writes=["x"], flow="f2")], name="f2"),  # its own x
            flow_of([task("s", "c", flow="f3")], name="f3"),
        ),
        Selection(),
    )
    data = plan_data(plan, lambda name: None)
    assert flows_after(plan, data, side_by_side=False) == {
        "f1": set(),
        "f2": {"f1"},
        "f3": {"f2"},
    }
    assert flows_after(plan, data, side_by_side=True) == {"f1": set(), "f2": set(), "f3": set()}
    # data every flow sees (a dataset, SPEC 16): the flow reading it waits for its writer
    data["f1.s.a"] = TaskData((), ((SHARED, "companies"),))
    data["f3.s.c"] = TaskData(((SHARED, "companies"),), ())
    assert flows_after(plan, data, side_by_side=True) == {"f1": set(), "f2": set(), "f3": {"f1"}}


def test_a_dataset_is_data_every_flow_sees_and_orders_its_readers_after_its_writer():
    """SPEC 16 with SPEC 19: an output named like a dataset is the dataset, shared by the
    flows; its reader in another flow waits for its flow, and in its own flow for it."""
    writer = task("one", "write", writes=["companies"], flow="f1")
    reader = task("two", "read", reads=["companies"], flow="f1")
    plan = Plan(
        (
            flow_of([writer], [reader], name="f1"),
            flow_of([task("s", "use", reads=["companies"], flow="f2")], name="f2"),
            flow_of([task("s", "own", reads=["companies"], flow="f3")], name="f3"),
        ),
        Selection(),
    )
    data = plan_data(plan, lambda name: None, datasets={"companies"})
    assert data["f1.one.write"].writes == ((SHARED, "companies"),)
    assert data["f2.s.use"].reads == ((SHARED, "companies"),)
    assert flows_after(plan, data, side_by_side=True)["f2"] == {"f1"}
    assert waits_for(plan.flows[0], data)["f1.two.read"] == {"f1.one.write"}
    # without the datasets, each flow's "companies" is a variable of its own
    apart = plan_data(plan, lambda name: None)
    assert flows_after(plan, apart, side_by_side=True)["f2"] == set()
