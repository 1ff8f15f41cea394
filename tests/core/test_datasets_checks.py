"""``confs.datasets`` read and checked before anything runs (``config/_datasets.py``,
``datasets/_checks.py``): every problem at once, positioned, with the way out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from normandy_core.config import read_config
from normandy_core.datasets._types import installed_types
from normandy_core.errors import ConfigError
from normandy_core.plan import Selection, build_plan, restrict
from normandy_core.project import Checked, check_project, open_project

TYPES = """
import json

from normandy_core.datasets import Dataset, FileDataset, Stamp


class JSONFile(FileDataset):
    def read(self, file):
        return json.loads(file.read())

    def write(self, data, file):
        file.write(json.dumps(data).encode())


class Chart(JSONFile):
    loads = False


class Query(Dataset):
    required = ("query",)
    options = ("query",)
    saves = False

    def load(self):
        return []

    def save(self, data):
        raise TypeError("read only")

    def stamp(self):
        return Stamp()
"""

PROCS = """
def make():
    return 1

def double(numbers):
    return numbers

def total(doubled, extra=0):
    return doubled

def reader(pipe):
    return 1
"""

HEAD = """
confs:
  processes:
    make: PROCS:make
    double: PROCS:double
    total: PROCS:total
    reader: PROCS:reader
"""


@dataclass
class Conf:
    """Checks a configuration (``HEAD`` + the text given) of the test's project: its
    types module and processes module have names no other test uses, written ``dstypes``
    and ``PROCS`` in the texts, and in the problems (for the types)."""

    write_conf: Callable[..., Path]
    names: dict[str, str]

    def check(self, text: str, **options: Any) -> Checked:
        named = HEAD + text
        for word, name in self.names.items():
            named = named.replace(f"{word}:", f"{name}:")
        project = open_project(self.write_conf(named))
        plan = None
        if not project.problems:
            part = options.pop("part", ((), (), ()))
            plan = restrict(build_plan(project.config, Selection(flows=("f",))), *part)
        return check_project(project, ["f"], plan=plan, imports=False, **options)

    def problems(self, text: str, **options: Any) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            self.check(text, **options)
        return [str(p).replace(self.names["dstypes"], "dstypes") for p in caught.value.problems]


@pytest.fixture
def conf(
    project_dir: Path,
    write_conf: Callable[..., Path],
    write_module: Callable[..., Path],
    clean_imports: None,
    fake_dist: Any,
    module_name: Callable[[str], str],
) -> Iterator[Conf]:
    """The test's types, installed as ``jsonfile``, ``chart`` and ``query`` by a
    distribution ``test-types``, and its processes."""
    names = {"dstypes": module_name("dstypes"), "PROCS": module_name("procs")}
    write_module(project_dir, names["dstypes"], TYPES)
    write_module(project_dir, names["PROCS"], PROCS)
    types = names["dstypes"]
    entries = {"jsonfile": "JSONFile", "chart": "Chart", "query": "Query"}
    fake_dist(
        "test-types",
        {"normandy.datasets": {name: f"{types}:{cls}" for name, cls in entries.items()}},
    )
    installed_types.cache_clear()
    yield Conf(write_conf, names)
    installed_types.cache_clear()


def test_declarations_with_their_env_overrides_applied_key_by_key(
    write_conf: Callable[..., Path],
) -> None:
    root = write_conf(
        """
        confs:
          datasets:
            raw: {type: jsonfile, path: "${env:DATA:data}/raw.json", load_args: {a: 1}}
            model: {type: jsonfile, path: models/m.json, versioned: true}
          envs:
            dev: {}
            prod:
              datasets:
                raw: {path: "s3://bucket/raw.json"}
        flows:
          f: {steps: {s: [make]}}
        """
    )
    config, found = read_config(root, {"DATA": "here"})
    assert config is not None and found == []
    dev = config.dataset_specs("dev", {})
    assert (dev["raw"].path, dict(dev["raw"].load_args), dev["raw"].env) == (
        "here/raw.json",
        {"a": 1},
        None,
    )
    prod = config.dataset_specs("prod", {"datasets": {"raw": {"path": "s3://bucket/raw.json"}}})
    assert (prod["raw"].path, dict(prod["raw"].load_args), prod["raw"].env) == (
        "s3://bucket/raw.json",
        {"a": 1},
        "prod",
    )
    assert prod["raw"].place("path").line == 9 and prod["raw"].place("type").line == 3
    assert prod["model"].versioned and not prod["raw"].versioned


def test_the_schema_and_the_env_overrides(write_conf: Callable[..., Path]) -> None:
    root = write_conf(
        """
        confs:
          datasets:
            raw: {path: data/raw.json}
            "a/b": {type: jsonfile, path: x}
            model: {type: jsonfile, path: m.json, versioned: yes please}
          envs:
            dev:
              datasets:
                rwa: {path: y}
            prod:
              datasets: [raw]
        flows:
          f: {steps: {s: [make]}}
        """
    )
    _config, found = read_config(root, {})
    assert [str(p) for p in ConfigError(found).problems] == [
        "pipeline/pipeline_conf.yml:3:5: confs.datasets.raw.type: missing required key 'type'",
        "pipeline/pipeline_conf.yml:4:5: confs.datasets.a/b: invalid dataset name 'a/b': use "
        "letters, digits, '_', '.' and '-' (it is the name of a process's input or output)",
        "pipeline/pipeline_conf.yml:5:54: confs.datasets.model.versioned: must be true or "
        "false, not str 'yes please'",
        "pipeline/pipeline_conf.yml:9:9: confs.envs.dev.datasets.rwa: env 'dev' changes the "
        "dataset 'rwa', which confs.datasets does not declare; did you mean 'raw'? declare it "
        "there (an env changes its keys)",
        "pipeline/pipeline_conf.yml:11:17: confs.envs.prod.datasets: must be a mapping: dataset "
        "name -> the keys this env changes",
    ]


def test_types_keys_and_credentials(conf: Conf, project_dir: Path) -> None:
    (project_dir / "conf").mkdir()
    (project_dir / "conf" / "creds.yml").write_text("db: {url: x}\n")
    found = conf.problems(
        """
  datasets:
    a: {type: jsonfle, path: a.json}
    b: {type: jsonfile}
    c: {type: jsonfile, path: c.json, load_arg: {x: 1}}
    d: {type: query, versioned: true}
    e: {type: query, query: select 1, credentials: warehouse}
    f: {type: "dstypes:Missing", path: f.json}
  envs:
    dev: {credentials: conf/creds.yml}
