"""Reading ``pipeline/pipeline_conf.yml`` (SPEC 6): the data it gives and every problem, with
its exact position."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from normandy_core.config import (
    IterParam,
    ProcessEntry,
    ProjectConfig,
    env_settings,
    load_credentials,
    read_config,
    select_env,
)
from normandy_core.errors import ConfigError, Problem

FILE = "pipeline/pipeline_conf.yml"

LoadConf = Callable[..., "tuple[ProjectConfig | None, list[Problem]]"]
GoodConf = Callable[..., ProjectConfig]


def strs(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def data(entry: ProcessEntry) -> tuple[Any, ...]:
    """Everything an entry says, except where it is written."""
    return (
        entry.name,
        dict(entry.params),
        entry.avoid_tags,
        entry.error_tolerance,
        entry.iter_param,
        entry.retries,
        entry.retry_delay,
        entry.timeout,
    )


def entries(config: ProjectConfig, flow: str = "main", step: int = 0) -> list[ProcessEntry]:
    return list(config.flows[flow].steps[step].entries)


# -- the data ---------------------------------------------------------------------------------


HEAD = """
confs:
  envs:
    dev: {}
flows:
  main:
    tags: [default]
    steps:
"""


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(
            """
              work:
                - extract
                - load: {params: {table: users}, retries: 2}
                - audit:
            """,
            id="list-with-one-key-mappings",
        ),
        pytest.param(
            """
              work:
                extract:
                load: {params: {table: users}, retries: 2}
                audit: null
            """,
            id="mapping",
        ),
        pytest.param(
            """
              work: [extract, {load: {params: {table: users}, retries: 2}}, audit]
            """,
            id="flow-style-list",
        ),
    ],
)
def test_every_step_form_gives_the_same_entries(good_conf: GoodConf, steps: str) -> None:
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), " " * 6)
    config = good_conf(HEAD + body + "\n")
    [step] = config.flows["main"].steps
    assert step.name == "work"
    assert [data(e) for e in step.entries] == [
        ("extract", {}, (), False, None, 0, 0.0, None),
        ("load", {"table": "users"}, (), False, None, 2, 0.0, None),
        ("audit", {}, (), False, None, 0, 0.0, None),
    ]


def test_every_process_option_is_read(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs:
            dev: {}
        flows:
          nightly:
            tags: [default, nightly]
            params: {version: Andromeda, quoted: "text"}
            steps:
              transform:
                transform_data:
                  params: {limit: 100, nested: {a: [1, 2]}}
                  avoid_tags: [hammerhead, all]
                  error_tolerance: true
                  iter_param: {name: location, values: [Thessia, Rannoch, 3]}
                  retries: 2
                  retry_delay: 1.5
                  timeout: 600
                audit:
    """)
    flow = config.flows["nightly"]
    assert flow.tags == ("default", "nightly")
    assert dict(flow.params) == {"version": "Andromeda", "quoted": "text"}
    # round-trip YAML types are turned into plain ones
    assert type(flow.params["quoted"]) is str
    transform, audit = entries(config, "nightly")
    assert transform.name == "transform_data"
    assert dict(transform.params) == {"limit": 100, "nested": {"a": [1, 2]}}
    assert type(transform.params["nested"]) is dict
    assert type(transform.params["nested"]["a"]) is list
    assert transform.avoid_tags == ("hammerhead", "all")
    assert transform.error_tolerance is True
    assert transform.iter_param == IterParam("location", ("Thessia", "Rannoch", 3))
    assert transform.retries == 2
    assert transform.retry_delay == 1.5
    assert transform.timeout == 600.0 and isinstance(transform.timeout, float)
    assert data(audit) == ("audit", {}, (), False, None, 0, 0.0, None)


def test_params_are_read_only(good_conf: GoodConf) -> None:
    config = good_conf(HEAD + "      read:\n        read_file: {params: {a: 1}}\n")
    [entry] = entries(config)
    assert isinstance(entry.params, MappingProxyType)
    with pytest.raises(TypeError):
        entry.params["a"] = 2  # type: ignore[index]


def test_entries_know_where_they_are_written(good_conf: GoodConf) -> None:
    config = good_conf(
        HEAD
        + """\
      read: [read_file, other]
      work:
        process_data: {retries: 1}
"""
    )
    read_file, other = entries(config, step=0)
    [process_data] = entries(config, step=1)
    assert (read_file.where.line, read_file.where.column) == (8, 14)
    assert read_file.where.path == "flows.main.steps.read[0]"
    assert (other.where.line, other.where.column) == (8, 25)
    assert (process_data.where.line, process_data.where.column) == (10, 9)
    assert process_data.where.path == "flows.main.steps.work.process_data"
    assert config.flows["main"].where.line == 5


