"""Datasets and reuse end to end (SPEC 13, 16), with the real command: with ``cache: true``
throughout, a rerun with nothing changed reuses every task; an input file edited (even
with its size and modification time put back) reruns its readers and what their new
output feeds; a file touched but unchanged reruns nothing; a deleted output reruns its
writer and is written again; ``--load-version`` of another version reuses the run that
read that version; a
dataset declared otherwise reruns its users; and the dry run says the same beforehand."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.cli.test_datasets import PROCS, TYPES

CONF = """
confs:
  workers: 2
  cache: true
  processes:
    double: procs:double
    train: procs:train
    predict: procs:predict
  datasets:
    numbers: {type: "dstypes:JSONFile", path: data/numbers.json}
    doubled: {type: "dstypes:JSONFile", path: out/doubled.json}
    model: {type: "dstypes:JSONFile", path: models/model.json, versioned: true}
  envs:
    dev: {}
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


def run(normandy, root: Path, *args: str) -> dict:
    result = normandy("run", "--json", "--no-progress", "--explain", *args, cwd=root)
    assert result.returncode == 0, result.output
    summary = json.loads(result.stdout)
    summary["why"] = dict(re.findall(r"explain: \w+\.\w+\.(\w+): (.*)", result.stderr))
    summary["status"] = {t["task"]: t["status"] for t in summary["tasks"]}
    return summary


def edit_keeping_size_and_time(path: Path, old: str, new: str) -> None:
    info = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.fixture
def project(make_project) -> Path:
    return make_project(
        CONF, {"procs.py": PROCS, "dstypes.py": TYPES, "data/numbers.json": "[1, 2, 3]"}
    )


def test_cache_on_for_a_pipeline_of_datasets_reruns_exactly_what_changed(normandy, project):
    first = run(normandy, project)
    assert set(first["status"].values()) == {"succeeded"}
    doubled = project / "out" / "doubled.json"
    assert json.loads(doubled.read_text()) == [2, 4, 6]

    again = run(normandy, project)
    assert again["status"] == dict.fromkeys(("double", "train", "predict"), "cached"), again["why"]

    # an input file edited with its size and modification time put back
    edit_keeping_size_and_time(project / "data" / "numbers.json", "3]", "4]")
    edited = run(normandy, project)
    assert edited["status"] == dict.fromkeys(("double", "train", "predict"), "succeeded")
    assert edited["why"]["double"] == "run (dataset changed (numbers))"
    assert edited["why"]["train"] == "run (dataset changed (doubled))"
    assert edited["why"]["predict"] == "run (dataset changed (model))"  # a new version
    assert json.loads(doubled.read_text()) == [2, 4, 8]

    # touched, not changed: its content is hashed again, and nothing reruns
    os.utime(project / "data" / "numbers.json", ns=(1, 10**18))
    touched = run(normandy, project)
    assert set(touched["status"].values()) == {"cached"}, touched["why"]

    # an output deleted: its writer runs and writes it again; its readers, finding the
    # same content under a new stamp, are reused
    doubled.unlink()
    deleted = run(normandy, project)
    assert deleted["why"]["double"] == "run (its output dataset changed or is missing (doubled))"
    assert deleted["status"] == {"double": "succeeded", "train": "cached", "predict": "cached"}
    assert json.loads(doubled.read_text()) == [2, 4, 8]

    # an output edited by hand: its writer runs and puts it right
    doubled.write_text("[0]")
    fixed = run(normandy, project)
    assert fixed["status"]["double"] == "succeeded"
    assert json.loads(doubled.read_text()) == [2, 4, 8]

    # the version loaded pinned to the first run's: the first run's prediction, made from
    # that version, stands for it (not the latest run's, made from another)
    pinned = run(normandy, project, "--tags", "use", "--load-version", f"model={first['run_id']}")
    assert pinned["status"] == {"predict": "cached"}
    assert first["run_id"] in pinned["why"]["predict"], pinned["why"]

    # the dry run says beforehand what the run will do: a reader of a dataset that a task
    # running first writes may or may not run
    edit_keeping_size_and_time(project / "data" / "numbers.json", "4]", "5]")
    dry = normandy("run", "--dry-run", "--explain", cwd=project)
    assert dry.returncode == 0, dry.output
    shown = dry.stderr[dry.stderr.index("what would run") :]
    said = dict(re.findall(r"\w+\.\w+\.(\w+): (.*)", shown))
    assert said["double"] == "run (dataset changed (numbers))"
    maybe = "run or reuse: reads {}, which {} writes in this run"
    assert said["train"] == maybe.format("doubled", "make.double.double")
    assert said["predict"] == maybe.format("model", "make.train.train")
    done = run(normandy, project)["why"]
    assert done == {
        "double": "run (dataset changed (numbers))",
        "train": "run (dataset changed (doubled))",
        "predict": "run (dataset changed (model))",
    }


def test_a_dataset_declared_otherwise_reruns_the_tasks_using_it(normandy, project):
    run(normandy, project)
    conf = project / "pipeline" / "pipeline_conf.yml"
    conf.write_text(
        conf.read_text().replace(
            "path: out/doubled.json}", "path: out/doubled.json, save_args: {indent: 2}}"
        )
    )
    changed = run(normandy, project)
    assert changed["status"]["double"] == "succeeded", changed["why"]
    assert changed["why"]["double"] == "run (its output dataset changed or is missing (doubled))"
    assert changed["status"]["train"] == "succeeded"  # it reads it: declared otherwise
    # a new version of the model, even of the same content: a versioned read is of a version
    assert changed["why"]["predict"] == "run (dataset changed (model))"


def test_a_reused_writer_of_a_versioned_dataset_is_what_its_readers_load(normandy, make_project):
    """A task reused from an earlier run stands for its output as that run saved it: a
    reader of its versioned dataset later in the run loads the version the reused task
    wrote, not a newer one that another run wrote since (which would mix a model of one
    input with a prediction of another)."""
    conf = CONF.replace(
        "    model: {", '    prediction: {type: "dstypes:JSONFile", path: out/prediction.json}\n'
        "    model: {",
    )
    project = make_project(
        conf, {"procs.py": PROCS, "dstypes.py": TYPES, "data/numbers.json": "[1, 2, 3]"}
    )
    numbers = project / "data" / "numbers.json"
    prediction = project / "out" / "prediction.json"
    first = run(normandy, project)
    assert json.loads(prediction.read_text()) == 12
    numbers.write_text("[1, 2, 4]")
    run(normandy, project)
    assert json.loads(prediction.read_text()) == 14  # a newer version of the model
    numbers.write_text("[1, 2, 3]")
    back = run(normandy, project)
    # the doubled numbers are the first run's again: that run's model stands for it…
    assert back["status"]["train"] == "cached", back["why"]
    assert first["run_id"] in back["why"]["train"], back["why"]
    # …and the prediction is made from that model, as a run without the cache would
    assert json.loads(prediction.read_text()) == 12, back["why"]
    again = run(normandy, project)
    assert set(again["status"].values()) == {"cached"}, again["why"]
    assert json.loads(prediction.read_text()) == 12
