"""The data flow checked before a run (SPEC 12, 20), on plans of real configurations and
signatures given as data: params given as arguments, variadic processes, templates'
variables — every problem positioned, with the way out."""

from __future__ import annotations

from collections.abc import Callable

from normandy_core.binding import Parameter, Signature
from normandy_core.config import ProjectConfig
from normandy_core.dataflow import check_data_flow, data_of
from normandy_core.plan import Selection, build_plan

GoodConf = Callable[..., ProjectConfig]

SIGNATURES = {
    "load": Signature(()),
    "split_data": Signature((), (Parameter("data", False), Parameter("parameters", False))),
    "train": Signature((), (Parameter("X_train", False), Parameter("alpha", True))),
    "joiner": Signature((), (Parameter("spine_df", False),), star="dfs"),
    "keywords": Signature(("pipe", "log", "params"), (Parameter("spine_df", False),), "", "kw"),
}


def problems_of(config: ProjectConfig, env: str | None = None) -> list[str]:
    plan = build_plan(config, Selection(flows=tuple(config.flows)), env)
    return [str(p) for p in check_data_flow(plan, SIGNATURES.get)]


def conf(steps: str) -> str:
    return (
        """
confs:
  envs:
    dev: {}
    prod: {params: {split_options: {test_sise: 0.4}}}
flows:
  f:
    params: {split_options: {test_size: 0.2}, model: {alpha: 0.5}}
    steps:
      load:
        load: {outputs: [table, a, b, spine_df]}
"""
        + steps
    )


def test_params_given_as_arguments_are_checked_with_a_did_you_mean(good_conf: GoodConf) -> None:
    config = good_conf(
        conf(
            """
      split:
        split_data: {inputs: {data: table, parameters: params}}
        train:
          inputs: {X_train: table, alpha: params.model.alpah}
"""
        )
    )
    assert problems_of(config) == [
        "pipeline/pipeline_conf.yml:15:36: flows.f.steps.split.train.inputs.alpha: "
        "params.model.alpah: params.model has no key 'alpah' (did you mean 'alpha'? its "
        "keys: alpha)"
    ]
    good = good_conf(
        conf("\n      split:\n        train: {inputs: {alpha: params.model.alpha, X_train: a}}\n")
    )
    assert problems_of(good) == []


def test_a_key_path_is_checked_against_the_params_of_the_env_used(good_conf: GoodConf) -> None:
    config = good_conf(
        conf(
            """
      split:
        split_data: {inputs: {data: table, parameters: params.split_options.test_sise}}
"""
        )
    )
    assert "has no key 'test_sise'" in problems_of(config)[0]
    assert problems_of(config, "prod") == []  # prod's params have it


def test_a_star_parameter_with_inputs_it_cannot_bind_is_an_error(good_conf: GoodConf) -> None:
    """The port of issue 26: ``joiner(spine_df, *dfs)`` with its inputs listed passed
    ``validate`` and got ``spine_df`` alone."""
    config = good_conf(conf("\n      join:\n        joiner: {inputs: [spine_df, a, b]}\n"))
    (problem,) = problems_of(config)
    assert problem == (
        "pipeline/pipeline_conf.yml:13:18: flows.f.steps.join.joiner.inputs: process 'joiner' "
        "takes *dfs, to which nothing is mapped, and its entry lists inputs that no "
        "parameter of it takes (a, b): a list of inputs only declares variables read "
        "through pipe.vars, so *dfs would get nothing; give them to *dfs: inputs: "
        "{spine_df: spine_df, dfs: [a, b]} (or map dfs: [] where the process reads them "
        "itself through pipe.vars)"
    )
    mapped = good_conf(
        conf("\n      join:\n        joiner: {inputs: {spine_df: spine_df, dfs: [a, b]}}\n")
    )
    assert problems_of(mapped) == []
    plan = build_plan(mapped, Selection(flows=("f",)))
    assert data_of(plan, SIGNATURES.get)["f.join.joiner"][0] == ("spine_df", "a", "b")
    # what is listed, a variable that does not exist, is still said as such
    missing = good_conf(
        conf("\n      join:\n        joiner: {inputs: {spine_df: spine_df, dfs: [a, c]}}\n")
    )
    assert "process 'joiner' takes 'c' in 'dfs', which no step" in problems_of(missing)[0]


def test_what_a_star_or_star_star_parameter_takes(good_conf: GoodConf) -> None:
    config = good_conf(
        conf(
            """
      join:
        joiner: {inputs: {spine_df: spine_df, dfs: {x: a}}}
        keywords: {inputs: {spine_df: spine_df, kw: [a, b]}}
      again:
        keywords: {inputs: {spine_df: spine_df, other: a}}
      more:
        keywords: {inputs: {spine_df: spine_df, kw: {spine_df: a, log: b}}}
"""
        )
    )
    found = problems_of(config)
    assert "inputs.dfs: *dfs takes a list of variables (dfs: [A, B])" in found[0]
    assert "inputs.kw: **kw takes keywords: a mapping of names to variables" in found[1]
    assert "'other' is not a parameter of process 'keywords'" in found[2]
    assert found[2].endswith("; to give it to **kw: inputs: {kw: {other: VARIABLE}}")
    assert "**kw cannot take 'spine_df': the process has a parameter 'spine_df'" in found[3]
    assert "**kw cannot take 'log'" in found[4]
    assert len(found) == 5
