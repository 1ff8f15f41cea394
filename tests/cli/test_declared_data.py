"""Declared data (SPEC 4, 12), end to end: plain functions as processes (inputs by
parameter name, outputs from return values), task names, the data flow checked before
anything runs, lineage in the history — with the real command, under every executor."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

EXECUTORS = ["local", "serial", "dask"]

# A module of plain functions: no Normandy in it at all.
PROCS = """
from pathlib import Path

import pandas as pd


def load_companies():
    return pd.DataFrame({"id": [1, 2, 3, 4], "rating": ["90%", "80%", None, "70%"]})


def load_shuttles():
    return pd.DataFrame({"id": [10, 11, 12, 13], "company_id": [1, 2, 3, 4],
                         "price": [100.0, 250.0, 175.0, 300.0]})


def load_reviews():
    return pd.DataFrame({"shuttle_id": [10, 11, 12, 13], "score": [4.5, 3.0, 5.0, 4.0]})


def preprocess_companies(companies: pd.DataFrame) -> pd.DataFrame:
    out = companies.dropna().copy()
    out["rating"] = out["rating"].str.rstrip("%").astype(float) / 100
    return out


def create_model_input_table(
    shuttles: pd.DataFrame, companies: pd.DataFrame, reviews: pd.DataFrame
) -> pd.DataFrame:
    table = shuttles.merge(companies, left_on="company_id", right_on="id", suffixes=("", "_c"))
    table = table.merge(reviews, left_on="id", right_on="shuttle_id")
    return table[["id", "price", "rating", "score"]].reset_index(drop=True)


def split_data(table, params):
    cut = int(len(table) * params["train_share"])
    return table.iloc[:cut], table.iloc[cut:]


def metrics(table):
    return {"rows": len(table), "mean": float(table["price"].mean())}


