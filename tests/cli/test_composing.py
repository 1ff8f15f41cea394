"""Composing real projects (SPEC 20, issue 26), end to end with the real command: params
given as arguments, nested ``--param``, env params, variadic processes and templates —
shown by ``--dry-run``, ``graph`` and the report, and counted by reuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

VARIADIC = """
def spine():
    return [{"id": 1}, {"id": 2}, {"id": 3}]


def part_a():
    return [{"id": 1, "price": 1.0}, {"id": 2, "price": 2.0}, {"id": 3, "price": 3.0}]


def part_b():
    return [{"id": 1, "rating": 0.1}, {"id": 2, "rating": 0.2}, {"id": 3, "rating": 0.3}]


def joiner(spine_df, *dfs):
    rows = {r["id"]: dict(r) for r in spine_df}
    for df in dfs:
        for r in df:
            rows[r["id"]].update(r)
    return list(rows.values())


def total(table):
    return sum(r["price"] for r in table)
"""

VARIADIC_CONF = """
confs:
  workers: 2
  processes:
    spine: procs:spine
    part_a: procs:part_a
    part_b: procs:part_b
    joiner: procs:joiner
    total: procs:total
  envs: {dev: {}}
flows:
  main:
    tags: [default]
    steps:
      load:
        spine: {outputs: spine_df}
        part_a: {outputs: a}
        part_b: {outputs: b}
      join:
        joiner: {inputs: [spine_df, a, b], outputs: table}
      use:
        total: {outputs: price_total}
"""


def test_a_variadic_process_whose_inputs_it_cannot_bind_is_refused(normandy, make_project):
    """Issue 26, as reported: ``joiner(spine_df, *dfs)`` with its inputs listed passed
    ``validate`` (``ok``), got ``spine_df`` alone, and the failure surfaced later as a
    ``KeyError: 'price'``. Now ``validate`` and ``run`` refuse it, saying how to map it."""
    root = make_project(VARIADIC_CONF, {"procs.py": VARIADIC})
    for command in ("validate", "run"):
        result = normandy(command, cwd=root)
        assert result.returncode == 2, result.output
        assert (
            "pipeline/pipeline_conf.yml:19:18: flows.main.steps.join.joiner.inputs: process "
            "'joiner' takes *dfs, to which nothing is mapped, and its entry lists inputs that "
            "no parameter of it takes (a, b)"
        ) in result.stderr
        assert "give them to *dfs: inputs: {spine_df: spine_df, dfs: [a, b]}" in result.stderr
    assert not (root / "logs").exists()  # nothing ran


@pytest.mark.parametrize("executor", ["local", "serial", "dask"])
def test_a_list_mapped_to_a_star_parameter_is_spread(
    normandy, make_project, executor_args, executor
):
    conf = VARIADIC_CONF.replace(
        "inputs: [spine_df, a, b]", "inputs: {spine_df: spine_df, dfs: [a, b]}"
    )
    root = make_project(conf, {"procs.py": VARIADIC})
    result = normandy("run", "--no-progress", *executor_args(executor), cwd=root)
    assert result.returncode == 0, result.output
    load = "normandy_core.load"
    shown = normandy_python(
        f"import normandy_core; print({load}('table'), {load}('price_total'))", root
    )
    assert shown == (
        "[{'id': 1, 'price': 1.0, 'rating': 0.1}, {'id': 2, 'price': 2.0, 'rating': 0.2}, "
        "{'id': 3, 'price': 3.0, 'rating': 0.3}] 6.0"
    )


def normandy_python(code: str, root: Path) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


PROCS = """
import json
from pathlib import Path


def load_companies():
    return [{"id": i, "rating": f"{50 + i}"} for i in range(1, 21)]


def load_shuttles():
    return [{"id": i, "price": 100.0 + i} for i in range(1, 21)]


def load_reviews():
    return [{"id": i, "score": i % 5} for i in range(1, 21)]


def apply_types(rows, columns_as_floats):
    return [{k: float(v) if k in columns_as_floats else v for k, v in r.items()} for r in rows]


def joiner(spine_df, *dfs):
    rows = {r["id"]: dict(r) for r in spine_df}
    for df in dfs:
        for r in df:
            rows[r["id"]].update(r)
    return list(rows.values())


def split_data(data, parameters):
    cut = round(len(data) * (1 - parameters["test_size"]))
    return data[:cut], data[cut:]


def train(train_rows, alpha=1.0):
    return {"alpha": alpha, "n_train": len(train_rows)}


def evaluate(model, test_rows):
    return {**model, "n_test": len(test_rows)}


def report(pipe, *metrics, **named):
    out = Path(pipe.path) / "out"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps({"metrics": metrics, "named": named}))
