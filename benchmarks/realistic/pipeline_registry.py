"""Kedro's side of the realistic workload: the pipelines of ``layout.py``, each task a Kedro
node of the same function, with the same inputs (by parameter name; ``params`` is Kedro's
``parameters``) and outputs; datasets in memory, named ``<pipeline>.<variable>``."""

from __future__ import annotations

import importlib
import inspect

from kedro.pipeline import Pipeline, node, pipeline
from layout import FLOWS


def _node(flow: str, module: str, function: str, outputs: str | list[str] | None):  # noqa: ANN202
    fn = getattr(importlib.import_module(module), function)
    inputs = {
        name: "parameters" if name == "params" else f"{flow}.{name}"
        for name in inspect.signature(fn).parameters
    }
    if isinstance(outputs, list):
        named: str | list[str] | None = [f"{flow}.{o}" for o in outputs]
    else:
        named = None if outputs is None else f"{flow}.{outputs}"
    return node(fn, inputs, named, name=f"{flow}.{function}")


def register_pipelines() -> dict[str, Pipeline]:
    pipes = {
        flow: pipeline([_node(flow, *task) for _, tasks in steps for task in tasks])
        for flow, steps in FLOWS.items()
    }
    pipes["__default__"] = sum(pipes.values(), Pipeline([]))
    return pipes