def test_the_spec_example_is_valid(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          path: .                  # optional (original format)
          workers: 4
          log_level: info
          plugins: [my_project.processes]
          executor: local
          default_env: dev
          envs:
            dev:
              credentials: conf/dev_credentials.yml
              read: data/dev/raw
            prod:
              credentials: conf/prod_credentials.yml
        flows:
          my-flow:
            tags: [default, nightly]
            params: {version: Andromeda}
            steps:
              extract:
                - extract_data
                - read_db: {params: {table: users}}
              transform:
                transform_data:
                  params: {limit: 100}
                  avoid_tags: [hammerhead]
                  error_tolerance: true
                  iter_param: {name: location, values: [Thessia, Rannoch]}
                  retries: 2
                  retry_delay: 1.5
                  timeout: 600
                audit:
              upload:
                - upload_data
    """)
    assert config.workers == 4
    assert config.log_level == "info"
    assert config.plugins == ("my_project.processes",)
    assert config.executor == "local"
    assert config.default_env == "dev"
    assert list(config.envs) == ["dev", "prod"]
    assert config.envs["dev"].credentials == "conf/dev_credentials.yml"
    assert config.envs["dev"].settings["read"] == "data/dev/raw"
    flow = config.flows["my-flow"]
    assert [s.name for s in flow.steps] == ["extract", "transform", "upload"]
    assert [[e.name for e in s.entries] for s in flow.steps] == [
        ["extract_data", "read_db"],
        ["transform_data", "audit"],
        ["upload_data"],
    ]


def test_defaults_of_confs(good_conf: GoodConf, project_dir: Path) -> None:
    config = good_conf(HEAD + "      read: [read_file]\n")
    assert config.root == project_dir
    assert config.workers is None
    assert config.log_level == "info"
    assert config.plugins == ()
    assert config.executor == "local"
    assert config.default_env is None
    assert config.envs["dev"].credentials is None


def test_flows_keep_file_order(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs: {dev: }
        flows:
          zeta: {steps: {s: [a]}}
          alpha: {steps: {s: [a]}}
          mid: {steps: {s: [a]}}
    """)
    assert list(config.flows) == ["zeta", "alpha", "mid"]
    assert config.flows["zeta"].tags == ()


@pytest.mark.parametrize(
    ("confs", "workers"),
    [("threads: 3", 3), ("workers: 2", 2), ("log_level: info", None)],
)
def test_threads_is_an_alias_of_workers(
    good_conf: GoodConf, confs: str, workers: int | None
) -> None:
    config = good_conf(f"""
        confs:
          {confs}
          envs: {{dev: }}
        flows:
          main: {{steps: {{s: [a]}}}}
    """)
    assert config.workers == workers