"""

CONF = """
confs:
  workers: 2
  cache: true
  processes:
    load_companies: procs:load_companies
    load_shuttles: procs:load_shuttles
    load_reviews: procs:load_reviews
    apply_types: procs:apply_types
    joiner: procs:joiner
    split_data: procs:split_data
    train: procs:train
    evaluate: procs:evaluate
    report: procs:report
  envs:
    dev: {}
    prod:
      params:
        split_options: {test_size: 0.5}
templates:
  train_evaluation:
    params: {alpha: 1.0}
    steps:
      split:
        split_data:
          inputs: {data: table, parameters: params.split_options}
          outputs: [train_rows, test_rows]
      train:
        train: {inputs: {alpha: params.alpha}, outputs: model}
      evaluate:
        evaluate: {outputs: metrics}
flows:
  modelling:
    tags: [default]
    params:
      columns_as_floats: [rating]
      split_options: {test_size: 0.25, random_state: 3}
    steps:
      load:
        load_companies: {outputs: companies}
        load_shuttles: {outputs: shuttles}
        load_reviews: {outputs: reviews}
      types:
        apply_types:
          inputs: {rows: companies, columns_as_floats: params.columns_as_floats}
          outputs: typed_companies
      join:
        joiner: {inputs: {spine_df: shuttles, dfs: [typed_companies, reviews]}, outputs: table}
      linear:
        use: train_evaluation
        inputs: {table: table}
        outputs: {metrics: linear_metrics}
      forest:
        use: train_evaluation
        namespace: rf
        params: {alpha: 3.0}
        inputs: {table: table}
      report:
        report:
          inputs: {metrics: [linear_metrics, rf.metrics], named: {rows: table}}
          cache: false
"""


def test_a_composed_project_runs_shows_its_expansion_and_reuses(normandy, make_project):
    root = make_project(CONF, {"procs.py": PROCS})
    args = ("--env", "prod", "--param", "split_options.test_size=0.4")
    result = normandy("run", "--no-progress", *args, cwd=root)
    assert result.returncode == 0, result.output
    report = json.loads((root / "out" / "report.json").read_text())
    # --param over the env's params over the flow's; the use's params over the template's
    assert report["metrics"] == [
        {"alpha": 1.0, "n_train": 12, "n_test": 8},
        {"alpha": 3.0, "n_train": 12, "n_test": 8},
    ]
    row = report["named"]["rows"][0]
    assert row == {"id": 1, "price": 101.0, "rating": 51.0, "score": 1}  # typed, joined

    shown = normandy("run", "--dry-run", "--env", "prod", cwd=root).stdout
    assert 'env prod params, over every entry\'s (--param over them): {"split_options": ' in shown
    assert (
        "  step 4 linear.split: 1 in parallel  (template train_evaluation, namespace linear)\n"
        '    - split_data  params={"alpha": 1.0, "columns_as_floats": ["rating"], '
        '"split_options": {"random_state": 3, "test_size": 0.5}}\n'
        "      inputs: parameters=params.split_options\n"
    ) in shown
    graph = normandy("graph", cwd=root).stdout
    assert (
        "├─ forest.train  (template train_evaluation)\n│   • train\n│       in:  rf.train_rows"
        in graph
    )
    written = normandy("report", cwd=root).stdout.strip()
    html = (root / written).read_text()
    assert "forest.evaluate" in html and "linear.split" in html

    # a task given params.split_options reruns when that value changes, and only then
    explained = normandy("run", "--no-progress", "--explain", *args, cwd=root).stderr
    decided = dict(re.findall(r"explain: modelling\.([\w.]+): (\w+)", explained))
    assert decided["linear.split.split_data"] == decided["forest.train.train"] == "reuse"
    assert decided["report.report"] == "run"
    changed = ("--env", "prod", "--param", "split_options.test_size=0.3")
    explained = normandy("run", "--no-progress", "--explain", *changed, cwd=root).stderr
    assert (
        "explain: modelling.linear.split.split_data: run (params changed (split_options: "
        '{"random_state": 3, "test_size": 0.4} → {"random_state": 3, "test_size": 0.3}))'
    ) in explained
    assert json.loads((root / "out" / "report.json").read_text())["metrics"][0]["n_test"] == 6
    # another param's change reruns the tasks whose arguments take it, not the others
    other = (*changed, "--param", "alpha=2.0")
    explained = normandy("run", "--no-progress", "--explain", *other, cwd=root).stderr
    decided = dict(re.findall(r"explain: modelling\.([\w.]+): (\w+)", explained))
    assert decided["linear.split.split_data"] == decided["forest.split.split_data"] == "reuse"
    assert decided["linear.train.train"] == decided["forest.train.train"] == "run"
