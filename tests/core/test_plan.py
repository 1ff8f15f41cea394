"""The plan (SPEC 7): which flows, steps and tasks a selection runs, with which params."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from normandy_core.config import ProjectConfig, read_config
from normandy_core.errors import SelectionError
from normandy_core.plan import (
    Plan,
    Selection,
    build_plan,
    check_patterns,
    mask_names,
    restrict,
    select_flows,
)

GoodConf = Callable[..., ProjectConfig]

ORIGINAL = Path(__file__).resolve().parents[2] / "examples" / "original"

FLOWS = """
confs:
  envs: {dev: }
flows:
  first:
    tags: [default, nightly]
    steps:
      read: [read_file]
  second:
    tags: [weekly]
    steps:
      read: [read_file]
  third:
    tags: [nightly, weekly]
    steps:
      read: [read_file]
  untagged:
    steps:
      read: [read_file]
"""


def plan_of(
    config: ProjectConfig,
    tags: tuple[str, ...] = (),
    flows: tuple[str, ...] = (),
    params: dict[str, Any] | None = None,
) -> Plan:
    return build_plan(config, Selection(tags, flows, MappingProxyType(params or {})))


def flow_names(plan: Plan) -> list[str]:
    return [flow.name for flow in plan.flows]


def shape(plan: Plan) -> list[tuple[str, list[tuple[str, list[str], tuple[str, ...]]]]]:
    """``[(flow, [(step, [task names], skipped)])]``."""
    return [
        (
            flow.name,
            [(step.name, [t.name for t in step.tasks], step.skipped) for step in flow.steps],
        )
        for flow in plan.flows
    ]


@pytest.fixture
def flows_conf(good_conf: GoodConf) -> ProjectConfig:
    return good_conf(FLOWS)


# -- selecting flows --------------------------------------------------------------------------


def test_no_tags_selects_the_default_tag(flows_conf: ProjectConfig) -> None:
    assert Selection().effective_tags == ("default",)
    assert flow_names(plan_of(flows_conf)) == ["first"]


def test_tags_select_flows_with_any_of_them_in_file_order(flows_conf: ProjectConfig) -> None:
    assert flow_names(plan_of(flows_conf, tags=("weekly",))) == ["second", "third"]
    assert flow_names(plan_of(flows_conf, tags=("weekly", "default"))) == [
        "first",
        "second",
        "third",
    ]
    assert flow_names(plan_of(flows_conf, tags=("nightly", "nightly"))) == ["first", "third"]


def test_flows_are_selected_by_name_in_file_order(flows_conf: ProjectConfig) -> None:
    selection = Selection(flows=("untagged", "first"))
    assert selection.effective_tags == ()
    assert [f.name for f in select_flows(flows_conf, selection)] == ["first", "untagged"]
    assert flow_names(build_plan(flows_conf, selection)) == ["first", "untagged"]


def test_with_flows_the_tags_do_not_select(flows_conf: ProjectConfig) -> None:
    # `weekly` would select second and third: with --flow it only counts for avoid_tags
    plan = plan_of(flows_conf, tags=("weekly",), flows=("first",))
    assert flow_names(plan) == ["first"]
    assert plan.selection.tags == ("weekly",)


def test_nothing_selected_lists_the_tags_and_flows(flows_conf: ProjectConfig) -> None:
    with pytest.raises(SelectionError) as info:
        plan_of(flows_conf, tags=("hourly", "yearly"))
    assert str(info.value).splitlines() == [
        "no flow has the tags hourly, yearly.",
        "  tags:  default, nightly, weekly",
        "  flows: first, second, third, untagged",
        "Choose with --tags TAG or --flow NAME.",
    ]


def test_a_misspelt_tag_gets_a_did_you_mean(flows_conf: ProjectConfig) -> None:
    """`--flow sals` had a did-you-mean, `--tags sale` none (issue 23)."""
    with pytest.raises(SelectionError) as info:
        plan_of(flows_conf, tags=("nigthly", "wekly", "zzz"))
    assert str(info.value).splitlines()[0] == (
        "no flow has the tags nigthly, wekly, zzz. Did you mean 'nightly' or 'weekly'?"
    )


def test_nothing_has_the_default_tag(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs: {dev: }
        flows:
          a: {steps: {s: [x]}}
    """)
    with pytest.raises(SelectionError) as info:
        plan_of(config)
    message = str(info.value)
    assert message.startswith("no flow has the tag default.")
    assert "(no flow has tags)" in message
    assert "flows: a" in message