flows:
  f: {steps: {s: [make]}}
""",
    )
    assert found == [
        "pipeline/pipeline_conf.yml:9:15: confs.datasets.a.type: unknown dataset type 'jsonfle'; "
        "did you mean 'jsonfile'? the installed types: chart, jsonfile, query; or a class of "
        "the project's own, as module:Class",
        "pipeline/pipeline_conf.yml:10:5: confs.datasets.b: a jsonfile dataset: missing "
        "required key 'path'",
        "pipeline/pipeline_conf.yml:11:49: confs.datasets.c.load_arg: unknown key 'load_arg' "
        "for a jsonfile dataset; did you mean 'load_args'? its keys: type, path, load_args, "
        "save_args, fs_args, versioned, credentials",
        "pipeline/pipeline_conf.yml:12:5: confs.datasets.d: a query dataset: missing required "
        "key 'query'",
        "pipeline/pipeline_conf.yml:12:33: confs.datasets.d.versioned: a query dataset cannot "
        "be versioned (only files can)",
        "pipeline/pipeline_conf.yml:13:52: confs.datasets.e.credentials: the env's credentials "
        "have no entry 'warehouse' (its entries: db); add it to the env's credentials file, or "
        "fix the name",
        "pipeline/pipeline_conf.yml:14:15: confs.datasets.f.type: cannot import dataset type "
        "'dstypes:Missing' (dstypes:Missing): dstypes has no 'Missing'",
    ]


FLOW = """
  datasets:
    numbers: {type: jsonfile, path: data/numbers.json}
    doubled: {type: jsonfile, path: data/doubled.json}
    chart: {type: chart, path: out/chart.json}
    query: {type: query, query: select 1}
  envs:
    dev: {}
flows:
  f:
    steps:
"""


def test_a_flow_using_datasets_well_and_what_each_task_reads_and_writes(
    conf: Conf, project_dir: Path
) -> None:
    (project_dir / "data").mkdir()
    (project_dir / "data" / "numbers.json").write_text("[1]")
    checked = conf.check(
        FLOW
        + """
      one:
        double: {outputs: doubled}
        q: {process: total, inputs: {doubled: query}, outputs: chart}
      two:
        total: {outputs: result}
""",
    )
    assert checked.datasets is not None
    assert dict(checked.datasets.use) == {
        "f.one.double": (("numbers",), ("doubled",)),
        "f.one.q": (("query",), ("chart",)),
        "f.two.total": (("doubled",), ()),
    }
    numbers = checked.datasets.calls["numbers"]
    assert numbers.config.path == str(project_dir / "data" / "numbers.json")
    assert [c.name for c in checked.datasets.of_task("f.one.double")] == ["numbers", "doubled"]


def test_every_problem_of_the_flows_use_of_datasets(conf: Conf) -> None:
    found = conf.problems(
        FLOW
        + """
      one:
        double: {outputs: doubled}
        d2: {process: double, inputs: {numbers: doubled}, outputs: doubled}
        t: {process: total, iter_param: {name: i, values: [1, 2]}, outputs: chart}
      two:
        total: {inputs: {doubled: chart}, outputs: query}
        reader: {inputs: [numbers]}
