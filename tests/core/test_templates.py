"""Templates (SPEC 20): a use expands in place into the template's steps, its tasks
reading and writing its namespace's variables but those it maps, its params over the
template's; problems point at the template's lines and say through which use."""

from __future__ import annotations

from collections.abc import Callable

from normandy_core.binding import FromParams, Gathered, Parameter, Signature
from normandy_core.config import ProjectConfig
from normandy_core.dataflow import check_data_flow
from normandy_core.errors import Problem
from normandy_core.plan import Selection, build_plan

GoodConf = Callable[..., ProjectConfig]
LoadConf = Callable[..., "tuple[ProjectConfig | None, list[Problem]]"]

CONF = """\
confs:
  envs: {dev: {}}
templates:
  train_evaluation:
    params: {model: {kind: linear, alpha: 1.0}, tag: t}
    steps:
      split:
        split_data:
          inputs: {data: table, parameters: params.split_options}
          outputs: [X_train, X_test]
      train:
        train: {params: {tag: entry}, inputs: [extra], outputs: model}
      evaluate:
        evaluate: {inputs: {rows: [X_test, X_train]}, outputs: metrics}
flows:
  modelling:
    params: {split_options: {test_size: 0.2}}
    steps:
      load:
        load: {outputs: [model_input_table, extra]}
      linear:
        use: train_evaluation
        inputs: {table: model_input_table, extra: extra}
        outputs: {metrics: linear_metrics}
      forest:
        use: train_evaluation
        namespace: rf
        params: {model: {kind: forest}}
        inputs: {table: model_input_table, extra: extra}
"""

SIGNATURES = {
    "load": Signature(()),
    "split_data": Signature((), (Parameter("data", False), Parameter("parameters", False))),
    "train": Signature(("pipe",), (Parameter("X_train", False),)),
    "evaluate": Signature((), (Parameter("model", False), Parameter("rows", False))),
}


def test_a_use_expands_in_place_into_the_template_s_steps(good_conf: GoodConf) -> None:
    config = good_conf(CONF)
    steps = config.flows["modelling"].steps
    assert [s.name for s in steps] == [
        "load",
        "linear.split",
        "linear.train",
        "linear.evaluate",
        "forest.split",
        "forest.train",
        "forest.evaluate",
    ]
    split, train, evaluate = (s.entries[0] for s in steps[1:4])
    # the namespace defaults to the step's name; what the use maps keeps the flow's name
    assert dict(split.inputs) == {
        "data": "model_input_table",
        "parameters": FromParams(("split_options",)),
    }
    assert split.outputs is not None and split.outputs.names == ("linear.X_train", "linear.X_test")
    assert train.reads == ("extra",)
    assert evaluate.inputs["rows"] == Gathered(("linear.X_test", "linear.X_train"))
    assert evaluate.outputs is not None and evaluate.outputs.names == ("linear_metrics",)
    # a parameter inputs does not map reads its name in the use's scope
    assert train.scope is not None and train.scope.variable("X_train") == "linear.X_train"
    forest_train = steps[5].entries[0]
    assert forest_train.reads == ("extra",)  # mapped by the use
    assert forest_train.scope is not None and forest_train.scope.namespace == "rf"
    assert forest_train.scope.variable("model") == "rf.model"


def test_params_template_then_entry_then_use_then_flow_under_them(good_conf: GoodConf) -> None:
    plan = build_plan(good_conf(CONF), Selection(flows=("modelling",)))
    params = {t.key: dict(t.params) for t in plan.tasks()}
    assert params["modelling.linear.split.split_data"] == {
        "split_options": {"test_size": 0.2},
        "model": {"kind": "linear", "alpha": 1.0},
        "tag": "t",
    }
    assert params["modelling.linear.train.train"]["tag"] == "entry"
    # the use's params merge key by key into the template's
    assert params["modelling.forest.train.train"]["model"] == {"kind": "forest", "alpha": 1.0}
    shown = plan.to_dict()["flows"][0]["steps"][4]["tasks"][0]
    assert shown["template"] == {"use": "train_evaluation", "namespace": "rf"}
    assert shown["inputs"] == {"data": "model_input_table", "parameters": "params.split_options"}


