"""Datasets end to end (SPEC 16), with the real command under every executor: inputs
loaded from and outputs saved to files with no reader or writer task, versions, a failed
task leaving the previous file, lineage in the history, ``normandy datasets``,
``--load-version``, the graph, ``normandy_core.load``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

EXECUTORS = ["local", "serial", "dask"]

TYPES = """
import json

from normandy_core.datasets import FileDataset


class JSONFile(FileDataset):
    def read(self, file):
        return json.loads(file.read())

    def write(self, data, file):
        file.write(json.dumps(data).encode())  # a set cannot be written: it fails half-way
"""

PROCS = """
def double(numbers, params):
    if params.get("bad"):
        return {1, 2}
    return [n * 2 for n in numbers]


def train(doubled):
    return {"weights": sum(doubled)}


def predict(model):
    return model["weights"]
"""

CONF = """
confs:
  workers: 2
  processes:
    double: procs:double
    train: procs:train
    predict: procs:predict
  datasets:
    numbers: {type: "dstypes:JSONFile", path: data/numbers.json}
    doubled: {type: "dstypes:JSONFile", path: "${env:OUT:out}/doubled.json"}
    model: {type: "dstypes:JSONFile", path: models/model.json, versioned: true}
  envs:
    dev: {}
    prod:
      datasets:
        numbers: {path: data/prod_numbers.json}
flows:
  make:
    tags: [default]
    steps:
      double:
        double: {outputs: doubled}
      train:
        train: {outputs: model}
  use:
    tags: [default, use]
    steps:
      predict:
        predict: {outputs: prediction}
