"""Where a process's ``params`` go (SPEC 13): whether its code hands them (or the ``pipe``
that holds them) to code Normandy cannot follow (:func:`params_escape`) — a library, a
container, ``locals()`` — where a C extension may read them without the
:class:`~normandy_core._tracing.Params` that notes the keys read seeing it. Such a process
counts as reading every param. ``params`` handed to a function of the project is followed
into it. And whether a process may write variables it does not declare
(:func:`writes_undeclared`), for ``run --dry-run --explain``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable

from normandy_core._source import Source, names_in

DICT_METHODS = frozenset(
    {
        "get", "keys", "values", "items", "copy", "setdefault", "pop", "popitem", "update",
        "clear", "fromkeys", "__getitem__", "__contains__", "__iter__", "__len__",
    }
)  # fmt: skip
SAFE_CALLS = frozenset(
    {
        "isinstance", "issubclass", "type", "id", "callable", "hasattr", "len", "bool",
        "print", "str", "repr", "format", "dict", "list", "tuple", "set", "frozenset",
        "sorted", "iter", "reversed", "enumerate", "zip", "map", "filter", "any", "all",
        "min", "max", "sum",
    }
)  # fmt: skip
"""Built-ins that read a dict only through its Python methods (which ``Params``
records): handing ``params`` to them is no escape."""

Resolve = Callable[[str], "Source | None"]
"""A project module's name -> its source (``None``: not a module of the project)."""

_PARAMS, _PIPE = "params", "pipe"


def params_escape(source: Source, function: str, resolve: Resolve) -> bool:
    """Whether the process ``function`` of ``source`` may read its ``params`` where
    :class:`~normandy_core._tracing.Params` cannot see it: handed (itself, or the
    ``pipe`` that holds it) to code outside the project, stored, returned, looked up by
    ``locals()``… A doubt (a method, a function not found, ``**kwargs``) is an escape."""
    if "." in function:
        return True
    node = source.function(function)
    if node is None:
        return True
    if node.args.kwarg is not None:
        return True
    names = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
    tracked = {n: kind for n, kind in ((_PARAMS, _PARAMS), (_PIPE, _PIPE)) if n in names}
    if not tracked:
        return False
    return not _Flow(resolve).safe(source, node, tracked)