def test_workers_and_threads_together_is_a_problem(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          workers: 2
          threads: 3
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """)
    assert strs(problems) == [
        f"{FILE}:3:3: confs.threads: give workers or threads (its old name), not both"
    ]


# -- problems, each with its exact position ---------------------------------------------------


def test_yaml_syntax_error(load_conf: LoadConf) -> None:
    config, problems = load_conf("""
        confs:
          envs:
            dev: {}
        flows:
          main:
            tags: default: x
            steps: {s: [a]}
    """)
    assert config is None
    assert strs(problems) == [
        f"{FILE}:6:18: YAML syntax error: mapping values are not allowed in this context"
    ]
    assert (problems[0].line, problems[0].column, problems[0].path) == (6, 18, "")


def test_a_key_holding_terminal_escape_codes_is_shown_escaped(load_conf: LoadConf) -> None:
    """The message beside it quoted the key escaped; the key path echoed ESC raw, so the
    terminal showing `validate`'s output acted on it (issue 23)."""
    _, problems = load_conf("""
        confs:
          envs:
            dev: {}
          "bad\\e[31mkey": 1
        flows: {}
    """)
    shown = strs(problems)
    assert shown[0].startswith(
        f"{FILE}:4:3: confs.bad\\x1b[31mkey: unknown key 'bad\\x1b[31mkey'"
    )
    assert not any("\x1b" in line for line in shown)


def test_unclosed_bracket_is_a_syntax_error_where_it_is_noticed(load_conf: LoadConf) -> None:
    config, problems = load_conf("""
        confs:
          envs: [dev
        flows: {}
    """)
    assert config is None
    assert strs(problems) == [f"{FILE}:3:6: YAML syntax error: did not find expected ',' or ']'"]


def test_every_duplicate_key_is_reported(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs:
            dev: {}
            dev: {read: x}
        flows:
          main:
            tags: [a]
            tags: [b]
            steps:
              read: [x]
              read: [y]
    """)
    assert strs(problems) == [
        f"{FILE}:4:5: confs.envs.dev: duplicate key 'dev': each key may appear only once in a "
        "mapping",
        f"{FILE}:8:5: flows.main.tags: duplicate key 'tags': each key may appear only once in a "
        "mapping",
        f"{FILE}:11:7: flows.main.steps.read: duplicate key 'read': each key may appear only "
        "once in a mapping",
    ]


def test_duplicate_keys_name_their_key_path(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs:
            dev: {}
            dev: {read: x}
        flows:
          main: {steps: {s: [a]}}
    """)
    assert [p.path for p in problems] == ["confs.envs.dev"]


def test_python_tags_are_refused_and_construct_nothing(
    load_conf: LoadConf, project_dir: Path
) -> None:
    config, problems = load_conf("""
        confs:
          envs:
            dev: {}
        flows:
          main:
            params: {cmd: !!python/object/apply:os.system ["touch PWNED"]}
            steps: {s: [a]}
    """)
    assert strs(problems) == [
        f"{FILE}:6:19: flows.main.params.cmd: YAML tag !!python/object/apply:os.system is not "
        "allowed; remove it"
    ]
    assert not (project_dir / "PWNED").exists()
    assert config is not None
    assert not isinstance(config.flows["main"].params["cmd"], int)


def test_merge_keys_share_params_and_explicit_keys_win(load_conf: LoadConf) -> None:
    config, problems = load_conf("""
        confs:
          envs: {dev: }
        flows:
          daily:
            params: &defaults {region: eu, limit: 10}
            steps: {s: [a]}
          weekly:
            params:
              <<: *defaults
              limit: 5
            steps: {s: [a]}
    """)
    assert problems == []
    assert config is not None
    assert dict(config.flows["weekly"].params) == {"limit": 5, "region": "eu"}


def test_an_alias_cycle_is_a_problem_not_a_crash(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {dev: }
          plugins: &loop [*loop]
        flows:
          main: {steps: {s: [a]}}
    """)
    assert strs(problems)[0] == (
        f"{FILE}:3:19: confs.plugins[0]: an alias refers to a node that contains it; "
        "remove the cycle"
    )


def test_local_tags_are_refused(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs:
            dev: !secret {read: x}
        flows:
          main:
            steps:
              s: [!foo a]
    """)
    assert strs(problems) == [
        f"{FILE}:3:10: confs.envs.dev: YAML tag !secret is not allowed; remove it",
        f"{FILE}:7:11: flows.main.steps.s[0]: YAML tag !foo is not allowed; remove it",
    ]


def test_a_tagged_step_list_is_a_problem_not_a_crash(load_conf: LoadConf) -> None:
    # ruamel keeps no item positions in a tagged sequence: the step's position is used
    config, problems = load_conf("""
        confs:
          envs: {dev: }
        flows:
          main:
            steps:
              s: !!python/object/apply:os.system [a]
    """)
    assert strs(problems) == [
        f"{FILE}:6:10: flows.main.steps.s: YAML tag !!python/object/apply:os.system is not "
        "allowed; remove it"
    ]
    assert config is not None
    [entry] = entries(config)
    assert (entry.name, entry.where.line) == ("a", 6)


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!bool abc"])
def test_a_bad_core_tag_value_is_a_problem_not_a_crash(load_conf: LoadConf, value: str) -> None:
    config, problems = load_conf(f"""
        confs:
          envs: {{dev: }}
        flows:
          main:
            params: {{n: {value}}}
            steps: {{s: [a]}}
    """)
    [problem] = problems
    assert problem.file == FILE
    assert problem.message.startswith("YAML error: ")


def test_a_bad_core_tag_value_is_reported_where_it_is(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {dev: }
        flows:
          main:
            params: {n: !!int abc}
            steps: {s: [a]}
    """)
    assert [(p.line, p.column) for p in problems] == [(5, 17)]


def test_unknown_keys_with_did_you_mean(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          wokers: 3
          envs:
            dev: {anything: [goes, here]}
        flows:
          main:
            tag: [default]
            params: {free: {form: 1}}
            steps:
              read:
                read_file: {parms: {a: 1}}
    """)
    assert sorted(strs(problems)) == sorted(
        [
            f"{FILE}:2:3: confs.wokers: unknown key 'wokers'; did you mean 'workers'?",
            f"{FILE}:7:5: flows.main.tag: unknown key 'tag'; did you mean 'tags'?",
            f"{FILE}:11:21: flows.main.steps.read.read_file.parms: unknown key 'parms'; "
            "did you mean 'params'?",
        ]
    )


def test_unknown_key_without_a_close_match_lists_the_keys(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {dev: }
          zzz: 1
        flows:
          main: {steps: {s: [a]}}
    """)
    assert strs(problems) == [
        f"{FILE}:3:3: confs.zzz: unknown key 'zzz'; expected one of: cache, dask, datasets, "
        "default_env, envs, executor, keep_runs, log_level, notify, path, plugins, pools, "
        "preload, processes, schedule, store, threads, workers"
    ]


def test_wrong_types_and_values(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          workers: many
          log_level: loud
          envs:
            dev: {}
        flows:
          main:
            tags: default
            params: [1, 2]
            steps:
              read:
                read_file: {retries: two, error_tolerance: "yes", timeout: 0, retry_delay: -1}
    """)
    found = {(p.line, p.column, p.path): p.message for p in problems}
    assert found == {
        (2, 12, "confs.workers"): "must be an integer, not str 'many'",
        (3, 14, "confs.log_level"): "must be one of: debug, info, warning, warnings, error, "
        "errors, critical (not 'loud')",
        (8, 11, "flows.main.tags"): "must be a list, not str 'default'",
        (9, 13, "flows.main.params"): "must be a mapping, not a list",
        (12, 30, "flows.main.steps.read.read_file.retries"): "must be an integer, not str 'two'",
        (
            12,
            52,
            "flows.main.steps.read.read_file.error_tolerance",
        ): "must be true or false, not str 'yes'",
        (12, 68, "flows.main.steps.read.read_file.timeout"): "must be at least 0.001 (not 0)",
        (12, 84, "flows.main.steps.read.read_file.retry_delay"): "must be at least 0 (not -1)",
    }


def test_process_options_that_are_not_a_mapping(load_conf: LoadConf) -> None:
    _, problems = load_conf(HEAD + "      read:\n        read_file: 3\n")
    assert strs(problems) == [
        f"{FILE}:9:20: flows.main.steps.read.read_file: the options of process 'read_file' must "
        "be a mapping (params, avoid_tags, error_tolerance, iter_param, retries, retry_delay, "
        "timeout, process, inputs, outputs, cache, pool, pools, map, map_as, max_map) or "
        "nothing, not int"
    ]


def test_an_option_that_lost_its_colon(load_conf: LoadConf) -> None:
    _, problems = load_conf(HEAD + "      read:\n        read_file:\n          outputs rows\n")
    assert strs(problems)[0].endswith(
        "or nothing, not str; missing ':' after 'outputs' (outputs: rows)?"
    )


def test_missing_confs(load_conf: LoadConf) -> None:
    config, problems = load_conf("""
        flows:
          main: {steps: {s: [a]}}
    """)
    assert strs(problems) == [f"{FILE}:1:1: confs: missing required key 'confs'"]
    assert config is not None and config.envs == {}


def test_missing_flows(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {dev: }
    """)
    assert strs(problems) == [f"{FILE}:1:1: flows: missing required key 'flows'"]


def test_missing_envs_points_at_confs(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        flows:
          main: {steps: {s: [a]}}

        confs:
          workers: 2
    """)
    assert strs(problems) == [f"{FILE}:4:1: confs.envs: missing required key 'envs'"]


def test_empty_envs_flows_and_steps(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {}
        flows:
          main:
            steps: {}
    """)
    assert strs(problems) == [
        f"{FILE}:2:9: confs.envs: must not be empty",
        f"{FILE}:5:12: flows.main.steps: must not be empty",
    ]


def test_a_flow_needs_steps(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs: {dev: }
        flows:
          main:
            tags: [x]
    """)
    assert strs(problems) == [f"{FILE}:4:3: flows.main.steps: missing required key 'steps'"]


def test_the_file_must_be_a_mapping(load_conf: LoadConf) -> None:
    config, problems = load_conf("- confs\n- flows\n")
    assert config is None
    assert strs(problems) == [
        f"{FILE}:1:1: the file must be a mapping with the keys confs and flows"
    ]


def test_a_missing_file_is_a_problem(project_dir: Path) -> None:
    config, problems = read_config(project_dir, {})
    assert config is None
    [problem] = problems
    assert (problem.file, problem.line, problem.column) == (FILE, 1, 1)
    assert "cannot read the file" in problem.message


@pytest.mark.parametrize(
    ("step", "line", "column"),
    [("      read:\n", 8, 7), ("      read: []\n", 8, 7), ("      read: {}\n", 8, 7)],
    ids=["null", "empty-list", "empty-mapping"],
)
def test_empty_step(load_conf: LoadConf, step: str, line: int, column: int) -> None:
    _, problems = load_conf(HEAD + step)
    assert strs(problems) == [
        f"{FILE}:{line}:{column}: flows.main.steps.read: step 'read' has no processes; "
        "list at least one"
    ]


def test_bad_items_in_a_step_list(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        - ok
        - {a: , b: }
        - 3
"""
    )
    message = "each item must be a process name, or a one-key mapping 'name: {options}'"
    assert strs(problems) == [
        f"{FILE}:10:11: flows.main.steps.read[1]: {message}",
        f"{FILE}:11:11: flows.main.steps.read[2]: {message}",
    ]


def test_options_indented_as_far_out_as_their_process_in_a_list(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        - ok:
          params: {table: users}
          retries: 2
"""
    )
    assert strs(problems) == [
        f"{FILE}:9:11: flows.main.steps.read[0]: each item must be a process name, or a one-key "
        "mapping 'name: {options}'; 'params', 'retries' look like options of 'ok': indent them "
        "under 'ok', two more spaces than the name"
    ]


def test_keys_that_are_not_names_are_problems_not_a_crash(load_conf: LoadConf) -> None:
    # cerberus cannot sort its errors about a null or float key beside a text one
    _, problems = load_conf("""
        confs:
          envs: {dev: , null: }
          ~: 1
          1.5: 2
        flows:
          main:
            steps: {s: {a: {null: 1, retries: x}}}
    """)
    assert strs(problems) == [
        f"{FILE}:2:17: confs.envs.None: a key here must be a name, not null; quote it or rename it",
        f"{FILE}:3:3: confs.None: a key here must be a name, not null; quote it or rename it",
        f"{FILE}:4:3: confs.1.5: a key here must be a name, not float 1.5; quote it or rename it",
        f"{FILE}:7:21: flows.main.steps.s.a.None: a key here must be a name, not null; quote it "
        "or rename it",
        f"{FILE}:7:39: flows.main.steps.s.a.retries: must be an integer, not str 'x'",
    ]


def test_iter_param_without_values(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        a: {iter_param: {name: loc, values: []}}
        b:
          iter_param: {name: loc}
        c: {iter_param: {values: [1]}}
"""
    )
    assert strs(problems) == [
        f"{FILE}:9:45: flows.main.steps.read.a.iter_param.values: must not be empty",
        f"{FILE}:11:11: flows.main.steps.read.b.iter_param.values: missing required key 'values'",
        f"{FILE}:12:13: flows.main.steps.read.c.iter_param.name: missing required key 'name'",
    ]


def test_iter_param_with_duplicate_or_non_scalar_values(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        a: {iter_param: {name: loc, values: [x, y, x, 1, 1]}}
        b: {iter_param: {name: loc, values: [[1], {k: 1}]}}
"""
    )
    scalars = (
        "iter_param values must be scalars (strings or numbers): each becomes part of a task name"
    )
    assert strs(problems) == [
        f"{FILE}:9:52: flows.main.steps.read.a.iter_param.values[2]: value 'x' is listed twice "
        "(as the task a[x])",
        f"{FILE}:9:58: flows.main.steps.read.a.iter_param.values[4]: value 1 is listed twice "
        "(as the task a[1])",
        f"{FILE}:10:46: flows.main.steps.read.b.iter_param.values[0]: {scalars}",
        f"{FILE}:10:51: flows.main.steps.read.b.iter_param.values[1]: {scalars}",
    ]


def test_iter_param_values_giving_the_same_task_name(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        a: {iter_param: {name: loc, values: ["1", 1]}}
"""
    )
    assert [(p.line, p.path) for p in problems] == [
        (9, "flows.main.steps.read.a.iter_param.values[1]")
    ]


def test_one_process_twice_in_a_step_with_overlapping_iter_values(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read:
        - a: {iter_param: {name: n, values: [1, 2]}}
        - a: {iter_param: {name: n, values: [2]}}
"""
    )
    assert strs(problems) == [
        f"{FILE}:10:11: flows.main.steps.read[1].a: task 'a[2]' appears twice in step 'read' "
        "(first at line 9); task names are unique in a step: to run one process twice, give "
        "each entry its own name and the process: 'a_2: {process: a}' (or iter_param, to vary "
        "one param)"
    ]


def test_one_process_twice_in_a_step_with_different_iter_values_is_fine(
    good_conf: GoodConf,
) -> None:
    config = good_conf(
        HEAD
        + """\
      read:
        - a: {iter_param: {name: n, values: [1, 2]}}
        - a: {iter_param: {name: n, values: [3]}}
"""
    )
    assert len(entries(config)) == 2


def test_invalid_names(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          envs:
            "bad env": {}
        flows:
          "bad flow!":
            steps:
              "bad step":
                - "bad process"
    """)
    assert strs(problems) == [
        f"{FILE}:3:5: confs.envs.bad env: invalid name 'bad env': use letters, digits, '_' and '-'",
        f"{FILE}:5:3: flows.bad flow!: invalid name 'bad flow!': use letters, digits, '_' and '-'",
        f"{FILE}:7:7: flows.bad flow!.steps.bad step: invalid name 'bad step': use letters, "
        "digits, '_' and '-'",
        f"{FILE}:8:11: flows.bad flow!.steps.bad step[0]: invalid process name 'bad process': "
        "names match [A-Za-z_][A-Za-z0-9_.-]*",
    ]


def test_a_process_listed_twice_in_one_step(load_conf: LoadConf) -> None:
    _, problems = load_conf(
        HEAD
        + """\
      read: [a, b, a]
      other:
        - c
        - c: {retries: 1}
      fine: [a, b]
"""
    )
    hint = (
        "task names are unique in a step: to run one process twice, give each entry its own "
        "name and the process: '{0}_2: {{process: {0}}}' (or iter_param, to vary one param)"
    )
    assert strs(problems) == [
        f"{FILE}:8:20: flows.main.steps.read[2]: task 'a' appears twice in step 'read' "
        "(first at line 8); " + hint.format("a"),
        f"{FILE}:11:11: flows.main.steps.other[1].c: task 'c' appears twice in step 'other' "
        "(first at line 10); " + hint.format("c"),
    ]


def test_default_env_must_be_an_env(load_conf: LoadConf) -> None:
    config, problems = load_conf("""
        confs:
          default_env: prod
          envs:
            dev:
            staging:
        flows:
          main: {steps: {s: [a]}}
    """)
    assert strs(problems) == [
        f"{FILE}:2:16: confs.default_env: unknown env 'prod'; the envs are: dev, staging"
    ]


def test_every_problem_is_reported_at_once(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          wokers: 3
          default_env: nope
          envs:
            dev: {}
            dev: {}
        flows:
          main:
            tags: default
            steps:
              empty:
              read: [a, a]
              iter:
                b: {iter_param: {name: x, values: []}}
    """)
    assert sorted((p.line, p.column, p.path) for p in problems) == [
        (2, 3, "confs.wokers"),
        (3, 16, "confs.default_env"),
        (6, 5, "confs.envs.dev"),  # the duplicate key
        (9, 11, "flows.main.tags"),
        (11, 7, "flows.main.steps.empty"),
        (12, 17, "flows.main.steps.read[1]"),
        (14, 43, "flows.main.steps.iter.b.iter_param.values"),
    ]
    error = ConfigError(problems)
    lines = str(error).splitlines()
    assert len(lines) == 7
    assert lines[0].startswith(f"{FILE}:2:3: ")
    assert lines[-1].startswith(f"{FILE}:14:43: ")


# -- ${env:…} ---------------------------------------------------------------------------------


def test_env_interpolation_in_confs(good_conf: GoodConf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N_WORKERS", "9")  # ignored: environ is given
    monkeypatch.setenv("LEVEL", "debug")
    config = good_conf(
        """
        confs:
          workers: ${env:N_WORKERS}
          path: ${env:DATA_ROOT:/srv}/data-${env:SUFFIX}
          log_level: ${env:LEVEL:info}
          plugins: ["${env:PKG}.processes"]
          envs:
            dev: {read: "${env:READ}"}
        flows:
          main:
            params: {p: "${env:SUFFIX}"}
            steps: {s: [a]}
    """,
        environ={"N_WORKERS": "4", "SUFFIX": "x", "PKG": "mine"},
    )
    assert config.workers == 4
    assert config.confs["path"] == "/srv/data-x"
    assert config.log_level == "info"
    assert config.plugins == ("mine.processes",)
    # env settings are interpolated when the env is used (env_settings), flows never
    assert config.envs["dev"].settings["read"] == "${env:READ}"
    assert config.flows["main"].params["p"] == "${env:SUFFIX}"


def test_an_empty_default_is_a_default(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          path: "${env:NOPE:}"
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """)
    assert config.confs["path"] == ""


def test_a_missing_variable_is_reported_where_it_is(load_conf: LoadConf) -> None:
    config, problems = load_conf(
        """
        confs:
          path: ${env:MISSING_ROOT}
          plugins: [a.b, "${env:PLUG}"]
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """,
        environ={},
    )
    assert strs(problems) == [
        f"{FILE}:2:9: confs.path: environment variable MISSING_ROOT is not set; set it or give "
        "a default: ${env:MISSING_ROOT:default}",
        f"{FILE}:3:18: confs.plugins[1]: environment variable PLUG is not set; set it or give "
        "a default: ${env:PLUG:default}",
        f"{FILE}:3:18: confs.plugins[1]: invalid module name '${{env:PLUG}}': use a dotted "
        "Python name (package.module)",
    ]
    assert config is not None and config.confs["path"] == "${env:MISSING_ROOT}"


FORMS = (
    "write ${env:NAME} or ${env:NAME:default}, NAME made of letters, digits and '_' (not "
    "starting with a digit)"
)


@pytest.mark.parametrize(
    ("reference", "quoted"),
    [
        ("${env:}", "${env:}"),
        ("${env:A B}", "${env:A B}"),
        ("${env:1A}", "${env:1A}"),
        ("${env:A", "${env:A/x"),  # no closing brace: up to the end of the text
        ("${env:A:${env:B}}", "${env:A:${env:B}"),  # a default holding a reference
        ("${env:A}${env:}", "${env:}"),
    ],
)
def test_a_malformed_reference_is_a_problem(
    load_conf: LoadConf, reference: str, quoted: str
) -> None:
    config, problems = load_conf(
        f"""
        confs:
          path: 'data/{reference}/x'
          envs: {{dev: }}
        flows:
          main: {{steps: {{s: [a]}}}}
    """,
        environ={"A": "a", "B": "b"},
    )
    assert strs(problems) == [f"{FILE}:2:9: confs.path: malformed reference {quoted!r}; {FORMS}"]
    assert config is not None and config.confs["path"] == f"data/{reference}/x"


def test_references_and_text_around_them(good_conf: GoodConf) -> None:
    config = good_conf(
        """
        confs:
          path: "$${env:A}-${env:B:b}{env:A}$env:A}"
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """,
        environ={"A": "a"},
    )
    assert config.confs["path"] == "$a-b{env:A}$env:A}"


# -- envs, settings and credentials ------------------------------------------------------------


ENVS = """
confs:
  {default}
  envs:
    {first}:
      credentials: conf/{first}.yml
      read: ${{env:READ:raw}}
      nested: {{a: ["${{env:A}}"]}}
    {second}:
flows:
  main: {{steps: {{s: [a]}}}}
"""


@pytest.mark.parametrize(
    ("default", "first", "second", "requested", "chosen"),
    [
        ("", "prod", "dev", None, "dev"),
        ("", "prod", "staging", None, "prod"),
        ("default_env: staging", "prod", "staging", None, "staging"),
        ("default_env: staging", "prod", "staging", "prod", "prod"),
        ("", "prod", "dev", "prod", "prod"),
    ],
)
def test_select_env(
    good_conf: GoodConf, default: str, first: str, second: str, requested: str | None, chosen: str
) -> None:
    config = good_conf(ENVS.format(default=default, first=first, second=second))
    assert select_env(config, requested) == (chosen, [])


def test_select_an_unknown_env(good_conf: GoodConf) -> None:
    config = good_conf(ENVS.format(default="", first="prod", second="dev"))
    env, problems = select_env(config, "prd")
    assert env is None
    assert strs(problems) == [
        f"{FILE}:3:3: confs.envs: unknown env 'prd' (from --env); did you mean 'prod'? The "
        "envs are: prod, dev"
    ]


def test_env_settings_are_interpolated(good_conf: GoodConf) -> None:
    config = good_conf(ENVS.format(default="", first="prod", second="dev"))
    settings, problems = env_settings(config, "prod", {"A": "aa"})
    assert problems == []
    assert settings == {"credentials": "conf/prod.yml", "read": "raw", "nested": {"a": ["aa"]}}
    settings, problems = env_settings(config, "prod", {"READ": "elsewhere"})
    assert settings["read"] == "elsewhere"
    assert strs(problems) == [
        f"{FILE}:7:20: confs.envs.prod.nested.a[0]: environment variable A is not set; set it "
        "or give a default: ${env:A:default}"
    ]
    assert env_settings(config, "dev", {}) == ({}, [])


@pytest.fixture
def creds_conf(good_conf: GoodConf) -> ProjectConfig:
    return good_conf(ENVS.format(default="", first="prod", second="dev"), environ={})


def write_credentials(config: ProjectConfig, text: str) -> None:
    path = config.root / "conf" / "prod.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_no_credentials_file(creds_conf: ProjectConfig) -> None:
    assert load_credentials(creds_conf, "dev", {}) == ({}, [])


def test_a_missing_credentials_file_is_named(creds_conf: ProjectConfig) -> None:
    credentials, problems = load_credentials(creds_conf, "prod", {})
    assert credentials == {}
    assert strs(problems) == [
        f"{FILE}:5:20: confs.envs.prod.credentials: credentials file conf/prod.yml does not "
        "exist; create it (a YAML mapping) or remove the credentials key"
    ]


def test_a_credentials_path_that_is_a_folder_is_named(creds_conf: ProjectConfig) -> None:
    (creds_conf.root / "conf" / "prod.yml").mkdir(parents=True)
    credentials, problems = load_credentials(creds_conf, "prod", {})
    assert credentials == {}
    assert strs(problems) == [
        f"{FILE}:5:20: confs.envs.prod.credentials: credentials path conf/prod.yml is a folder; "
        "give the path of a YAML file (a mapping of names to values)"
    ]


def test_a_malformed_reference_in_credentials_is_never_quoted(creds_conf: ProjectConfig) -> None:
    write_credentials(creds_conf, "user: me\npassword: '${env:Sup3r S3cret}'\n")
    _, problems = load_credentials(creds_conf, "prod", {})
    assert strs(problems) == [
        f"conf/prod.yml:2:11: password: a malformed ${{env:…}} reference; {FORMS}"
    ]


def test_a_malformed_reference_in_env_settings(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs:
            dev: {read: "${env:READ ME}"}
        flows:
          main: {steps: {s: [a]}}
    """)
    _, problems = env_settings(config, "dev", {})
    assert strs(problems) == [
        f"{FILE}:3:17: confs.envs.dev.read: malformed reference '${{env:READ ME}}'; {FORMS}"
    ]


def test_credentials_are_read_and_interpolated(creds_conf: ProjectConfig) -> None:
    write_credentials(
        creds_conf, "user: ${env:DB_USER}\npassword: ${env:DB_PASS:hunter2}\nport: 5432\n"
    )
    credentials, problems = load_credentials(creds_conf, "prod", {"DB_USER": "bob"})
    assert problems == []
    assert credentials == {"user": "bob", "password": "hunter2", "port": 5432}
    assert type(credentials) is dict


def test_a_missing_variable_in_credentials(creds_conf: ProjectConfig) -> None:
    write_credentials(creds_conf, "port: 1\nuser: ${env:DB_USER}\n")
    credentials, problems = load_credentials(creds_conf, "prod", {})
    assert strs(problems) == [
        "conf/prod.yml:2:7: user: environment variable DB_USER is not set; set it or give a "
        "default: ${env:DB_USER:default}"
    ]


def test_credentials_must_be_a_mapping(creds_conf: ProjectConfig) -> None:
    write_credentials(creds_conf, "- a\n- b\n")
    credentials, problems = load_credentials(creds_conf, "prod", {})
    assert credentials == {}
    assert strs(problems) == [
        "conf/prod.yml:1:1: a credentials file must be a YAML mapping of names to values"
    ]


def test_an_empty_credentials_file_is_empty(creds_conf: ProjectConfig) -> None:
    write_credentials(creds_conf, "")
    assert load_credentials(creds_conf, "prod", {}) == ({}, [])


def test_the_credentials_path_is_interpolated(good_conf: GoodConf) -> None:
    config = good_conf("""
        confs:
          envs:
            prod:
              credentials: ${env:CREDS:conf/prod.yml}
        flows:
          main: {steps: {s: [a]}}
    """)
    write_credentials(config, "user: bob\n")
    settings, _ = env_settings(config, "prod", {})
    assert settings["credentials"] == "conf/prod.yml"
    assert load_credentials(config, "prod", {}) == ({"user": "bob"}, [])


SECRET = "Sup3rS3cret"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f'password: "{SECRET}\nuser: x\n', (3, 1)),
        (f"password: '{SECRET}\n", (2, 1)),
        (f"password: {SECRET}: x\n", (1, 22)),
        (f"password: [{SECRET}\n", (2, 1)),
        (f'password: "{SECRET}\\q"\n', (1, 23)),
        (f"password: {SECRET}\n\tuser: x\n", (2, 1)),
    ],
    ids=["unclosed-double-quote", "unclosed-single-quote", "colon", "bracket", "escape", "tab"],
)
def test_a_syntax_error_in_credentials_does_not_quote_the_secret(
    creds_conf: ProjectConfig, text: str, where: tuple[int, int]
) -> None:
    write_credentials(creds_conf, text)
    credentials, problems = load_credentials(creds_conf, "prod", {})
    assert credentials == {}
    [problem] = problems
    assert (problem.file, problem.line, problem.column) == ("conf/prod.yml", *where)
    assert problem.message.startswith("YAML syntax error")
    assert SECRET not in str(problem) and SECRET[:5] not in str(problem)