def test_the_expansion_checks_out_and_its_problems_say_through_which_use(
    good_conf: GoodConf,
) -> None:
    config = good_conf(CONF)
    plan = build_plan(config, Selection(flows=("modelling",)))
    assert check_data_flow(plan, SIGNATURES.get) == []
    broken = good_conf(
        CONF.replace(
            "forest}}\n        inputs: {table: model_input_table, extra: extra}",
            "forest}}\n        inputs: {tabel: x}",
        )
    )
    plan = build_plan(broken, Selection(flows=("modelling",)))
    found = [str(p) for p in check_data_flow(plan, SIGNATURES.get)]
    assert found == [
        # the template's line, through the use that has the problem
        "pipeline/pipeline_conf.yml:9:20: templates.train_evaluation.steps.split.split_data"
        ".inputs.data: process 'split_data' takes 'data' (variable 'rf.table'), which no step "
        "of flow 'modelling' before 'forest.split' outputs; the variables output before it: "
        "model_input_table (by modelling.load.load), extra (by modelling.load.load), "
        "linear.X_train (by modelling.linear.split.split_data), linear.X_test (by "
        "modelling.linear.split.split_data), linear.model (by modelling.linear.train.train), "
        "linear_metrics (by modelling.linear.evaluate.evaluate); declare 'rf.table' in the "
        "outputs of the task that makes it, map 'data' to another variable with inputs: "
        "{data: NAME}, or give it a default (in template 'train_evaluation', used by step "
        "'forest' at line 25)",
        "pipeline/pipeline_conf.yml:12:39: templates.train_evaluation.steps.train.train.inputs: "
        "'train' reads 'rf.extra' (inputs), which no step of flow 'modelling' before "
        "'forest.train' outputs; did you mean 'extra' (output by modelling.load.load)? "
        "Otherwise declare 'rf.extra' in the outputs of the task that makes it (in template "
        "'train_evaluation', used by step 'forest' at line 25)",
        # the use's own line for what it maps
        "pipeline/pipeline_conf.yml:29:18: flows.modelling.steps.forest.inputs.tabel: "
        "template 'train_evaluation' has no variable 'tabel'; did you mean 'table'? Its "
        "variables: X_test, X_train, extra, metrics, model, table",
    ]


def test_what_is_wrong_with_a_use(load_conf: LoadConf) -> None:
    text = (
        CONF.replace("use: train_evaluation\n        namespace: rf", "use: train_evaluaton")
        .replace(
            "inputs: {table: model_input_table, extra: extra}\n",
            "inputs: {table: model_input_table, extra: extra}\n        namespace: params\n",
            1,
        )
        .replace(
            "outputs: {metrics: linear_metrics}",
            "outputs: {metrics: linear_metrics, table: other}\n        colour: blue",
        )
        .replace("      train:\n", "      nested: {use: train_evaluation}\n      train:\n")
    )
    nested = (
        "pipeline/pipeline_conf.yml:11:16: templates.train_evaluation.steps.nested.use: a "
        "template cannot use a template; write its steps here, or use both templates from "
        "the flow, one after the other"
    )
    _config, problems = load_conf(text)
    assert [str(p) for p in problems] == [
        nested,
        "pipeline/pipeline_conf.yml:27:9: flows.modelling.steps.linear.colour: unknown key "
        "'colour'; expected one of: inputs, namespace, outputs, params, use",
        "pipeline/pipeline_conf.yml:29:14: flows.modelling.steps.forest.use: unknown template "
        "'train_evaluaton'; did you mean 'train_evaluation'? The templates are: "
        "train_evaluation",
    ]
    _config, problems = load_conf(text.replace("        colour: blue\n", ""))
    assert [str(p) for p in problems] == [
        nested,
        "pipeline/pipeline_conf.yml:25:20: flows.modelling.steps.linear.namespace: invalid "
        "namespace 'params': it starts the names of the template's variables "
        "(NAMESPACE.variable): use letters, digits, '_', '.' and '-', and not 'params'",
        "pipeline/pipeline_conf.yml:28:14: flows.modelling.steps.forest.use: unknown template "
        "'train_evaluaton'; did you mean 'train_evaluation'? The templates are: "
        "train_evaluation",
    ]
    text = CONF.replace(
        "outputs: {metrics: linear_metrics}", "outputs: {metrics: linear_metrics, table: x}"
    )
    _config, problems = load_conf(text)
    assert [str(p) for p in problems] == [
        "pipeline/pipeline_conf.yml:24:51: flows.modelling.steps.linear.outputs.table: 'table' "
        "is mapped to 'model_input_table' by inputs and to 'x' by outputs: a template "
        "variable is one variable of the flow"
    ]
