"""The cerberus schema of ``pipeline_conf.yml``, and its errors turned into positioned problems.

The schema is checked in two passes: the file's structure (``FILE_SCHEMA``), then each
process entry's options (``PROCESS_OPTIONS``) where the entry is found, so that every problem
points at the exact key or value whichever step form is used.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from normandy_core._kept import KeptFile
from normandy_core.binding import VARIABLE_PATTERN
from normandy_core.config._yaml import PathKey, YamlDocument
from normandy_core.errors import Problem
from normandy_core.registry import NAME_PATTERN, TARGET_PATTERN

if TYPE_CHECKING:  # imported where a node is validated: a configuration that passed before
    import cerberus  # (checked.json) is not, and cerberus is 13-50 ms of every command
    from cerberus.errors import ValidationError

NAME_REGEX = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
"""Flow, step and env names: they become parts of file names and of ``flow.step.task``."""

IDENTIFIER_REGEX = r"[A-Za-z_][A-Za-z0-9_]*"
"""A parameter of a process (``map_as``)."""

LOG_LEVELS = ("debug", "info", "warning", "warnings", "error", "errors", "critical")
_MODULE_REGEX = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"

_NAMES = {"type": "string", "regex": NAME_REGEX}
_STRINGS = {"type": "list", "schema": {"type": "string", "empty": False}}
_WORKERS = {"type": "integer", "min": 1}
_UNITS = {"type": "integer", "min": 1}

SCHEDULES = ("steps", "dataflow")
"""``confs.schedule``: a step starts when the previous one has ended (``steps``), or a task
starts when the tasks writing what it reads have succeeded (``dataflow``)."""

ENV_SCHEMA: dict[str, Any] = {
    "type": "dict",
    "nullable": True,
    "allow_unknown": True,  # an env's settings are free-form
    "schema": {
        "credentials": {"type": "string", "empty": False, "nullable": True},
        # over the params of every entry of every flow under this env (SPEC 20)
        "params": {"type": "dict", "nullable": True},
    },
}

_ARGS = {"type": "dict", "nullable": True}

DATASET_SCHEMA: dict[str, Any] = {
    "type": "dict",
    "allow_unknown": True,  # a type's own keys (table, query…), checked with the type
    "schema": {
        "type": {"type": "string", "required": True, "empty": False},
        "path": {"type": "string", "empty": False},
        "load_args": _ARGS,
        "save_args": _ARGS,
        "fs_args": _ARGS,
        "versioned": {"type": "boolean"},
        "credentials": {"type": "string", "empty": False},
    },
}

NOTIFY_EVENTS = ("failure", "success", "interrupted", "long")
"""When a notification is sent (``confs.notify[].on``, SPEC 18)."""
NOTIFY_TARGETS = ("webhook", "email", "command")
_HOST_PORT = r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
_URL = r"https?://\S+"
NOTIFICATION_SCHEMA: dict[str, Any] = {
    "on": {
        "type": ["string", "list"],
        "required": True,
        "empty": False,
        "allowed": list(NOTIFY_EVENTS),
    },
    "after": {"type": "number", "min": 1},
    "webhook": {"type": "string", "regex": _URL},
    "email": {
        "type": "dict",
        "schema": {
            "to": {
                "type": ["string", "list"],
                "required": True,
                "empty": False,
                "schema": {"type": "string", "empty": False},
            },
            "from": {"type": "string", "empty": False},
            "smtp": {"type": "string", "required": True, "regex": _HOST_PORT},
            "credentials": {"type": "string", "empty": False},
        },
    },
    "command": {"type": "list", "minlength": 1, "schema": {"type": "string", "empty": False}},
    "timeout": {"type": "number", "min": 0.1},
    "retries": {"type": "integer", "min": 0, "max": 10},
}

CONFS_SCHEMA: dict[str, Any] = {
    "path": {"type": "string"},
    "workers": _WORKERS,
    "threads": _WORKERS,
    "log_level": {"type": "string", "allowed": list(LOG_LEVELS)},
    "plugins": {"type": "list", "schema": {"type": "string", "regex": _MODULE_REGEX}},
    # the project's own processes, and its choice where a name has several targets
    "processes": {
        "type": "dict",
        "nullable": True,
        "keysrules": {"type": "string", "regex": NAME_PATTERN},
        "valuesrules": {"type": "string", "regex": TARGET_PATTERN},
    },
    "executor": _NAMES,
    "store": {"type": "string", "empty": False},
    # reuse (SPEC 13): the default for every task, and how many runs normandy gc keeps
    "cache": {"type": "boolean"},
    # not given: the last 20 runs; 0: every run (SPEC 20)
    "keep_runs": {"type": "integer", "min": 0, "nullable": True},
    # whether the local executor's fork server imports the process modules for the workers
    "preload": {"type": "boolean"},
    # flows that fit the work (SPEC 19): named resources of N units; steps or data as barriers
    "pools": {
        "type": "dict",
        "nullable": True,
        "keysrules": _NAMES,
        "valuesrules": _UNITS,
    },
    "schedule": {"type": "string", "allowed": list(SCHEDULES)},
    "dask": {
        "type": "dict",
        "nullable": True,
        "schema": {"address": {"type": "string", "empty": False, "nullable": True}},
    },
    "default_env": {"type": "string"},
    # files and tables known by name (SPEC 16): name -> declaration
    "datasets": {
        "type": "dict",
        "nullable": True,
        "keysrules": {"type": "string", "regex": VARIABLE_PATTERN},
        "valuesrules": DATASET_SCHEMA,
    },
    # notifications (SPEC 18), delivered by the normandy-notify plugin
    "notify": {
        "type": "list",
        "nullable": True,
        "schema": {"type": "dict", "schema": NOTIFICATION_SCHEMA},
    },
    "envs": {
        "type": "dict",
        "required": True,
        "minlength": 1,
        "keysrules": _NAMES,
        "valuesrules": ENV_SCHEMA,
    },
}

FLOW_SCHEMA: dict[str, Any] = {
    "tags": _STRINGS,
    "params": {"type": "dict", "nullable": True},
    "cache": {"type": "boolean"},
    "steps": {
        "type": "dict",
        "required": True,
        "minlength": 1,
        "keysrules": _NAMES,
        # null or empty steps, and the entries, are checked in the second pass
        "valuesrules": {"type": ["list", "dict"], "nullable": True},
    },
}

TEMPLATE_SCHEMA: dict[str, Any] = {
    "params": {"type": "dict", "nullable": True},
    "steps": {
        "type": "dict",
        "required": True,
        "minlength": 1,
        "keysrules": _NAMES,
        "valuesrules": {"type": ["list", "dict"], "nullable": True},
    },
}

FILE_SCHEMA: dict[str, Any] = {
    "confs": {"type": "dict", "required": True, "schema": CONFS_SCHEMA},
    # steps written once, used by the steps of flows (SPEC 20)
    "templates": {
        "type": "dict",
        "nullable": True,
        "keysrules": _NAMES,
        "valuesrules": {"type": "dict", "schema": TEMPLATE_SCHEMA},
    },
    "flows": {
        "type": "dict",
        "required": True,
        "minlength": 1,
        "keysrules": _NAMES,
        "valuesrules": {"type": "dict", "schema": FLOW_SCHEMA},
    },
}

PROCESS_OPTIONS: dict[str, Any] = {
    "params": {"type": "dict", "nullable": True},
    "avoid_tags": _STRINGS,
    "error_tolerance": {"type": "boolean"},
    "iter_param": {
        "type": "dict",
        "schema": {
            "name": {"type": "string", "required": True, "empty": False},
            "values": {"type": "list", "required": True, "minlength": 1},
        },
    },
    "retries": {"type": "integer", "min": 0},
    "retry_delay": {"type": "number", "min": 0},
    "timeout": {"type": "number", "min": 0.001, "nullable": True},
    # declared data (SPEC 12); the shapes inside are checked where the entry is read
    "process": {"type": "string", "regex": NAME_PATTERN},
    "inputs": {"type": ["dict", "list"], "nullable": True},
    "outputs": {"type": ["string", "list", "dict"], "nullable": True},
    "cache": {"type": "boolean"},
    # pools (SPEC 19): units of confs.pools held while the task runs
    "pool": {"type": "string", "regex": NAME_REGEX},
    "pools": {"type": "dict", "keysrules": _NAMES, "valuesrules": _UNITS},
    # dynamic fan-out (SPEC 19): one task per element of a variable
    "map": {"type": "string", "empty": False},
    "map_as": {"type": "string", "regex": IDENTIFIER_REGEX},
    "max_map": {"type": "integer", "min": 1},
}

USE_OPTIONS: dict[str, Any] = {
    "use": {"type": "string", "required": True, "regex": NAME_REGEX},
    "namespace": {"type": "string", "empty": False},
    "params": {"type": "dict", "nullable": True},
    "inputs": {"type": "dict", "nullable": True},
    "outputs": {"type": "dict", "nullable": True},
}
"""A step that uses a template (SPEC 20): ``{use: NAME, namespace: NS, params: {…},
inputs: {template_variable: variable}, outputs: {template_variable: variable}}``."""

_TYPE_NAMES = {
    "dict": "a mapping",
    "list": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}

_validators: dict[int, cerberus.Validator] = {}

_passes = KeptFile(None, 2)
"""Keys (:func:`_pass_key`) of what passed a schema, kept in the project's state folder
(``checked.json``, :func:`remember_passes`): a configuration checked once is not checked
again by cerberus (whose validator checks its own schema first: 40 ms of every command)
until it, or the schema, changes."""
_schema_keys: dict[int, str] = {}


def remember_passes(state: Path | None) -> None:
    """Keep what passes in ``state`` (the project's state folder), and skip what passed
    there before; ``None``: check everything, keep nothing."""
    global _passes
    _passes = KeptFile(state / "checked.json" if state is not None else None, 2, limit=4096)


def save_passes() -> None:
    """Write what passed since :func:`remember_passes`, where the state folder is there
    (else they are kept, for a call once a run has made it)."""
    _passes.save()


def _pass_key(node: Any, schema: dict[str, Any]) -> str | None:
    """What a pass of ``node`` against ``schema`` is kept as: a hash of the schema (and
    Normandy's version and which cerberus is installed) with the node, every value typed (``1``,
    ``1.0``, ``"1"``, ``true`` and a date are all different); ``None`` for a node that
    cannot be written so (it is checked every time)."""
    import xxhash

    schema_key = _schema_keys.get(id(schema))
    if schema_key is None:
        from normandy_core import __version__

        text = repr((__version__, _cerberus_stamp(), _canonical(schema)))
        digest = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))
        schema_key = _schema_keys[id(schema)] = digest
    try:
        text = repr(_canonical(node))
    except (TypeError, RecursionError):
        return None
    return schema_key + xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def _cerberus_stamp() -> tuple[str, int, int] | None:
    """Which cerberus is installed, without importing it: its package's file, size and
    modification time (a new version, or a copy edited in place, is another)."""
    import importlib.util

    spec = importlib.util.find_spec("cerberus")
    if spec is None or spec.origin is None:
        return None
    try:
        stat = os.stat(spec.origin)
    except OSError:
        return None
    return spec.origin, stat.st_size, stat.st_mtime_ns


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        return ("map", tuple(sorted(items, key=repr)))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_canonical(v) for v in value))
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        # the exact type: a YAML library's boolean that is an int must not pass as one
        return (type(value).__module__, type(value).__qualname__, repr(value))
    raise TypeError(f"{type(value).__name__} is not kept")


def check(
    doc: YamlDocument, node: Any, schema: dict[str, Any], prefix: Sequence[PathKey] = ()
) -> list[Problem]:
    """Validate ``node`` (found at ``prefix`` in ``doc``) against ``schema``."""
    key = _pass_key(node, schema) if _passes.path is not None else None
    if key is not None and _passes.get(key):
        return []
    problems = _check(doc, node, schema, prefix)
    if key is not None and not problems:
        _passes.put(key, True)
    return problems


def _check(
    doc: YamlDocument, node: Any, schema: dict[str, Any], prefix: Sequence[PathKey]
) -> list[Problem]:
    import cerberus

    validator = _validators.get(id(schema))
    if validator is None:
        validator = _validators[id(schema)] = cerberus.Validator(schema)
    # no rule of these schemas normalizes (no default, coerce, rename nor purge), and
    # cerberus' normalization pass over a mapping is what cost ~2 ms per process entry
    if validator.validate(node, normalize=False):
        return []
    problems: list[Problem] = []
    # cerberus' public error tree keeps each error's rule, which tells a bad key from a
    # bad value (the ``errors`` dict of messages does not)
    for error, on_key in _leaves(_top_errors(validator.document_error_tree), on_key=False):
        keys = [*prefix, *error.document_path]
        message = _message(error, schema, error.document_path)
        at_key = on_key or error.code == cerberus.errors.UNKNOWN_FIELD.code
        problems.append(doc.problem(keys, message, at_key=at_key))
    return problems


def _top_errors(tree: Any) -> list[ValidationError]:
    """The errors of the validation itself (not those inside a group error), in order,
    from cerberus' document error tree (every error is on the node of its path there,
    a group error's children included)."""
    found: list[ValidationError] = []

    def visit(node: Any) -> None:
        found.extend(node.errors)
        for child in node.descendants.values():
            visit(child)

    visit(tree)
    inside = {id(c) for e in found if e.is_group_error for c in e.child_errors}
    return [e for e in found if id(e) not in inside]


def _leaves(errors: Sequence[ValidationError], on_key: bool) -> list[tuple[ValidationError, bool]]:
    out = []
    for error in errors:
        if error.is_group_error:
            out.extend(_leaves(error.child_errors, on_key or error.rule == "keysrules"))
        else:
            out.append((error, on_key))
    return out


def _message(error: ValidationError, schema: Mapping[str, Any], path: Sequence[PathKey]) -> str:
    import cerberus

    value = error.value
    key = path[-1] if path else ""
    if error.code == cerberus.errors.UNKNOWN_FIELD.code:
        allowed = _allowed_keys(schema, path[:-1])
        hint = _did_you_mean(str(key), allowed)
        return f"unknown key {key!r}; {hint or 'expected one of: ' + ', '.join(allowed)}"
    if error.code == cerberus.errors.REQUIRED_FIELD.code:
        return f"missing required key {key!r}"
    if error.rule == "type":
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in _as_list(error.constraint))
        return f"must be {wanted}, not {_describe(value)}"
    if error.rule == "regex":
        if error.constraint == _MODULE_REGEX:
            return f"invalid module name {value!r}: use a dotted Python name (package.module)"
        if error.constraint == NAME_PATTERN:
            return f"invalid process name {value!r}: names match {NAME_PATTERN}"
        if error.constraint == VARIABLE_PATTERN:
            return (
                f"invalid dataset name {value!r}: use letters, digits, '_', '.' and '-' "
                "(it is the name of a process's input or output)"
            )
        if error.constraint == _URL:
            return f"invalid URL {value!r}: write http://HOST/PATH or https://HOST/PATH"
        if error.constraint == _HOST_PORT:
            return f"invalid server {value!r}: write HOST or HOST:PORT"
        if error.constraint == TARGET_PATTERN:
            return (
                f"invalid target {value!r}: write 'package.module:function', the module "
                "importable from the project root or its src/ folder"
            )
        if error.constraint == IDENTIFIER_REGEX:
            return f"invalid parameter name {value!r}: use a Python identifier"
        return f"invalid name {value!r}: use letters, digits, '_' and '-'"
    if error.rule == "allowed":
        allowed = [str(c) for c in error.constraint]
        wrong = [v for v in value if v not in allowed] if isinstance(value, list) else [value]
        hint = _did_you_mean(str(wrong[0]), allowed) if len(wrong) == 1 else ""
        shown = ", ".join(repr(w) for w in wrong)
        return f"must be one of: {', '.join(allowed)} (not {shown}){'; ' + hint if hint else ''}"
    if error.rule == "max":
        return f"must be at most {error.constraint} (not {value!r})"
    if error.rule == "min":
        return f"must be at least {error.constraint} (not {value!r})"
    if error.rule in ("minlength", "empty"):
        return "must not be empty"
    if error.rule == "nullable":
        return "must not be empty (null)"
    template = cerberus.errors.BasicErrorHandler.messages.get(error.code, "invalid value")
    return str(template.format(*error.info, constraint=error.constraint, field=key, value=value))


def _allowed_keys(schema: Mapping[str, Any], parent: Sequence[PathKey]) -> list[str]:
    """The keys the schema allows in the mapping at ``parent``."""
    rules: Mapping[str, Any] | None = {"type": "dict", "schema": schema}
    for key in parent:
        assert rules is not None
        if rules.get("type") == "list" and isinstance(key, int):
            rules = rules.get("schema")  # an item of a list
        elif "schema" in rules and rules.get("type") == "dict":
            rules = rules["schema"].get(key)
        else:
            rules = rules.get("valuesrules")
        if rules is None:
            return []
    return sorted(rules.get("schema", {})) if rules and rules.get("type") == "dict" else []


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
