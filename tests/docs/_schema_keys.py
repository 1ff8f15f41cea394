"""Every key of the configuration schema, with the words its reference must use for its
type: what ``docs/reference/configuration.md`` is checked against."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from normandy_core.config._schema import FILE_SCHEMA, PROCESS_OPTIONS

PLACEHOLDERS = {
    "confs.datasets": "<name>",
    "confs.envs": "<env>",
    "confs.processes": "<name>",
    "confs.pools": "<pool>",
    "flows": "<flow>",
    "flows.<flow>.steps": "<step>",
}
"""The name a key path gives to the keys a mapping's ``keysrules`` allow."""
ENTRY = "flows.<flow>.steps.<step>.<entry>"
"""Where the options of a process entry (``PROCESS_OPTIONS``) sit."""

TYPE_WORDS = {
    "dict": "mapping",
    "list": "list",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}


def schema_keys() -> dict[str, set[str]]:
    """Key path -> the words its documented type must hold."""
    keys = dict(_walk(FILE_SCHEMA, ""))
    entry = dict(_walk(PROCESS_OPTIONS, ENTRY))
    pools = f"{ENTRY}.pools"  # units of each pool: named as in confs.pools
    entry[f"{pools}.<pool>"] = _words(PROCESS_OPTIONS["pools"]["valuesrules"])
    keys.update(entry)
    return keys


def _walk(schema: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, set[str]]]:
    for key, rules in schema.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path, _words(rules)
        yield from _inside(rules, path)


def _inside(rules: Mapping[str, Any], path: str) -> Iterator[tuple[str, set[str]]]:
    if "schema" in rules and rules.get("type") == "dict":
        yield from _walk(rules["schema"], path)
    item = rules.get("schema") if rules.get("type") == "list" else None
    if isinstance(item, Mapping) and item.get("type") == "dict" and "schema" in item:
        yield from _walk(item["schema"], f"{path}[]")  # the keys of each item of a list
    if "valuesrules" in rules and path in PLACEHOLDERS:
        inner = f"{path}.{PLACEHOLDERS[path]}"
        values = rules["valuesrules"]
        yield inner, _words(values)
        yield from _inside(values, inner)


def _words(rules: Mapping[str, Any]) -> set[str]:
    kinds = rules.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    words = {TYPE_WORDS[k] for k in kinds}
    words.update(str(v) for v in rules.get("allowed", ()))
    if rules.get("required"):
        words.add("required")
    return words
