"""What a process reads through ``pipe.vars``, read from its source without importing it
(``confs.schedule: dataflow`` checks, before running, that every such read is declared).

Only what is certain is found: ``pipe.vars["x"]``, ``pipe.vars.get("x")``,
``pipe.vars.value("x")`` and ``"x" in pipe.vars`` with a literal name, where ``pipe`` is
the process's parameter (or a name bound to ``pipe.vars`` or ``variables_storage()`` in
the function). A name computed at run time is not known here: the worker refuses, as it
happens, a read that was not declared.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from normandy_core.signatures import function_source

_READERS = ("get", "value")


@dataclass(frozen=True)
class Read:
    """A literal read of ``name`` through ``pipe.vars``, at ``line`` of ``file``."""

    name: str
    file: str
    line: int


def static_reads(target: str) -> list[Read] | None:
    """The literal ``pipe.vars`` reads of the function ``"module:function"``; ``None``
    where its source cannot be found for certain (decorated, made at run time…)."""
    found = function_source(target)
    if found is None:
        return None
    node, path = found
    params = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
    pipes = {"pipe"} & params
    stores: set[str] = set()
    for sub in ast.walk(node):  # names bound to the storage: v = pipe.vars
        if isinstance(sub, ast.Assign) and _is_storage(sub.value, pipes, stores):
            stores.update(t.id for t in sub.targets if isinstance(t, ast.Name))
    reads = []
    for sub in ast.walk(node):
        name = _read(sub, pipes, stores)
        if name is not None:
            reads.append(Read(name, str(path), getattr(sub, "lineno", node.lineno)))
    return reads


def _is_storage(node: ast.expr, pipes: set[str], stores: set[str]) -> bool:
    """``pipe.vars``, a name bound to it, or ``variables_storage()``."""
    if isinstance(node, ast.Attribute) and node.attr == "vars":
        return isinstance(node.value, ast.Name) and node.value.id in pipes
    if isinstance(node, ast.Name):
        return node.id in stores
    if isinstance(node, ast.Call) and not node.args:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name == "variables_storage"
    return False


def _read(node: ast.AST, pipes: set[str], stores: set[str]) -> str | None:
    """The literal name ``node`` reads from the storage, if it does."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        if _is_storage(node.value, pipes, stores):
            return _literal(node.slice)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in _READERS and node.args and _is_storage(node.func.value, pipes, stores):
            return _literal(node.args[0])
    elif (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.In, ast.NotIn))
        and _is_storage(node.comparators[0], pipes, stores)
    ):
        return _literal(node.left)
    return None


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
