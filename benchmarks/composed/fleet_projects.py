"""The composed workload's two projects, on the same data and the same functions
(``fleet_*.py``): a Normandy project and a Kedro 1.7 project, each as its users would
write it.

Four pipelines: *ingestion* reads a CSV, an Excel workbook and a Parquet file, types
their columns as the params say and writes the intermediate tables (Parquet);
*features* reads them back, makes three tables of features and joins them onto a spine
of vessels (a variadic joiner); *modelling* splits, trains and evaluates two models with
one template used twice (Kedro: a modular pipeline instantiated under two namespaces),
then writes both models' metrics (a ``**metrics`` writer); *reporting* draws three
charts. Params are nested and given to the functions as arguments; the ``prod`` env
overrides some of them. Normandy: four flows, no helper task, no template written out
twice, no wrapper; Kedro: four pipelines joined by the files they write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from _projects import kedro_package

HERE = Path(__file__).resolve().parent
MODULES = ("fleet_ingest", "fleet_features", "fleet_models", "fleet_report")
TASKS = 31
"""Tasks of a whole run (Kedro: nodes)."""


def params(data: Path, out: Path, quick: bool) -> dict[str, Any]:
    """The base params (Kedro: ``conf/base/parameters.yml``)."""
    return {
        "paths": {
            "raw": {
                "operators": str(data / "operators.csv"),
                "vessels": str(data / "vessels.xlsx"),
                "inspections": str(data / "inspections.parquet"),
            },
            "intermediate": {
                name: str(out / "intermediate" / f"{name}.parquet")
                for name in ("operators", "vessels", "inspections")
            },
            "model_input": str(out / "model_input.parquet"),
            "metrics": str(out / "metrics.json"),
            "charts": str(out / "charts"),
        },
        "typing": {
            "operators": {"floats": ["safety_score"], "flags": ["certified"]},
            "vessels": {"floats": ["day_rate"], "flags": ["ice_class"]},
            "inspections": {"flags": ["passed"]},
        },
        "grades": [f"{p}_grade" for p in ("hull", "engine", "safety", "crew", "cargo")],
        "features": {
            "static": {
                "columns": ["holds", "length_m", "engines", "ice_class"],
                "reference_year": 2026,
                "one_hot": ["hull"],
            },
            "operators": {"reference_year": 2026},
            "inspections": {"min_inspections": 2},
        },
        "split_options": {"test_size": 0.2, "random_state": 26},
        "report": {"bins": 40, "sample": 3000},
        "forest_options": {
            "n_estimators": 20 if quick else 60,
            "max_depth": 10,
            "random_state": 26,
            "n_jobs": 1,
        },
    }


PROD = {"split_options": {"test_size": 0.25}, "report": {"bins": 60}}
"""What the ``prod`` env changes (Normandy: ``envs.prod.params``, merged key by key;
Kedro: ``conf/prod/parameters.yml``, whose top-level keys replace the base's whole)."""


def _copy_modules(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for module in MODULES:
        shutil.copyfile(HERE / f"{module}.py", folder / f"{module}.py")


# -- Normandy ---------------------------------------------------------------------------------

PROCESSES = {
    "load_csv": "fleet_ingest:load_csv",
    "load_excel": "fleet_ingest:load_excel",
    "load_parquet": "fleet_ingest:load_parquet",
    "apply_types": "fleet_ingest:apply_types",
    "summarize_inspections": "fleet_ingest:summarize_inspections",
    "write_parquet": "fleet_ingest:write_parquet",
    "vessel_spine": "fleet_features:vessel_spine",
    "static_features": "fleet_features:static_features",
    "operator_features": "fleet_features:operator_features",
    "inspection_features": "fleet_features:inspection_features",
    "join_features": "fleet_features:join_features",
    "split_data": "fleet_models:split_data",
    "train_model": "fleet_models:train_model",
    "evaluate_model": "fleet_models:evaluate_model",
    "write_metrics": "fleet_models:write_metrics",
    "plot_rates": "fleet_report:plot_rates",
    "plot_length_vs_rate": "fleet_report:plot_length_vs_rate",
    "plot_grades": "fleet_report:plot_grades",
}

PIPELINE = (HERE / "pipeline.yml").read_text()
"""The flows and the template (``pipeline.yml``), before the confs and params are added."""


def normandy(root: Path, values: dict[str, Any], *, cache: bool = False) -> Path:
    """The Normandy project (2 workers); ``cache``: ``confs.cache: true``, for the
    no-change rerun once datasets let every task be reused safely."""
    if root.exists():
        shutil.rmtree(root)
    (root / "pipeline").mkdir(parents=True)
    _copy_modules(root)
    forest = values["forest_options"]
    base = {k: v for k, v in values.items() if k != "forest_options"}
    confs = {
        "workers": 2,
        **({"cache": True} if cache else {}),
        "processes": PROCESSES,
        "envs": {"dev": {}, "prod": {"params": PROD}},
    }
    flows_text = PIPELINE.replace("FOREST", json.dumps(forest))
    text = (
        json.dumps({"confs": confs}, indent=1)[1:-1].strip()  # a YAML mapping, as JSON
        + "\n"
        + flows_text
    )
    # every flow gets the base params (Kedro: parameters.yml is global)
    flow_params = f"    params: {json.dumps(base)}\n    tags: [default,"
    text = text.replace("    tags: [default,", flow_params)
    (root / "pipeline" / "pipeline_conf.yml").write_text(text)
    return root


# -- Kedro ------------------------------------------------------------------------------------


REGISTRY = '''\
"""The four pipelines, as a Kedro user writes them: nodes of the same functions, params
by name (``params:a.b``), the model pipeline instantiated twice with ``namespace=``."""

from fleet_features import (
    inspection_features, join_features, operator_features, static_features, vessel_spine,
)
from fleet_ingest import (
    apply_types, load_csv, load_excel, load_parquet, summarize_inspections, write_parquet,
)
from fleet_models import evaluate_model, split_data, train_model, write_metrics
from fleet_report import plot_grades, plot_length_vs_rate, plot_rates
from kedro.pipeline import Pipeline, node, pipeline


def _ingestion():
    return pipeline([
        node(load_csv, "params:paths.raw.operators", "raw_operators"),
        node(load_excel, "params:paths.raw.vessels", "raw_vessels"),
        node(load_parquet, "params:paths.raw.inspections", "raw_inspections"),
        node(apply_types, ["raw_operators", "params:typing.operators"], "operators",
             name="type_operators"),
        node(apply_types, ["raw_vessels", "params:typing.vessels"], "vessels",
             name="type_vessels"),
        node(apply_types, ["raw_inspections", "params:typing.inspections"], "inspections",
             name="type_inspections"),
        node(summarize_inspections, ["inspections", "params:grades"], "inspection_summary"),
        node(write_parquet, ["operators", "params:paths.intermediate.operators"],
             "operators_file", name="save_operators"),
        node(write_parquet, ["vessels", "params:paths.intermediate.vessels"],
             "vessels_file", name="save_vessels"),
        node(write_parquet, ["inspection_summary", "params:paths.intermediate.inspections"],
             "inspections_file", name="save_inspections"),
    ])


def _features():
    return pipeline([
        node(load_parquet, "operators_file", "f_operators", name="read_operators"),
        node(load_parquet, "vessels_file", "f_vessels", name="read_vessels"),
        node(load_parquet, "inspections_file", "f_inspection_summary", name="read_inspections"),
        node(vessel_spine, "f_vessels", "spine"),
        node(static_features, ["f_vessels", "params:features.static"], "static"),
        node(operator_features, ["f_vessels", "f_operators", "params:features.operators"],
             "by_operator"),
        node(inspection_features, ["f_inspection_summary", "params:features.inspections"],
             "by_inspection"),
        node(join_features, ["spine", "static", "by_operator", "by_inspection"],
             "model_input"),
        node(write_parquet, ["model_input", "params:paths.model_input"], "model_input_file",
             name="save_model_input"),
    ])


def _train_evaluation():
    return pipeline([
        node(split_data, ["model_input", "params:split_options"],
             ["X_train", "X_test", "y_train", "y_test"]),
        node(train_model, ["X_train", "y_train", "params:model", "params:model_options"],
             "regressor"),
        node(evaluate_model, ["regressor", "X_test", "y_test"], "metrics"),
    ])


def _modelling():
    read = pipeline([node(load_parquet, "model_input_file", "m_model_input",
                          name="read_model_input")])
    models = [
        pipeline(_train_evaluation(), namespace=name, inputs={"model_input": "m_model_input"},
                 parameters={"params:split_options": "params:split_options"})
        for name in ("linear", "forest")
    ]
    save = pipeline([node(
        write_metrics,
        {"path": "params:paths.metrics", "linear": "linear.metrics",
         "forest": "forest.metrics"},
        None,
    )])
    return read + sum(models, Pipeline([])) + save


def _reporting():
    return pipeline([
        node(load_parquet, "model_input_file", "r_model_input", name="read_report_input"),
        node(plot_rates, ["r_model_input", "params:paths.charts", "params:report.bins"], None),
        node(plot_length_vs_rate,
             ["r_model_input", "params:paths.charts", "params:report.sample"], None),
        node(plot_grades, ["r_model_input", "params:paths.charts", "params:grades"], None),
    ])


def register_pipelines():
    pipes = {
        "ingestion": _ingestion(),
        "features": _features(),
        "modelling": _modelling(),
        "reporting": _reporting(),
    }
    pipes["__default__"] = sum(pipes.values(), Pipeline([]))
    return pipes
'''


def kedro(root: Path, values: dict[str, Any]) -> Path:
    """The same project in Kedro: ``kedro run --env prod`` runs the four pipelines."""
    package = kedro_package(root, "fleet_kedro")
    _copy_modules(root / "src")
    (package / "pipeline_registry.py").write_text(REGISTRY)
    for env in ("base", "local", "prod"):
        (root / "conf" / env).mkdir(parents=True)
    (root / "conf" / "base" / "catalog.yml").write_text("{}\n")
    forest = values["forest_options"]
    base = {k: v for k, v in values.items() if k != "forest_options"}
    base["linear"] = {"model": "linear", "model_options": {}}
    base["forest"] = {"model": "forest", "model_options": forest}
    (root / "conf" / "base" / "parameters.yml").write_text(json.dumps(base, indent=1) + "\n")
    prod = {key: {**base[key], **PROD[key]} for key in PROD}  # whole top-level keys
    (root / "conf" / "prod" / "parameters.yml").write_text(json.dumps(prod, indent=1) + "\n")
    return root
