"""Kedro's side of the datasets workload: the pipelines of ``ds_layout.py``, each task a
node of the same function; the catalog's datasets by their names, the data in memory
named ``<pipeline>.<variable>``."""

from __future__ import annotations

import importlib
import inspect

from ds_layout import FLOWS, datasets
from kedro.pipeline import Pipeline, node, pipeline

_FILES = set(datasets("."))


def _name(flow: str, name: str) -> str:
    return name if name in _FILES else f"{flow}.{name}"


def _node(flow: str, module: str, function: str, outputs: str | list[str]):  # noqa: ANN202
    fn = getattr(importlib.import_module(module), function)
    inputs = {
        name: "parameters" if name == "params" else _name(flow, name)
        for name in inspect.signature(fn).parameters
    }
    if isinstance(outputs, list):
        named: str | list[str] = [_name(flow, o) for o in outputs]
    else:
        named = _name(flow, outputs)
    return node(fn, inputs, named, name=f"{flow}.{function}")


def register_pipelines() -> dict[str, Pipeline]:
    pipes = {
        flow: pipeline([_node(flow, *task) for _, tasks in steps for task in tasks])
        for flow, steps in FLOWS.items()
    }
    pipes["__default__"] = sum(pipes.values(), Pipeline([]))
    return pipes