@pytest.mark.parametrize(
    "text",
    [
        f"password: *{SECRET}\n",
        f"password: !{SECRET}\n",
        f"password: !{SECRET}!x y\n",
        f"password: !!int {SECRET}\n",
        f"password: !!bool {SECRET}\n",
    ],
    ids=["starts-with-star", "starts-with-bang", "tag-handle", "int-tag", "bool-tag"],
)
def test_credentials_errors_never_quote_the_secret(creds_conf: ProjectConfig, text: str) -> None:
    # ruamel quotes the text at fault in many messages (undefined alias 'x', tag '!x'…)
    write_credentials(creds_conf, text)
    _, problems = load_credentials(creds_conf, "prod", {})
    assert problems
    assert all(p.file == "conf/prod.yml" for p in problems)
    assert all(SECRET not in str(p) and SECRET.lower() not in str(p) for p in problems)


# -- the store and the dask executor (confs.store, confs.dask) ----------------------------


def test_store_and_dask_settings(good_conf: GoodConf) -> None:
    config = good_conf(
        """
        confs:
          executor: dask
          store: ${env:BUCKET:s3://default}/normandy
          dask:
            address: tcp://scheduler:8786
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """,
        environ={"BUCKET": "gcs://team-bucket"},
    )
    assert config.store == "gcs://team-bucket/normandy"
    assert config.executor == "dask"
    assert dict(config.executor_settings("dask")) == {"address": "tcp://scheduler:8786"}
    assert dict(config.executor_settings("local")) == {}
    assert config.where("confs.store").line == 3
    assert (config.where("confs.dask.address").line, config.where("confs.dask.address").column) == (
        5,
        14,
    )


