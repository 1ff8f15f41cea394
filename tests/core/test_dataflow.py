"""What is checked before a run for pools, maps and dataflow scheduling (SPEC 19): every
problem positioned, with the way out — the pools an entry asks for (unknown: did you
mean; more units than the pool has), a map's options (over a variable an earlier step
makes, to a parameter the process has) and, under ``confs.schedule: dataflow``, the
reads through ``pipe.vars`` a process's source shows but its entry does not declare."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from normandy_core.errors import ConfigError
from normandy_core.plan import Selection, build_plan
from normandy_core.project import check_project, open_project
from normandy_core.vars_reads import static_reads

FILE = "pipeline/pipeline_conf.yml"

PROCS = """
from normandy_core import variables_storage


def listing():
    return ["a", "b"]


def each(item, scale):
    return item * scale


def reads_vars(pipe):
    stored = pipe.vars
    first = pipe.vars["declared"]
    if "checked" in pipe.vars:
        pass
    return first, stored.get("aliased"), variables_storage().value("old_api"), pipe.vars[NAME]


NAME = "computed"
"""


@pytest.fixture
def problems(
    write_conf: Callable[..., Path],
    write_module: Callable[[Path, str, str], Path],
    module_name: Callable[[str], str],
    project_dir: Path,
    clean_imports: None,
) -> Callable[[str], list[str]]:
    """``problems(flows_and_confs)``: what checking a project with those says."""

    def check(text: str) -> list[str]:
        module = module_name("procs")
        write_module(project_dir / "src", module, PROCS)
        head = f"""
            confs:
              processes:
                listing: {module}:listing
                each: {module}:each
                reads_vars: {module}:reads_vars
              envs: {{dev: }}
        """
        root = write_conf(textwrap.dedent(head).strip("\n") + "\n" + textwrap.dedent(text))
        project = open_project(root, environ={})
        try:
            plan = None if project.problems else build_plan(project.config, Selection(flows=("f",)))
            check_project(project, plan=plan, imports=False, environ={})
        except ConfigError as exc:
            return [str(p) for p in exc.problems]
        return []

    return check


def test_pools_unknown_or_too_small_are_refused(problems) -> None:
    assert problems("""
          pools: {db: 2, gpu: 1}
        flows:
          f:
            steps:
              s:
                listing: {pool: dbb}
                each: {pools: {gpu: 2}}
                reads_vars: {pool: db, pools: {db: 1}}
    """) == [
        f"{FILE}:13:19: flows.f.steps.s.listing.pool: unknown pool 'dbb'; did you mean 'db'? "
        "the pools of confs.pools: db, gpu; add it there (dbb: UNITS) or fix the name",
        f"{FILE}:14:16: flows.f.steps.s.each.pools: the task asks 2 units of pool 'gpu', which "
        "has 1 (confs.pools): it could never start; ask at most 1, or give the pool more units",
        f"{FILE}:15:32: flows.f.steps.s.reads_vars.pools: give pool (one unit of one pool) or "
        "pools ({NAME: units, …}), not both",
    ]


def test_a_maps_options_go_together(problems):
    assert problems("""
        flows:
          f:
            steps:
              s:
                twice: {process: each, map: names, iter_param: {name: x, values: [1]}}
                lone: {process: each, map_as: item, max_map: 3}
    """) == [
        f"{FILE}:12:32: flows.f.steps.s.twice.map: give map or iter_param, not both: map fans "
        "out over a variable's elements at run time, iter_param over values written here",
        f"{FILE}:13:31: flows.f.steps.s.lone.map_as: map_as goes with map: (map: VARIABLE runs "
        "one task per element of it)",
        f"{FILE}:13:45: flows.f.steps.s.lone.max_map: max_map goes with map: (map: VARIABLE "
        "runs one task per element of it)",
    ]


def test_a_map_is_over_a_variable_made_earlier_to_a_parameter_of_the_process(problems):
    assert problems("""
        flows:
          f:
            steps:
              first:
                listing: {outputs: names}
                early: {process: each, map: names, inputs: {scale: names}}
              then:
                each: {map: nmaes, map_as: element, inputs: {scale: names}}
                fine: {process: each, map: names, inputs: {scale: names}}
    """) == [
        f"{FILE}:13:32: flows.f.steps.first.early.map: 'early' maps over 'names', which no step "
        "of flow 'f' before 'first' outputs (no step before it declares outputs; a variable "
        "written through pipe.vars counts once declared in its task's outputs); declare 'names' "
        "in the outputs of the task that makes it",
        f"{FILE}:13:53: flows.f.steps.first.early.inputs.scale: process 'each' takes 'scale' "
        "(variable 'names'), which no step of flow 'f' before 'first' outputs (no step before it "
        "declares outputs; a variable written through pipe.vars counts once declared in its "
        "task's outputs); declare 'names' in the outputs of the task that makes it, map 'scale' "
        "to another variable with inputs: {scale: NAME}, or give it a default",
        f"{FILE}:15:16: flows.f.steps.then.each.map: 'each' maps over 'nmaes', which no step of "
        "flow 'f' before 'then' outputs; did you mean 'names' (output by f.first.listing)? "
        "Otherwise declare 'nmaes' in the outputs of the task that makes it",
        f"{FILE}:15:28: flows.f.steps.then.each.map_as: process 'each' has no parameter "
        "'element' to get each element of 'nmaes' (its inputs: item, scale); name one with "
        "map_as: PARAMETER, or add the parameter",
        f"{FILE}:15:45: flows.f.steps.then.each.inputs: process 'each' takes 'item', which no "
        "step of flow 'f' before 'then' outputs; the variables output before it: names (by "
        "f.first.listing); declare 'item' in the outputs of the task that makes it, map 'item' to "
        "another variable with inputs: {item: NAME}, or give it a default",
    ]


def test_dataflow_refuses_reads_through_pipe_vars_its_entry_does_not_declare(problems):
    text = """
          schedule: {schedule}
        flows:
          f:
            steps:
              first:
                listing: {{outputs: [declared, checked]}}
              s:
                reads_vars: {{inputs: [declared, checked]}}
    """
    assert problems(text.format(schedule="steps")) == []
    found = problems(text.format(schedule="dataflow"))
    source = f"src/{module_of(found)}.py:17"
    assert found == [
        f"{FILE}:15:22: flows.f.steps.s.reads_vars.inputs: under confs.schedule: dataflow, "
        f"process 'reads_vars' reads '{name}' through pipe.vars ({source}), which this entry "
        "does not declare: a task starts as soon as what it declares is written, so it could "
        f"read '{name}' before that; declare it (inputs: [{name}]) or take it as a parameter"
        for name in ("aliased", "old_api")
    ]


def module_of(problems: list[str]) -> str:
    return problems[0].split("(src/")[1].split(".py")[0]


def test_reads_are_read_from_the_source_where_they_are_literal(
    write_module: Callable[[Path, str, str], Path],
    module_name: Callable[[str], str],
    tmp_path: Path,
    clean_imports: None,
) -> None:
    import sys

    module = module_name("reads")
    write_module(tmp_path, module, PROCS)
    sys.path.insert(0, str(tmp_path))
    found = static_reads(f"{module}:reads_vars")
    assert found is not None
    assert [(r.name, r.line) for r in found] == [
        ("declared", 14),
        ("checked", 15),
        ("aliased", 17),
        ("old_api", 17),
    ]  # pipe.vars[NAME]: known only as it runs
    assert static_reads(f"{module}:each") == []
    assert static_reads(f"{module}:nowhere") is None