def test_an_unknown_flow_is_an_error_with_did_you_mean(flows_conf: ProjectConfig) -> None:
    with pytest.raises(SelectionError) as info:
        plan_of(flows_conf, flows=("frist", "first", "zzz"))
    assert str(info.value) == (
        "unknown flow 'frist' (did you mean 'first'?), 'zzz'; "
        "the flows are: first, second, third, untagged"
    )


# -- steps and tasks --------------------------------------------------------------------------


AVOID = """
confs:
  envs: {dev: }
flows:
  main:
    tags: [default, all, nightly]
    steps:
      read: [read_file]
      process:
        light:
        heavy: {avoid_tags: [all, quick]}
        audit: {avoid_tags: [nightly]}
"""


def test_avoid_tags_skip_a_process_when_one_of_them_is_selected(good_conf: GoodConf) -> None:
    config = good_conf(AVOID)
    assert shape(plan_of(config, tags=("all",))) == [
        ("main", [("read", ["read_file"], ()), ("process", ["light", "audit"], ("heavy",))]),
    ]
    assert shape(plan_of(config, tags=("nightly", "quick"))) == [
        ("main", [("read", ["read_file"], ()), ("process", ["light"], ("heavy", "audit"))]),
    ]


def test_avoid_tags_count_with_flow_selection(good_conf: GoodConf) -> None:
    config = good_conf(AVOID)
    assert shape(plan_of(config, tags=("quick",), flows=("main",))) == [
        ("main", [("read", ["read_file"], ()), ("process", ["light", "audit"], ("heavy",))]),
    ]
    # no tag given: nothing is avoided
    assert shape(plan_of(config, flows=("main",)))[0][1][1] == (
        "process",
        ["light", "heavy", "audit"],
        (),
    )