def write_csv(frame, params, root_hint=None):
    path = Path(params["root"]) / params["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
"""

CONF = """
confs:
  workers: 2
  processes:
    load_companies: procs:load_companies
    load_shuttles: procs:load_shuttles
    load_reviews: procs:load_reviews
    preprocess_companies: procs:preprocess_companies
    create_model_input_table: procs:create_model_input_table
    split_data: procs:split_data
    metrics: procs:metrics
    write_csv: procs:write_csv
  envs:
    dev: {}
flows:
  spaceflights:
    tags: [default]
    params: {train_share: 0.5, root: ROOT}
    steps:
      load:
        load_companies: {outputs: raw_companies}
        load_shuttles: {outputs: shuttles}
        load_reviews: {outputs: reviews}
      preprocess:
        preprocess_companies:
          inputs: {companies: raw_companies}
          outputs: companies
      join:
        create_model_input_table: {outputs: model_input_table}
      split:
        split_data:
          inputs: {table: model_input_table}
          outputs: [X_train, X_test]
        summary:
          process: metrics
          inputs: {table: model_input_table}
          outputs: {n_rows: rows, mean_price: mean}
      save:
        - save_train: {process: write_csv, inputs: {frame: X_train}, params: {path: out/train.csv}}
        - save_test: {process: write_csv, inputs: {frame: X_test}, params: {path: out/test.csv}}
"""


def expected_table() -> pd.DataFrame:
    """What the pipeline computes, computed here with pandas alone."""
    ns: dict[str, object] = {}
    exec(textwrap.dedent(PROCS), ns)  # noqa: S102 - the same functions, called directly
    companies = ns["preprocess_companies"](ns["load_companies"]())  # type: ignore[operator]
    return ns["create_model_input_table"](  # type: ignore[operator,no-any-return]
        ns["load_shuttles"](),
        companies,
        ns["load_reviews"](),  # type: ignore[operator]
    )


@pytest.fixture
def project(make_project):
    def make(conf: str = CONF) -> Path:
        root = make_project(conf, {"procs.py": PROCS})
        path = root / "pipeline" / "pipeline_conf.yml"
        path.write_text(path.read_text().replace("ROOT", str(root)))
        return root

    return make


def run_json(normandy, root: Path, *args: str, code: int = 0) -> dict:
    result = normandy("run", "--json", *args, cwd=root)
    assert result.returncode == code, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_plain_functions_run_as_processes(normandy, project, executor, executor_args):
    root = project()
    summary = run_json(normandy, root, *executor_args(executor))
    assert summary["status"] == "succeeded"
    tasks = {t["task"]: t for t in summary["tasks"]}
    assert set(tasks) >= {"summary", "save_train", "save_test", "split_data"}
    table = expected_table()
    train = pd.read_csv(root / "out" / "train.csv")
    test = pd.read_csv(root / "out" / "test.csv")
    pd.testing.assert_frame_equal(pd.concat([train, test], ignore_index=True), table)
    assert len(train) == len(table) // 2

    shown = json.loads(normandy("runs", "last", "--json", cwd=root).stdout)
    lineage = {t["task"]: t for t in shown["tasks"]}
    join = lineage["create_model_input_table"]
    assert sorted(r["name"] for r in join["reads"]) == ["companies", "reviews", "shuttles"]
    [written] = join["writes"]
    assert written["name"] == "model_input_table"
    assert written["type"] in ("pandas.DataFrame", "pandas.core.frame.DataFrame")
    assert written["size"] > 0 and len(written["hash"]) == 32
    # what one task wrote is what the next read: the same content hash
    [read] = [r for r in lineage["split_data"]["reads"] if r["name"] == "model_input_table"]
    assert read["hash"] == written["hash"]
    assert {w["name"] for w in lineage["summary"]["writes"]} == {"n_rows", "mean_price"}


def test_outputs_are_variables_read_by_later_steps_either_way(normandy, project, tmp_path):
    """A mapping's keys, a tuple unpacked: the variables are those of pipe.vars too."""
    root = project()
    run_json(normandy, root, "--executor", "serial")
    code = textwrap.dedent(
        f"""
        import json
        from normandy_core import ProjectNotFoundError, load
        try:
            load("n_rows")  # from outside the project: Python's words, not the CLI's
        except ProjectNotFoundError as exc:
            outside = str(exc)
        print(json.dumps({{
            "rows": load("n_rows", project={str(root)!r}),
            "mean": load("mean_price", project={str(root)!r}),
            "train": len(load("X_train", project={str(root)!r})),
            "outside": outside,
        }}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == 0, out.stderr
    table = expected_table()
    loaded = json.loads(out.stdout)
    assert loaded.pop("outside").endswith(
        "call it from inside the project's folder, or name it, "
        "load(name, project='path/to/project')"
    )
    assert loaded == {
        "rows": len(table),
        "mean": float(table["price"].mean()),
        "train": len(table) // 2,
    }


# -- problems found before anything runs ----------------------------------------------------


def problems_of(normandy, root: Path) -> list[str]:
    """The problems every checking command reports, the same: validate, run, run
    --dry-run, graph."""
    outputs = []
    for args in (("validate",), ("run",), ("run", "--dry-run"), ("graph",)):
        result = normandy(*args, cwd=root)
        assert result.returncode == 2, (args, result.output)
        assert "Traceback" not in result.output
        outputs.append([line for line in result.stderr.splitlines() if ".yml:" in line])
    assert all(found == outputs[0] for found in outputs), outputs
    assert not (root / "out").exists() and not (root / ".normandy" / "runs").exists()
    return outputs[0]


def test_a_misspelt_input_is_found_before_anything_runs(normandy, project):
    root = project(
        CONF.replace("inputs: {companies: raw_companies}", "inputs: {companies: raw_company}")
    )
    [problem] = problems_of(normandy, root)
    assert problem == (
        "pipeline/pipeline_conf.yml:25:20: flows.spaceflights.steps.preprocess."
        "preprocess_companies.inputs.companies: process 'preprocess_companies' takes "
        "'companies' (variable 'raw_company'), which no step of flow 'spaceflights' before "
        "'preprocess' outputs; did you mean 'raw_companies' (output by "
        "spaceflights.load.load_companies)? Otherwise declare 'raw_company' in the outputs of "
        "the task that makes it, map 'companies' to another variable with inputs: "
        "{companies: NAME}, or give it a default"
    )


def test_every_data_flow_problem_at_once(normandy, project):
    conf = (
        CONF.replace("load_reviews: {outputs: reviews}", "load_reviews: {outputs: shuttles}")
        .replace(
            "inputs: {table: model_input_table}\n          outputs: [X_train",
            "inputs: {tabel: model_input_table}\n          outputs: [X_train",
        )
        .replace(
            "- save_test: {process: write_csv, inputs: {frame: X_test}",
            "- save_test: {process: write_csv, inputs: [X_tset]",
        )
    )
    root = project(conf)
    problems = problems_of(normandy, root)
    joined = "\n".join(problems)
    assert (
        "output 'shuttles' is also declared by spaceflights.load.load_shuttles, in the same step"
        in joined
    )
    assert "'tabel' is not a parameter of process 'split_data' (its inputs: table)" in joined
    assert "process 'split_data' takes 'table', which no step" in joined
    assert (
        "'save_test' reads 'X_tset' (inputs), which no step of flow 'spaceflights' before "
        "'save' outputs; did you mean 'X_test'" in joined
    )
    # create_model_input_table takes 'reviews', which is no longer output
    assert "process 'create_model_input_table' takes 'reviews'" in joined
    # save_test lists what it reads: its parameter 'frame' is then looked up by name
    assert "process 'write_csv' takes 'frame', which no step" in joined
    assert len(problems) == 6


def test_one_process_twice_in_a_step_under_task_names(normandy, project):
    """A task name twice in a step, and a data-flow problem of the same file: both at once
    (the data flow's came only once the first was fixed; issue 23)."""
    root = project(
        CONF.replace("- save_test: {process: write_csv", "- save_train: {process: write_csv")
        .replace("inputs: {companies: raw_companies}", "inputs: {companies: raw_company}")
    )
    misspelt, twice = problems_of(normandy, root)  # in the order of the file
    assert "task 'save_train' appears twice in step 'save'" in twice
    assert "preprocess_companies.inputs.companies: process 'preprocess_companies' takes " in (
        misspelt
    )


def test_a_return_that_does_not_fit_fails_its_task(normandy, project):
    conf = CONF.replace("outputs: [X_train, X_test]", "outputs: [X_train, X_test, X_valid]")
    root = project(conf)
    summary = run_json(normandy, root, code=1)
    failing = {t["task"]: t for t in summary["tasks"]}["split_data"]
    assert failing["status"] == "failed"
    assert failing["error"]["type"] == "OutputError"
    assert failing["error"]["message"] == (
        "task spaceflights.split.split_data (process 'split_data'): outputs: "
        "[X_train, X_test, X_valid] takes 3 values; it returned 2"
    )
    assert summary["failing_task"] == "spaceflights.split.split_data"


# -- pictures and listings with data --------------------------------------------------------


def test_the_graph_draws_the_variables_between_tasks(normandy, project):
    root = project()

    def graph(fmt: str) -> str:
        result = normandy("graph", "--format", fmt, cwd=root)
        assert result.returncode == 0, result.output
        return result.stdout

    text = graph("text")
    assert (
        "• summary (metrics)\n│       in:  model_input_table\n│       out: n_rows, mean_price"
        in text
    )
    assert "in:  shuttles, companies, reviews" in text
    mermaid = graph("mermaid")
    assert 'v_spaceflights_model_input_table(["model_input_table"])' in mermaid
    assert (
        "t_spaceflights_join_create_model_input_table --> v_spaceflights_model_input_table"
        in mermaid
    )
    assert "v_spaceflights_model_input_table --> t_spaceflights_split_summary" in mermaid
    dot = graph("dot")
    assert '"var:spaceflights.X_test" [label="X_test", shape=note];' in dot
    assert '"var:spaceflights.X_test" -> "spaceflights.save.save_test";' in dot
    tasks = {
        t["name"]: t
        for f in json.loads(graph("json"))["flows"]
        for s in f["steps"]
        for t in s["tasks"]
    }
    assert tasks["summary"]["process"] == "metrics"
    assert tasks["summary"]["outputs"] == {"n_rows": "rows", "mean_price": "mean"}
    assert tasks["summary"]["reads"] == ["model_input_table"]
    assert tasks["split_data"]["writes"] == ["X_train", "X_test"]
    html = graph("html")
    assert html.count('class="var-node"') == 9
    assert html.count('class="data-edge"') == 9 + 8  # each written, each read


def test_vars_lists_a_runs_variables(normandy, project):
    root = project()
    run_id = run_json(normandy, root, "--executor", "serial")["run_id"]
    listed = json.loads(normandy("vars", "--json", cwd=root).stdout)
    by_name = {v["name"]: v for v in listed}
    assert set(by_name) == {
        "raw_companies",
        "shuttles",
        "reviews",
        "companies",
        "model_input_table",
        "X_train",
        "X_test",
        "n_rows",
        "mean_price",
    }
    assert by_name["n_rows"] == {
        "run": run_id,
        "flow": "spaceflights",
        "name": "n_rows",
        "task": "spaceflights.split.summary",
        "type": "builtins.int",
        "size": by_name["n_rows"]["size"],
        "cached_from": None,
    }
    table = normandy("vars", run_id, cwd=root)
    assert table.returncode == 0, table.output
    assert (
        "model_input_table" in table.stdout
        and "spaceflights.join.create_model_input_table" in table.stdout
    )
    assert normandy("vars", "--flow", "other", "--json", cwd=root).stdout.strip() == "[]"


# -- retries, tolerance and resume are unchanged with outputs -------------------------------

FLAKY = '''
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _count(name):
    path = HERE / f"count-{name}"
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


def numbers():
    if _count("numbers") == 1:
        raise RuntimeError("the first attempt fails")
    return [1, 2, 3]


def total(numbers):
    if not (HERE / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return sum(numbers)


def broken(numbers):
    return 1, 2


def report(total, shown=None):
    (HERE / "total.txt").write_text(f"{total} {shown}")
'''

FLAKY_CONF = """
confs:
  processes:
    numbers: flaky:numbers
    total: flaky:total
    broken: flaky:broken
    report: flaky:report
  envs: {dev: {}}
flows:
  f:
    tags: [default]
    steps:
      one:
        numbers: {outputs: numbers, retries: 1}
      two:
        total: {outputs: total}
        broken: {outputs: [a, b, c], error_tolerance: true}
      three:
        report:
"""


@pytest.mark.parametrize("executor", EXECUTORS)
def test_retries_tolerance_and_resume_with_outputs(
    normandy, make_project, executor, executor_args
):
    root = make_project(FLAKY_CONF, {"flaky.py": FLAKY})
    failed = run_json(normandy, root, *executor_args(executor), code=1)
    tasks = {t["task"]: t for t in failed["tasks"]}
    assert (tasks["numbers"]["status"], tasks["numbers"]["attempts"]) == ("succeeded", 2)
    assert tasks["broken"]["status"] == "failed" and tasks["broken"]["tolerated"]
    assert "takes 3 values; it returned 2" in tasks["broken"]["error"]["message"]
    assert tasks["total"]["status"] == "failed"
    (root / "fixed").write_text("")
    resumed = run_json(normandy, root, "--resume", failed["run_id"], *executor_args(executor))
    again = {t["task"]: t for t in resumed["tasks"]}
    assert again["numbers"]["resumed"] is True  # its output reused, not run again
    assert (root / "count-numbers").read_text() == "2"
    assert again["total"]["status"] == "succeeded"
    assert (root / "total.txt").read_text() == "6 None"  # an optional input left to its default