def test_store_and_dask_default_to_nothing(good_conf: GoodConf) -> None:
    config = good_conf(HEAD + "      read: [read_file]\n")
    assert config.store is None
    assert dict(config.executor_settings("dask")) == {}
    empty = good_conf(
        "confs:\n  dask:\n  envs: {dev: }\nflows:\n  main: {steps: {s: [a]}}\n"
    )
    assert dict(empty.executor_settings("dask")) == {}


def test_store_and_dask_problems(load_conf: LoadConf) -> None:
    _, problems = load_conf("""
        confs:
          store: ""
          dask:
            adress: tcp://x:8786
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """)
    assert sorted(strs(problems)) == [
        f"{FILE}:2:10: confs.store: must not be empty",
        f"{FILE}:4:5: confs.dask.adress: unknown key 'adress'; did you mean 'address'?",
    ]
    _, problems = load_conf("""
        confs:
          store: [a, b]
          dask: {address: 8786}
          envs: {dev: }
        flows:
          main: {steps: {s: [a]}}
    """)
    assert sorted(strs(problems)) == [
        f"{FILE}:2:10: confs.store: must be a string, not a list",
        f"{FILE}:3:19: confs.dask.address: must be a string, not int 8786",
    ]


def test_no_schema_rule_normalizes_the_document():
    """The schemas are checked without cerberus' normalization (its pass over a mapping
    cost ~2 ms per process entry): a rule that normalizes would be silently ignored, so
    none may be there."""
    from normandy_core.config import _schema

    normalizing = {"default", "default_setter", "coerce", "rename", "rename_handler"}
    normalizing |= {"purge_unknown", "purge_readonly"}
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            found.update(normalizing & set(node))
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    for name in dir(_schema):
        if name.isupper() and isinstance(getattr(_schema, name), dict):
            walk(getattr(_schema, name))
    assert not found