def test_no_tags_avoids_like_the_default_tag(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs: {dev: }
        flows:
          main:
            tags: [default, nightly]
            steps:
              s:
                quick:
                slow: {avoid_tags: [default]}
    """)
    # no --tags means the tag default: it selects, and it counts for avoid_tags
    assert (
        shape(plan_of(config))
        == shape(plan_of(config, tags=("default",)))
        == [
            ("main", [("s", ["quick"], ("slow",))]),
        ]
    )
    assert shape(plan_of(config, tags=("nightly",))) == [("main", [("s", ["quick", "slow"], ())])]


ITER = """
confs:
  envs: {dev: }
flows:
  main:
    tags: [default]
    params: {a: flow, b: flow, c: flow, version: Andromeda}
    steps:
      fan:
        transform:
          params: {b: entry, c: entry}
          iter_param: {name: location, values: [Thessia, Rannoch, 3]}
          error_tolerance: true
          retries: 2
          retry_delay: 1.5
          timeout: 600
        audit:
"""


# -- part of the flows (SPEC 13) ---------------------------------------------------------------

TWO_FLOWS = """
confs:
  envs: {dev: }
flows:
  a:
    tags: [default]
    steps: {s1: [x], s2: [y], s3: [z]}
  b:
    tags: [default]
    steps: {s1: [u], s2: [v]}
"""


def test_a_part_is_recorded_with_the_selection(good_conf: GoodConf) -> None:
    plan = restrict(plan_of(good_conf(TWO_FLOWS)), ["s2"], [], ["a.s2.y", "b.*"])
    assert plan.selection.part == (("--from", "s2"), ("--only", "a.s2.y"), ("--only", "b.*"))
    assert shape(plan) == [("a", [("s2", ["y"], ())]), ("b", [("s2", ["v"], ())])]
    assert plan.to_dict()["selection"]["part"] == [
        ["--from", "s2"],
        ["--only", "a.s2.y"],
        ["--only", "b.*"],
    ]


def test_from_after_to_is_an_error_not_another_flows_step(good_conf: GoodConf) -> None:
    """`--from s3 --to s1`: nothing of flow a between them, and flow b (no s3) ran its s1
    silently (issue 23)."""
    with pytest.raises(SelectionError) as info:
        restrict(plan_of(good_conf(TWO_FLOWS)), ["s3"], ["s1"])
    assert str(info.value).startswith(
        "in flow 'a', --to s1 comes before --from s3: nothing runs between them"
    )


def test_a_pattern_that_names_nothing(good_conf: GoodConf) -> None:
    plan = plan_of(good_conf(TWO_FLOWS))
    check_patterns(plan, "--rerun", ["s1", "a.s3.z", "b.*"])  # each names a task
    with pytest.raises(SelectionError) as info:
        check_patterns(plan, "--rerun", ["nomatch"])
    assert str(info.value).startswith("--rerun 'nomatch' names no task of the flows selected;")
    with pytest.raises(SelectionError, match=r"--only 's22' .* \(did you mean 's2'\?\)"):
        restrict(plan, only=["s22"])


def test_iter_param_fans_out_into_named_tasks(good_conf: GoodConf) -> None:
    plan = plan_of(good_conf(ITER))
    [step] = plan.flows[0].steps
    transform = step.tasks[:3]
    assert [t.name for t in step.tasks] == [
        "transform[Thessia]",
        "transform[Rannoch]",
        "transform[3]",
        "audit",
    ]
    assert [t.key for t in transform] == [
        "main.fan.transform[Thessia]",
        "main.fan.transform[Rannoch]",
        "main.fan.transform[3]",
    ]
    assert {t.process for t in transform} == {"transform"}
    assert [t.params["location"] for t in transform] == ["Thessia", "Rannoch", 3]
    for task in transform:
        assert (task.flow, task.step) == ("main", "fan")
        assert (task.error_tolerance, task.retries, task.retry_delay, task.timeout) == (
            True,
            2,
            1.5,
            600.0,
        )
    audit = step.tasks[3]
    assert (audit.error_tolerance, audit.retries, audit.retry_delay, audit.timeout) == (
        False,
        0,
        0.0,
        None,
    )
    assert "location" not in audit.params


def test_tasks_named_by_a_credential_are_named_masked(good_conf: GoodConf) -> None:
    """An iter_param value equal to a credential named its task in the clear, in every
    log, table and record (issue 23): the name is masked, unique in its step; the task's
    params keep the value for the process."""
    from normandy_core.masking import Masker

    plan = plan_of(good_conf(ITER.replace("[Thessia, Rannoch, 3]", "[Thessia, Rannoch, 3333]")))
    masked = mask_names(plan, Masker(["Thessia", "Rannoch"]))
    [step] = masked.flows[0].steps
    assert [t.name for t in step.tasks] == [
        "transform[***]",
        "transform[***-2]",
        "transform[3333]",
        "audit",
    ]
    assert [t.params["location"] for t in step.tasks[:2]] == ["Thessia", "Rannoch"]
    assert step.tasks[1].key == "main.fan.transform[***-2]"
    assert mask_names(plan, Masker(["nothing-like-it"])) is plan


def test_params_flow_then_process_then_selection(good_conf: GoodConf) -> None:
    plan = plan_of(good_conf(ITER), params={"c": "cli", "d": 4})
    transform, *_, audit = plan.flows[0].steps[0].tasks
    assert dict(transform.params) == {
        "a": "flow",
        "b": "entry",
        "c": "cli",
        "d": 4,
        "version": "Andromeda",
        "location": "Thessia",
    }
    assert dict(audit.params) == {
        "a": "flow",
        "b": "flow",
        "c": "cli",
        "d": 4,
        "version": "Andromeda",
    }


NESTED = """
confs:
  envs:
    dev: {}
    prod:
      read: data/prod
      params: {split_options: {test_size: 0.5}, model: {trees: 300}, only_env: 1}
flows:
  f:
    tags: [default]
    params:
      split_options: {test_size: 0.2, random_state: 3}
      model: {trees: 10, depth: 4}
    steps:
      s:
        split: {params: {model: {trees: 20}}}
        other:
"""


def test_env_params_over_entry_over_flow_and_param_over_all(good_conf: GoodConf) -> None:
    """SPEC 20's precedence, strongest first: --param, env params, entry params, flow
    params; env params merge key by key at any depth, an entry's replace a flow's key."""
    config = good_conf(NESTED)
    assert "params" not in config.envs["prod"].settings  # params, not pipe.confs
    dev = plan_of(config)
    split, other = dev.flows[0].steps[0].tasks
    assert dict(split.params) == {
        "split_options": {"test_size": 0.2, "random_state": 3},
        "model": {"trees": 20},  # the entry's key replaces the flow's, as before
    }
    prod = build_plan(config, Selection(params={"split_options.random_state": 9}), "prod")
    split, other = prod.flows[0].steps[0].tasks
    assert dict(split.params) == {
        "split_options": {"test_size": 0.5, "random_state": 9},
        "model": {"trees": 300},
        "only_env": 1,
    }
    assert dict(other.params)["model"] == {"trees": 300, "depth": 4}
    # the whole mapping still replaced by --param KEY={…}
    whole = build_plan(config, Selection(params={"split_options": {"test_size": 0.1}}), "prod")
    assert dict(next(whole.tasks()).params)["split_options"] == {"test_size": 0.1}


def test_a_nested_param_sets_a_key_and_never_adds_a_flat_one(good_conf: GoodConf) -> None:
    """``--param split_options.test_size=0.4`` added the key "split_options.test_size"
    and left test_size at 0.2 (issue 26)."""
    plan = plan_of(good_conf(NESTED), params={"split_options.test_size": 0.4})
    for task in plan.tasks():
        assert "split_options.test_size" not in task.params
        assert task.params["split_options"] == {"test_size": 0.4, "random_state": 3}
    assert plan.to_dict()["selection"]["params"] == {"split_options.test_size": 0.4}


def test_a_nested_param_that_names_nothing_is_an_error(good_conf: GoodConf) -> None:
    config = good_conf(NESTED)
    with pytest.raises(SelectionError) as caught:
        plan_of(config, params={"split_options.test_sise": 0.4})
    assert str(caught.value).startswith(
        "--param split_options.test_sise: no task of the flows selected has this param: "
        "params.split_options has no key 'test_sise' (did you mean 'test_size'? its keys: "
        "test_size, random_state)."
    )
    with pytest.raises(SelectionError, match="params has no key 'split_option' \\(did you"):
        plan_of(config, params={"split_option.test_size": 0.4})
    with pytest.raises(SelectionError, match="params.model.trees is the number 20, not a map"):
        plan_of(config, params={"model.trees.x": 1})
    # a path only some tasks have: set where it is, the others untouched
    plan = plan_of(config, params={"model.depth": 8})
    split, other = plan.flows[0].steps[0].tasks
    assert (dict(split.params["model"]), dict(other.params["model"])) == (
        {"trees": 20, "depth": 8},
        {"trees": 10, "depth": 8},
    )


def test_a_template_s_steps_are_named_by_their_use(good_conf: GoodConf) -> None:
    config = good_conf(
        """
        confs: {envs: {dev: }}
        templates:
          t:
            steps:
              one: [a]
              two: [b]
        flows:
          f:
            tags: [default]
            steps:
              first: [x]
              lin: {use: t}
              last: [y]
        """
    )
    plan = plan_of(config)
    keys = [t.key for t in plan.tasks()]
    assert keys == ["f.first.x", "f.lin.one.a", "f.lin.two.b", "f.last.y"]

    def only(*patterns: str) -> list[str]:
        return [t.key for t in restrict(plan, only=patterns).tasks()]

    assert only("lin") == ["f.lin.one.a", "f.lin.two.b"]  # the use names its steps
    assert only("lin.one") == ["f.lin.one.a"]
    assert only("lin.one.a") == only("f.lin.one.a") == only("f.lin.one") == ["f.lin.one.a"]
    assert only("lin.*") == ["f.lin.one.a", "f.lin.two.b"]
    assert [t.key for t in restrict(plan, start=["lin.two"]).tasks()] == [
        "f.lin.two.b",
        "f.last.y",
    ]


def test_task_params_are_read_only(good_conf: GoodConf) -> None:
    task = next(plan_of(good_conf(ITER)).tasks())
    with pytest.raises(TypeError):
        task.params["a"] = "changed"  # type: ignore[index]


def test_plan_lists_its_tasks_and_processes(good_conf: GoodConf) -> None:
    plan = plan_of(good_conf(ITER))
    assert len(plan) == 4
    assert len(list(plan.tasks())) == 4
    assert plan.processes() == {"transform", "audit"}


# -- fingerprint and serialisation ------------------------------------------------------------


def test_fingerprint_is_stable_for_equal_plans(good_conf: GoodConf) -> None:
    config = good_conf(ITER)
    again = good_conf(ITER)  # read a second time: equal, not the same objects
    first = plan_of(config, params={"x": 1, "y": 2})
    second = plan_of(again, params={"y": 2, "x": 1})
    assert first.fingerprint() == second.fingerprint()
    assert len(first.fingerprint()) == 16
    # same flows, steps and tasks through another selection: same plan
    assert plan_of(config, flows=("main",)).fingerprint() == plan_of(config).fingerprint()


def test_fingerprint_changes_with_params(good_conf: GoodConf) -> None:
    config = good_conf(ITER)
    base = plan_of(config).fingerprint()
    assert plan_of(config, params={"c": "other"}).fingerprint() != base
    changed = good_conf(ITER.replace("version: Andromeda", "version: Trilogy"))
    assert plan_of(changed).fingerprint() != base


def test_fingerprint_changes_with_what_runs(good_conf: GoodConf) -> None:
    config = good_conf(AVOID)
    assert plan_of(config, tags=("all",)).fingerprint() != plan_of(config).fingerprint()


def test_to_dict_is_json(good_conf: GoodConf) -> None:
    plan = plan_of(good_conf(AVOID), tags=("all",), params={"n": 1})
    data = json.loads(json.dumps(plan.to_dict()))
    assert data == plan.to_dict()
    assert data["selection"] == {"tags": ["all"], "flows": [], "params": {"n": 1}}
    [flow] = data["flows"]
    assert flow["name"] == "main"
    assert flow["tags"] == ["default", "all", "nightly"]
    assert [s["name"] for s in flow["steps"]] == ["read", "process"]
    process = flow["steps"][1]
    assert process["skipped"] == ["heavy"]
    assert process["tasks"][0] == {
        "name": "light",
        "key": "main.process.light",
        "process": "light",
        "params": {"n": 1},
        "error_tolerance": False,
        "retries": 0,
        "retry_delay": 0.0,
        "timeout": None,
    }


def test_ten_thousand_tasks(good_conf: GoodConf) -> None:
    # 100 steps of 100 processes each
    steps = "\n".join(
        f"      s{s}: [{', '.join(f'p{s}_{p}' for p in range(100))}]" for s in range(100)
    )
    config = good_conf(f"""
confs:
  envs: {{dev: }}
flows:
  big:
    tags: [default]
    steps:
{steps}
""")
    plan = plan_of(config, params={"k": "v"})
    assert len(plan) == 10_000
    keys = [task.key for task in plan.tasks()]
    assert len(set(keys)) == 10_000
    assert keys[0] == "big.s0.p0_0" and keys[-1] == "big.s99.p99_99"
    assert len(plan.processes()) == 10_000
    assert len(json.dumps(plan.to_dict())) > 10_000
    assert plan.fingerprint() == plan_of(config, params={"k": "v"}).fingerprint()


# -- SPEC appendix A: the original example ----------------------------------------------------


@pytest.fixture(scope="module")
def original() -> ProjectConfig:
    config, problems = read_config(ORIGINAL, {})
    assert problems == []
    assert config is not None
    return config


MAIN = (
    "main",
    [("read", ["read_file"], ()), ("process", ["process_data"], ()), ("finish", ["prints"], ())],
)
ADD_INFO = ("add_info", [("read", ["read_file"], ()), ("process", ["add_data"], ())])


@pytest.mark.parametrize(
    ("tags", "flows", "expected"),
    [
        pytest.param((), (), [MAIN], id="no-tags"),
        pytest.param(("process", "add_info"), (), [MAIN, ADD_INFO], id="process+add_info"),
        pytest.param(
            ("complete",),
            (),
            [
                (
                    "complete",
                    [("read", ["read_file"], ()), ("process", ["process_data", "add_data"], ())],
                )
            ],
            id="complete",
        ),
        pytest.param(
            ("complete", "all"),
            (),
            [
                MAIN,
                ADD_INFO,
                (
                    "complete",
                    [("read", ["read_file"], ()), ("process", ["add_data"], ("process_data",))],
                ),
            ],
            id="complete+all",
        ),
        pytest.param(
            ("all",),
            ("complete",),
            [
                (
                    "complete",
                    [("read", ["read_file"], ()), ("process", ["add_data"], ("process_data",))],
                )
            ],
            id="flow-complete+all",
        ),
        pytest.param(
            ("errors",),
            (),
            [
                (
                    "error_treatment",
                    [
                        ("read", ["read_file_with_err"], ()),
                        ("process", ["process_data_with_err"], ()),
                    ],
                )
            ],
            id="errors",
        ),
    ],
)
def test_original_example_selections(
    original: ProjectConfig, tags: tuple[str, ...], flows: tuple[str, ...], expected: list[Any]
) -> None:
    assert shape(plan_of(original, tags=tags, flows=flows)) == expected


def test_original_example_error_tolerance(original: ProjectConfig) -> None:
    plan = plan_of(original, tags=("errors",))
    read, process = plan.flows[0].steps
    assert read.tasks[0].error_tolerance is False
    assert process.tasks[0].error_tolerance is True
