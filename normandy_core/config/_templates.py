"""Templates (SPEC 20): steps written once under ``templates:`` and used by the steps of
flows, each use expanded in place.

```yaml
templates:
  train_evaluation:
    params: {model: linear}
    steps:
      split:  {split_data: {outputs: [X_train, X_test, y_train, y_test]}}
      train:  {train_model: {outputs: regressor}}
flows:
  modelling:
    steps:
      linear: {use: train_evaluation, inputs: {table: model_input_table}}
      forest: {use: train_evaluation, params: {model: forest}, outputs: {regressor: forest}}
```

The use ``forest`` becomes the steps ``forest.split`` and ``forest.train``, whose tasks
read and write ``forest.X_train``… (``namespace``, by default the step's name) except the
variables the use maps (``inputs``/``outputs``: template variable -> the flow's). A
parameter of a process that ``inputs`` does not map reads its name in that scope too, and
so does ``pipe.vars`` (:class:`~normandy_core.binding.Scope`, carried by each entry). The
template's params are overridden, key by key at any depth, by the use's.

Every entry keeps its template's positions: a problem found in one use points at the
template's line and says through which use (:attr:`Location.via`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from normandy_core.binding import (
    PARAMS,
    VARIABLE_PATTERN,
    FromParams,
    Gathered,
    Outputs,
    Scope,
    Source,
    variables_of,
)
from normandy_core.config import _schema
from normandy_core.config._flows import ProcessEntry, StepConfig, TemplateUse, read_step
from normandy_core.config._nodes import Location, frozen, locate, mapping, sortable_keys
from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem
from normandy_core.params import merge_deep

_VARIABLE = re.compile(VARIABLE_PATTERN + r"\Z")

__all__ = ["Template", "expand_use", "is_use", "read_templates"]


@dataclass(frozen=True)
class Template:
    """A template as written: its params and steps, at their positions."""

    name: str
    params: Mapping[str, Any]
    steps: tuple[StepConfig, ...]
    where: Location


def is_use(body: Any) -> bool:
    """Whether a step's value is the use of a template (``{use: NAME, …}``) rather than
    its entries (a process named ``use`` would have options, not a name, as its value)."""
    return isinstance(body, Mapping) and isinstance(body.get("use"), str)


def read_templates(doc: YamlDocument, node: Any, problems: list[Problem]) -> dict[str, Template]:
    """The templates of ``templates:`` (the schema checked their shape)."""
    templates = {}
    for name, body in mapping(node).items():
        if not isinstance(body, Mapping):
            continue
        keys: list[PathKey] = ["templates", name]
        steps = []
        for step, entries in mapping(body.get("steps")).items():
            if is_use(entries):
                problems.append(
                    doc.problem(
                        [*keys, "steps", step, "use"],
                        "a template cannot use a template; write its steps here, or use "
                        "both templates from the flow, one after the other",
                        at_key=True,
                    )
                )
                continue
            steps.append(read_step(doc, [*keys, "steps", step], str(step), entries, problems))
        templates[str(name)] = Template(
            str(name), frozen(body.get("params")), tuple(steps), locate(doc, keys, at_key=True)
        )
    return templates


def expand_use(
    doc: YamlDocument,
    keys: list[PathKey],
    step: str,
    body: Mapping[str, Any],
    templates: Mapping[str, Template],
    problems: list[Problem],
) -> list[StepConfig]:
    """The steps the use ``body`` of the step ``step`` (at ``keys``) stands for."""
    body = sortable_keys(doc, body, {"schema": _schema.USE_OPTIONS}, keys, problems)
    found = _schema.check(doc, body, _schema.USE_OPTIONS, keys)
    problems.extend(found)
    if found:
        return []
    template = templates.get(body["use"])
    if template is None:
        problems.append(doc.problem([*keys, "use"], _unknown(body["use"], list(templates))))
        return []
    namespace = body.get("namespace", step)
    if not _namespace_ok(namespace):
        problems.append(
            doc.problem(
                [*keys, "namespace"] if "namespace" in body else keys,
                f"invalid namespace {namespace!r}: it starts the names of the template's "
                "variables (NAMESPACE.variable): use letters, digits, '_', '.' and '-', and "
                f"not {PARAMS!r}",
                at_key="namespace" not in body,
            )
        )
        return []
    names, places = _names(doc, keys, body, problems)
    where = locate(doc, keys, at_key=True)
    use = TemplateUse(template.name, step, where, places, _written(template))
    scope = Scope(str(namespace), tuple(names.items()), template.name)
    params = frozen(body.get("params"))
    return [
        StepConfig(
            f"{step}.{tstep.name}",
            tuple(_scoped(e, scope, use, template.params, params) for e in tstep.entries),
            _via(tstep.where, use),
        )
        for tstep in template.steps
    ]


def _names(
    doc: YamlDocument, keys: list[PathKey], body: Mapping[str, Any], problems: list[Problem]
) -> tuple[dict[str, str], dict[str, Location]]:
    """The use's ``inputs`` and ``outputs``: template variable -> the flow's variable."""
    names: dict[str, str] = {}
    places: dict[str, Location] = {}
    for part in ("inputs", "outputs"):
        for tvar, var in mapping(body.get(part)).items():
            here = [*keys, part, tvar]
            places[f"{part}.{tvar}"] = locate(doc, here, at_key=True)
            bad = [v for v in (tvar, var) if not (isinstance(v, str) and _VARIABLE.match(v))]
            if bad or var in (".", "..") or tvar in (".", ".."):
                problems.append(
                    doc.problem(
                        here,
                        f"{part} of a use maps a variable of the template to one of the flow "
                        f"({{template_variable: variable}}); {bad[0] if bad else var!r} is not "
                        "a variable name (letters, digits, '_', '.' and '-')",
                    )
                )
            elif names.get(tvar, var) != var:
                problems.append(
                    doc.problem(
                        here,
                        f"{tvar!r} is mapped to {names[tvar]!r} by inputs and to {var!r} by "
                        "outputs: a template variable is one variable of the flow",
                    )
                )
            else:
                names[tvar] = var
    return names, places


def _scoped(
    entry: ProcessEntry,
    scope: Scope,
    use: TemplateUse,
    template_params: Mapping[str, Any],
    use_params: Mapping[str, Any],
) -> ProcessEntry:
    """A template's entry as one use runs it: its variables in the use's scope, its
    params the template's under its own, the use's over both."""
    outputs = entry.outputs
    if outputs is not None:
        outputs = Outputs(outputs.kind, tuple(map(scope.variable, outputs.names)), outputs.keys)
    params = merge_deep({**template_params, **entry.params}, use_params)
    return replace(
        entry,
        where=_via(entry.where, use),
        params=frozen(params),
        inputs={param: _source(source, scope) for param, source in entry.inputs.items()},
        reads=tuple(map(scope.variable, entry.reads)),
        outputs=outputs,
        places={key: _via(where, use) for key, where in entry.places.items()},
        scope=scope,
        use=use,
    )


def _source(source: Source, scope: Scope) -> Source:
    if isinstance(source, str):
        return scope.variable(source)
    if isinstance(source, Gathered):
        return Gathered(tuple(map(scope.variable, source.variables)), source.keys)
    assert isinstance(source, FromParams)
    return source


def _written(template: Template) -> frozenset[str]:
    """The variables a template's entries name (those its processes' parameters name
    are known once their signatures are)."""
    names: set[str] = set()
    for step in template.steps:
        for entry in step.entries:
            for source in entry.inputs.values():
                names.update(variables_of(source))
            names.update(entry.reads)
            names.update(entry.outputs.names if entry.outputs is not None else ())
    return frozenset(names)


def _via(where: Location, use: TemplateUse) -> Location:
    return replace(where, via=use.via)


def _namespace_ok(namespace: Any) -> bool:
    return (
        isinstance(namespace, str)
        and bool(_VARIABLE.match(namespace))
        and namespace not in (".", "..")
        and namespace != PARAMS
        and not namespace.startswith(PARAMS + ".")
    )


def _unknown(name: str, known: list[str]) -> str:
    if not known:
        return f"unknown template {name!r}: the file has no templates: section"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? The" if close else "the"
    return f"unknown template {name!r}; {hint} templates are: {', '.join(known)}"