""",
    )
    assert found == [
        "pipeline/pipeline_conf.yml:20:9: flows.f.steps.one.double: it reads the dataset "
        "'numbers' (jsonfile data/numbers.json), which does not exist and which no step "
        "writes; create it, or declare it in the outputs of a task of an earlier step",
        "pipeline/pipeline_conf.yml:21:40: flows.f.steps.one.d2.inputs.numbers: it reads the "
        "dataset 'doubled', which f.one.double writes in the same step: tasks of a step run at "
        "once, so it would read the old content; move one of them to another step",
        "pipeline/pipeline_conf.yml:21:59: flows.f.steps.one.d2.outputs: the dataset 'doubled' "
        "is also written by f.one.double, in the same step: tasks of a step run at once and "
        "cannot write one dataset; write it in one of them",
        "pipeline/pipeline_conf.yml:22:9: flows.f.steps.one.t: it reads the dataset 'doubled', "
        "which f.one.double writes in the same step: tasks of a step run at once, so it would "
        "read the old content; move one of them to another step",
        "pipeline/pipeline_conf.yml:22:68: flows.f.steps.one.t.outputs: every task of this "
        "iter_param would write the dataset 'chart'; declare the output on an entry that runs "
        "once, or one dataset per value",
        "pipeline/pipeline_conf.yml:24:26: flows.f.steps.two.total.inputs.doubled: input "
        "'doubled' is the dataset 'chart', which cannot be read (chart: it is written, not "
        "read); read its data from a variable",
        "pipeline/pipeline_conf.yml:24:43: flows.f.steps.two.total.outputs: output 'query' is "
        "a dataset that cannot be written (query): output another name",
        "pipeline/pipeline_conf.yml:25:18: flows.f.steps.two.reader.inputs: 'numbers' is a "
        "dataset, not a variable: a process reads a dataset through a parameter of that name "
        "(or inputs: {parameter: numbers}), not pipe.vars; remove it from this list",
    ]


def test_an_input_dataset_written_later_or_by_a_task_left_out(
    conf: Conf, project_dir: Path
) -> None:
    (project_dir / "data").mkdir()
    (project_dir / "data" / "numbers.json").write_text("[1]")
    flows = FLOW + """
      one:
        total: {outputs: result}
      two:
        double: {outputs: doubled}
      three:
        t2: {process: total}
"""
    assert conf.problems(flows) == [
        "pipeline/pipeline_conf.yml:20:9: flows.f.steps.one.total: it reads the dataset "
        "'doubled' (jsonfile data/doubled.json), which does not exist; f.two.double writes it, "
        "but not in an earlier step: move it earlier",
    ]
    assert conf.problems(flows, part=(("three",), (), ())) == [
        "pipeline/pipeline_conf.yml:24:9: flows.f.steps.three.t2: it reads the dataset "
        "'doubled' (jsonfile data/doubled.json), which does not exist; f.two.double writes it, "
        "but does not run in this part of the flows: run it first, or start earlier (--from two)",
    ]
    # not checked where the env is not (normandy graph): the data may be elsewhere
    assert conf.check(flows, check_env=False).datasets is not None


def test_an_optional_input_s_dataset_may_be_missing(conf: Conf) -> None:
    checked = conf.check(
        """
  datasets:
    doubled: {type: jsonfile, path: doubled.json}
    extra: {type: jsonfile, path: missing.json}
  envs:
    dev: {}
flows:
  f:
    steps:
      zero:
        make: {outputs: doubled}
      one:
        total: {}
""",
    )
    assert checked.datasets is not None
    assert checked.datasets.use["f.one.total"] == (("doubled", "extra"), ())


def test_load_versions(conf: Conf, project_dir: Path) -> None:
    version = project_dir / "m.json" / "20260101-000000.000-aaaa" / "m.json"
    version.parent.mkdir(parents=True)
    version.write_text("1")
    flows = """
  datasets:
    model: {type: jsonfile, path: m.json, versioned: true}
    out: {type: jsonfile, path: out.json, versioned: true}
    plain: {type: jsonfile, path: p.json}
  envs:
    dev: {}
flows:
  f:
    steps:
      one:
        total: {inputs: {doubled: model}, outputs: out}
"""
    ok = conf.check(flows, load_versions={"model": "20260101-000000.000-aaaa"})
    assert ok.datasets is not None
    assert ok.datasets.calls["model"].version == "20260101-000000.000-aaaa"
    found = conf.problems(
        flows,
        load_versions={"modle": "x", "plain": "x", "out": "x", "model": "20990101-000000.000-zzzz"},
    )
    assert found == [
        "pipeline/pipeline_conf.yml:8:3: confs.datasets: --load-version modle=x: no dataset "
        "'modle'; did you mean 'model'? the versioned datasets: model, out",
        "pipeline/pipeline_conf.yml:9:5: confs.datasets.model: --load-version "
        "model=20990101-000000.000-zzzz: 'model' has no version '20990101-000000.000-zzzz' (its "
        "latest versions: 20260101-000000.000-aaaa)",
        "pipeline/pipeline_conf.yml:10:5: confs.datasets.out: --load-version out=x: this run "
        "writes 'out' (f.one.total); --load-version is for datasets a run reads and does not "
        "write",
        "pipeline/pipeline_conf.yml:11:5: confs.datasets.plain: --load-version plain=x: the "
        "dataset 'plain' is not versioned (versioned: true)",
    ]