def test_a_configuration_that_passed_its_schema_is_not_checked_again_until_it_changes(
    load_conf: LoadConf, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a run made the state folder, what passed the schema is kept there: the next
    command reads the same file without cerberus (its validator checks its own schema
    first, 40 ms of every command). An edit is checked again, a bad one refused."""
    import cerberus

    from normandy_core.config import _schema

    text = """
        confs:
          workers: 2
          envs: {dev: {}}
        flows:
          main:
            steps:
              s1:
                extract: {retries: 2}
    """
    config, problems = load_conf(text)  # no state folder yet: checked, nothing kept
    assert config is not None and problems == []
    assert not (project_dir / ".normandy" / "checked.json").exists()
    (project_dir / ".normandy").mkdir()
    load_conf(text)
    assert (project_dir / ".normandy" / "checked.json").is_file()

    built: list[object] = []
    real = cerberus.Validator

    def counted(*args: object, **kwargs: object) -> object:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cerberus, "Validator", counted)
    _schema._validators.clear()
    config, problems = load_conf(text)
    assert config is not None and problems == [] and built == []  # kept: not checked
    config, problems = load_conf(text.replace("retries: 2", "retries: two"))
    assert built and config is not None  # changed: checked, and refused
    assert strs(problems) == [
        "pipeline/pipeline_conf.yml:8:28: flows.main.steps.s1.extract.retries: must be an "
        "integer, not str 'two'"
    ]
    built.clear()
    _schema._validators.clear()
    load_conf(text.replace("retries: 2", "retries: 2.0"))  # another type: checked again
    assert built
    built.clear()
    _schema._validators.clear()
    # put back after the test: keys made with the stamp faked below must not outlive it
    monkeypatch.setattr(_schema, "_schema_keys", {})
    real_stamp = _schema._cerberus_stamp()
    assert real_stamp is not None and real_stamp[0].endswith("__init__.py")
    monkeypatch.setattr(_schema, "_cerberus_stamp", lambda: (real_stamp[0], 1, 2))
    load_conf(text)  # another cerberus installed: what passed before is checked again
    assert built


def test_a_configuration_that_passed_before_is_read_without_importing_cerberus(
    tmp_path: Path,
) -> None:
    """cerberus is imported where a node is validated, not by reading a configuration
    kept as passed (13 ms of every command; 50 ms for ``normandy ui``, whose only other
    use of ``importlib.metadata`` it was)."""
    _small_project(tmp_path)
    (tmp_path / ".normandy").mkdir()
    seen = [_read_imports_cerberus(tmp_path) for _ in range(2)]
    assert seen == [True, False]  # checked, then kept as passed


def _small_project(root: Path) -> None:
    (root / "pipeline").mkdir()
    (root / "pipeline" / "pipeline_conf.yml").write_text(
        "confs:\n  envs: {dev: {}}\nflows:\n  main:\n    steps:\n      s1: [extract]\n"
    )


def _read_imports_cerberus(root: Path) -> bool:
    """Whether reading ``root``'s configuration, in a new process, imports cerberus (it
    checks what was not kept as passed)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from normandy_core.config import read_config\n"
        "config, problems = read_config(Path(sys.argv[1]))\n"
        "assert config is not None and not problems, problems\n"
        "print('cerberus' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {"True": True, "False": False}[found]


def test_a_projects_first_run_keeps_its_configuration_as_passed(tmp_path: Path) -> None:
    """A fresh project has no state folder when its configuration is read: what passed
    is kept until a run has made the folder (:func:`save_checked`), so that the command
    after a project's first run does not check it all again (a rerun of 2,000 reused
    tasks spent a tenth of its time in cerberus). Nothing makes the folder for it."""
    from normandy_core.config import save_checked

    _small_project(tmp_path)
    config, problems = read_config(tmp_path)
    assert config is not None and not problems
    save_checked()
    assert not (tmp_path / ".normandy").exists()  # not made for this
    (tmp_path / ".normandy").mkdir()  # as a run makes it
    save_checked()
    assert (tmp_path / ".normandy" / "checked.json").is_file()
    assert not _read_imports_cerberus(tmp_path)