"""


@pytest.fixture
def project(make_project) -> Path:
    root = make_project(
        CONF,
        {"procs.py": PROCS, "dstypes.py": TYPES, "data/numbers.json": "[1, 2, 3]"},
    )
    return root


def run(normandy, root: Path, *args: str, code: int = 0) -> dict:
    result = normandy("run", "--json", "--no-progress", *args, cwd=root)
    assert result.returncode == code, result.output
    return json.loads(result.stdout) if code in (0, 1) else {}


def lineage(normandy, root: Path) -> dict[str, list[dict]]:
    shown = json.loads(normandy("runs", "last", "--json", cwd=root).stdout)
    return {t["task"]: t["datasets"] for t in shown["tasks"]}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_inputs_and_outputs_named_like_datasets_are_files(
    normandy, project, executor, executor_args
):
    summary = run(normandy, project, *executor_args(executor))
    run_id = summary["run_id"]
    assert json.loads((project / "out" / "doubled.json").read_text()) == [2, 4, 6]
    version = project / "models" / "model.json" / run_id / "model.json"
    assert json.loads(version.read_text()) == {"weights": 12}

    seen = lineage(normandy, project)
    numbers = project / "data" / "numbers.json"
    [read] = [d for d in seen["double"] if d["direction"] == "read"]
    assert (read["name"], read["location"], read["size"]) == ("numbers", str(numbers), 9)
    assert read["hash"] == xxhash.xxh3_128(numbers.read_bytes()).hexdigest()
    [wrote] = [d for d in seen["train"] if d["direction"] == "write"]
    assert (wrote["name"], wrote["version"], wrote["location"]) == ("model", run_id, str(version))
    assert wrote["hash"] == xxhash.xxh3_128(version.read_bytes()).hexdigest()
    # a later flow reads what an earlier one wrote: the version of this run
    assert [(d["name"], d["version"]) for d in seen["predict"]] == [("model", run_id)]


def test_a_failed_task_leaves_the_previous_files_and_versions(normandy, project):
    first = run(normandy, project, "--flow", "make")["run_id"]
    doubled = project / "out" / "doubled.json"
    before = doubled.read_bytes()
    run(normandy, project, "--flow", "make", "--param", "bad=true", code=1)  # cannot be written
    assert doubled.read_bytes() == before
    assert sorted(p.name for p in doubled.parent.iterdir()) == ["doubled.json"]  # no temp file
    assert sorted(p.name for p in (project / "models" / "model.json").iterdir()) == [first]

    second = run(normandy, project, "--flow", "make")["run_id"]
    listed = json.loads(normandy("datasets", "--json", cwd=project).stdout)
    assert listed["env"] == "dev"
    by_name = {d["name"]: d for d in listed["datasets"]}
    assert by_name["model"]["version"] == second and by_name["model"]["written_run"] == second
    assert by_name["model"]["written_task"] == "make.train.train"
    assert by_name["doubled"]["path"] == "out/doubled.json" and by_name["doubled"]["exists"]
    assert by_name["numbers"]["written_run"] is None and by_name["numbers"]["size"] == 9
    prod = json.loads(normandy("datasets", "--json", "--env", "prod", cwd=project).stdout)
    [numbers] = [d for d in prod["datasets"] if d["name"] == "numbers"]
    assert (numbers["path"], numbers["exists"]) == ("data/prod_numbers.json", False)
    table = normandy("datasets", cwd=project).stdout
    assert "model" in table and f"{second} make.train.train" in table

    # an older version, by name; a bad one refused before running
    summary = run(normandy, project, "--flow", "use", "--load-version", f"model={first}")
    assert summary["status"] == "succeeded"
    assert [d["version"] for d in lineage(normandy, project)["predict"]] == [first]
    bad = normandy("run", "--flow", "use", "--load-version", "model=nope", cwd=project)
    assert bad.returncode == 2
    assert "'model' has no version 'nope' (its latest versions: " in bad.stderr
    assert normandy("run", "--load-version", "model", cwd=project).returncode == 2

    report = normandy("report", "last", "--output", "r.html", cwd=project)
    assert report.returncode == 0, report.output
    page = (project / "r.html").read_text()
    assert 'data-dataset="model"' in page and "read <code" in page  # drawn and listed

    # normandy_core.load, in a process of its own (it imports the project's modules)
    code = (
        "import json\nfrom normandy_core import load\n"
        f"print(json.dumps([load('model'), load('model', run={first!r}), load('doubled')]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True
    )
    assert json.loads(loaded.stdout) == [{"weights": 12}, {"weights": 12}, [2, 4, 6]]


def test_a_missing_input_dataset_is_found_before_anything_runs(normandy, project):
    (project / "data" / "numbers.json").unlink()
    result = normandy("run", cwd=project)
    assert result.returncode == 2
    assert (
        "pipeline/pipeline_conf.yml:21:9: flows.make.steps.double.double: it reads the dataset "
        "'numbers' (dstypes:JSONFile data/numbers.json), which does not exist and which no step "
        "writes" in result.stderr
    )
    assert not (project / "logs").exists()
    graph = normandy("graph", cwd=project)  # drawn all the same: the data may be elsewhere
    assert graph.returncode == 0, graph.output
    assert "reads:  numbers" in graph.stdout and "writes: doubled" in graph.stdout
    assert "model    dstypes:JSONFile models/model.json (versioned)" in graph.stdout
    shown = json.loads(normandy("graph", "--format", "json", cwd=project).stdout)
    assert shown["datasets"]["model"] == {
        "type": "dstypes:JSONFile",
        "path": "models/model.json",
        "versioned": True,
        "writers": ["make.train.train"],
        "readers": ["use.predict.predict"],
    }
    [predict] = shown["flows"][1]["steps"][0]["tasks"]
    assert (predict["dataset_reads"], predict["writes"]) == (["model"], ["prediction"])
    dot = normandy("graph", "--format", "dot", cwd=project).stdout
    assert '"dataset:model" [label="model\\ndstypes:JSONFile models/model.json (versioned)", ' \
        "shape=cylinder];" in dot
    assert '"make.train.train" -> "dataset:model";' in dot
    html = normandy("graph", "--format", "html", cwd=project).stdout
    assert html.count('class="dataset-node"') == 4  # numbers (a source), doubled, model ×2