class _Flow:
    """Follows ``params`` (and ``pipe``) through a function, and the project functions it
    hands them to."""

    def __init__(self, resolve: Resolve) -> None:
        self.resolve = resolve
        self.seen: dict[tuple[str, str, frozenset[tuple[str, str]]], bool] = {}
        self.depth = 0

    def safe(
        self,
        source: Source,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        tracked: dict[str, str],
    ) -> bool:
        key = (source.module, node.name, frozenset(tracked.items()))
        if key in self.seen:
            return self.seen[key]
        if self.depth > 30:
            return False
        self.seen[key] = True  # a cycle: what else it does is looked at below
        self.depth += 1
        try:
            result = self._safe(source, node, dict(tracked))
        finally:
            self.depth -= 1
        self.seen[key] = result
        return result

    def _safe(
        self,
        source: Source,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        tracked: dict[str, str],
    ) -> bool:
        parents = {
            child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)
        }
        for child in ast.walk(node):  # locals(), vars(), eval, exec: every name reachable
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("locals", "vars", "eval", "exec")
            ):
                return False
        changed = True
        while changed:  # aliases: p = params, q = pipe.params, r = params or {}
            changed = False
            for child in ast.walk(node):
                if isinstance(child, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and child.value:
                    kind = self._kind(child.value, tracked)
                    targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                    for target in targets:
                        if kind and isinstance(target, ast.Name) and target.id not in tracked:
                            tracked[target.id] = kind
                            changed = True
        for child in ast.walk(node):
            if (
                isinstance(child, ast.Name)
                and child.id in tracked
                and isinstance(child.ctx, ast.Load)
                and not self._use(source, child, tracked[child.id], parents, tracked)
            ):
                return False
        return True

    def _kind(self, value: ast.expr, tracked: dict[str, str]) -> str | None:
        if isinstance(value, ast.Name):
            return tracked.get(value.id)
        if (
            isinstance(value, ast.Attribute)
            and value.attr == "params"
            and isinstance(value.value, ast.Name)
            and tracked.get(value.value.id) == _PIPE
        ):
            return _PARAMS
        if isinstance(value, ast.BoolOp):
            kinds = {self._kind(v, tracked) for v in value.values} - {None}
            return kinds.pop() if len(kinds) == 1 else (_PARAMS if kinds else None)
        if isinstance(value, ast.IfExp):
            return self._kind(value.body, tracked) or self._kind(value.orelse, tracked)
        return None

    def _use(
        self,
        source: Source,
        expr: ast.expr,
        kind: str,
        parents: dict[ast.AST, ast.AST],
        tracked: dict[str, str],
    ) -> bool:
        parent = parents.get(expr)
        if kind == _PIPE and isinstance(parent, ast.Attribute) and parent.value is expr:
            if parent.attr == "params":
                return self._use(source, parent, _PARAMS, parents, tracked)
            return not parent.attr.startswith("__")
        if isinstance(parent, (ast.BoolOp, ast.IfExp)):
            return self._use(source, parent, kind, parents, tracked)
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return all(isinstance(t, ast.Name) and t.id in tracked for t in targets)
        if isinstance(parent, ast.Call):
            return self._call(source, parent, expr, kind)
        if isinstance(parent, ast.keyword):
            call = parents.get(parent)
            if parent.arg is None:  # **params: through keys(), recorded
                return kind == _PARAMS
            return isinstance(call, ast.Call) and self._call(source, call, expr, kind, parent.arg)
        if isinstance(parent, ast.Starred):  # *params: iterated, recorded
            return kind == _PARAMS
        if kind == _PIPE:
            return isinstance(parent, ast.Expr)
        if isinstance(parent, ast.Subscript) and parent.value is expr:
            return True
        if isinstance(parent, ast.Attribute) and parent.value is expr:
            return parent.attr in DICT_METHODS
        if isinstance(parent, ast.Dict):  # {**params}: through keys(); a value: stored
            return any(k is None and v is expr for k, v in zip(parent.keys, parent.values))
        return isinstance(
            parent,
            (
                ast.Compare, ast.FormattedValue, ast.UnaryOp, ast.BinOp, ast.If, ast.While,
                ast.Assert, ast.Expr, ast.comprehension, ast.For, ast.AsyncFor,
            ),
        )  # fmt: skip

    def _call(
        self, source: Source, call: ast.Call, expr: ast.expr, kind: str, keyword: str | None = None
    ) -> bool:
        if call.func is expr:
            return True
        if (
            isinstance(call.func, ast.Name)
            and call.func.id in SAFE_CALLS
            and call.func.id not in source.defs
            and call.func.id not in source.bindings
        ):
            return True
        target = self._callee(source, call.func)
        if target is None:
            return False
        callee_source, callee = target
        params = [*callee.args.posonlyargs, *callee.args.args]
        if keyword is None:
            index = next((i for i, a in enumerate(call.args) if a is expr), None)
            if index is None or index >= len(params):
                return False
            name = params[index].arg
        else:
            names = {a.arg for a in [*params, *callee.args.kwonlyargs]}
            if keyword not in names:
                return False
            name = keyword
        return self.safe(callee_source, callee, {name: kind})

    def _callee(
        self, source: Source, func: ast.expr
    ) -> tuple[Source, ast.FunctionDef | ast.AsyncFunctionDef] | None:
        """The project function ``func`` names, and its module's source."""
        if isinstance(func, ast.Name):
            node = source.function(func.id)
            if node is not None:
                return source, node
            for module in source.bindings.get(func.id, []):
                if module.endswith("?"):
                    owner = self.resolve(module[:-1].rpartition(".")[0])
                    if owner is not None:
                        found = owner.function(func.id) or owner.function(
                            module[:-1].rpartition(".")[2]
                        )
                        if found is not None:
                            return owner, found
            return None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            modules = source.bindings.get(func.value.id, [])
            if modules:
                owner = self.resolve(modules[-1].rstrip("?"))
                if owner is not None:
                    node = owner.function(func.attr)
                    if node is not None:
                        return owner, node
        return None


def writes_undeclared(source: Source | None, function: str, sources: Iterable[Source]) -> bool:
    """Whether the process may write variables it does not declare: it takes ``pipe``, or
    code it reaches calls ``variables_storage()`` (a doubt counts as yes)."""
    if source is None or "." in function:
        return True
    node = source.function(function)
    if node is None or node.args.kwarg is not None:
        return True
    if any(
        a.arg == _PIPE for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    ):
        return True
    return any(
        s.tree is None
        or "variables_storage" in s.bindings
        or "variables_storage" in names_in(s.tree)
        for s in (source, *sources)
    )
