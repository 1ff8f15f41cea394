"""What a process's function reaches in its module's source, read without importing it
(SPEC 13): the top-level definitions it uses (:meth:`Source.reachable`), the hash of
that code (:meth:`Source.code_hash`), the modules that code imports
(:meth:`Source.imports_of`), and whether it hands its ``params`` to code Normandy cannot
follow (:func:`params_escape`).

A doubt always counts as a dependency. A module that looks names up dynamically
(``globals()``, ``vars(x)``, ``getattr`` with a computed name, ``sys.modules``,
``__dict__``, ``eval``/``exec``) is taken whole: every definition, every import. (A
module imported by a computed name, through ``import_module`` or ``__import__``, is seen
imported by the task's worker.) A decorated definition is kept for every
function of its module (a decorator may register it where other code finds it), and so is
everything at the top level that is not a definition (it runs when the module is imported).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

_LOOKUPS = frozenset({"globals", "eval", "exec", "compile"})
"""Built-ins through which code reaches names it computes. (``import_module`` and
``__import__`` of a computed name import a module the task's worker sees imported.)"""

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Source:
    """A module's parsed source (:func:`read_source`)."""

    module: str
    path: Path
    tree: ast.Module | None
    """``None``: it does not parse (then it is hashed whole, as text)."""
    text_hash: str
    dynamic: bool = False
    defs: dict[str, ast.stmt] = field(default_factory=dict)
    """Top-level definitions a function can do without: undecorated ``def``/``class``."""
    uses: dict[str, set[str]] = field(default_factory=dict)
    """Definition -> the names its code uses."""
    shared_uses: set[str] = field(default_factory=set)
    """The names the rest of the module uses (its top-level statements)."""
    bindings: dict[str, list[str]] = field(default_factory=dict)
    """Name bound by a top-level import -> the modules behind it (``a.b?``: ``b`` of ``a``,
    where it is a module)."""
    always: list[str] = field(default_factory=list)
    """Modules imported whatever is used (``from a import *``)."""
    inner: dict[str, list[str]] = field(default_factory=dict)
    """Definition -> the modules imported inside it (statements, literal
    ``import_module``/``__import__``)."""

    # -- what a function reaches ---------------------------------------------------------------

    def reachable(self, function: str) -> set[str] | None:
        """The definitions ``function`` (a top-level name; ``Class.method``: its class)
        reaches, itself included; ``None`` where all of them count (the module is
        dynamic, does not parse, or ``function`` is not a definition of it)."""
        root = function.partition(".")[0]
        if self.tree is None or self.dynamic or root not in self.defs:
            return None
        reached: set[str] = set()
        todo = [root, *(n for n in self.shared_uses if n in self.defs)]
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            todo.extend(n for n in self.uses.get(name, ()) if n in self.defs and n not in reached)
        return reached

    def code_hash(self, function: str) -> str:
        """The hash of what ``function``'s result may depend on in this module: everything
        but the definitions it does not reach. The syntax tree is hashed, not the text, so
        comments and formatting change nothing."""
        if self.tree is None:
            return self.text_hash
        reached = self.reachable(function)
        hasher = xxhash.xxh3_128()
        for node in self.tree.body:
            name = getattr(node, "name", None)
            if reached is None or name not in self.defs or name in reached:
                hasher.update(ast.dump(node).encode())
        return hasher.hexdigest()

    def imports_of(self, function: str | None) -> list[str]:
        """The modules the code ``function`` reaches imports (``None``: the whole
        module's imports); names ``a.b?`` are ``b`` of ``a``, where it is a module."""
        reached = None if function is None else self.reachable(function)
        if reached is None:
            found = [m for modules in self.bindings.values() for m in modules]
            found += [m for modules in self.inner.values() for m in modules]
            return [*self.always, *dict.fromkeys(found)]
        used = set(self.shared_uses)
        for name in reached:
            used |= self.uses.get(name, set())
        found = list(self.always)
        for name, modules in self.bindings.items():
            if name in used:
                found.extend(modules)
        for name in reached:
            found.extend(self.inner.get(name, ()))
        found.extend(self.inner.get("", ()))
        return list(dict.fromkeys(found))

    def function(self, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The top-level function ``name``, decorated or not."""
        if self.tree is None:
            return None
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return node
        return None


_cache: dict[tuple[str, int, int], Source] = {}


def read_source(module: str, path: Path) -> Source | None:
    """The parsed source of ``module`` at ``path`` (cached while the file is unchanged);
    ``None`` where it cannot be read."""
    try:
        info = path.stat()
        key = (f"{module}:{path}", info.st_mtime_ns, info.st_size)
        found = _cache.get(key)
        if found is not None:
            return found
        data = path.read_bytes()
    except OSError:
        return None
    found = _cache[key] = parse(module, path, data)
    return found


def parse(module: str, path: Path, data: bytes) -> Source:
    text_hash = xxhash.xxh3_128_hexdigest(data)
    try:
        tree = ast.parse(data, str(path))
    except (SyntaxError, ValueError):
        return Source(module, path, None, text_hash)
    source = Source(module, path, tree, text_hash, dynamic=_dynamic(tree))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in tree.body:
        name = getattr(node, "name", None)
        if isinstance(node, _DEFS) and not node.decorator_list:
            assert name is not None
            source.defs[name] = node
            source.uses[name] = _names(node) - _locals(node) - {name}
            source.inner[name] = _imports_inside(node, package)
        else:
            source.shared_uses |= _names(node, strings=not _is_all(node))
            for child in _top_imports(node):
                _bind(source, child, package)
            if isinstance(node, _DEFS):  # a decorated definition: shared, its imports too
                source.inner.setdefault("", []).extend(_imports_inside(node, package))
            else:
                source.inner.setdefault("", []).extend(_literal_imports(node, package))
    return source


def _is_all(node: ast.stmt) -> bool:
    """``__all__ = [...]``: names exported for ``import *``, not used."""
    return isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and any(
        isinstance(t, ast.Name) and t.id == "__all__"
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
    )


def _dynamic(tree: ast.Module) -> bool:
    """Whether the module looks names up by computed strings anywhere."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr == "__dict__" or (node.attr == "modules" and _is_name(node.value, "sys"))
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "sys"
            and any(alias.name == "modules" for alias in node.names)
        ):
            return True
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name in _LOOKUPS:
            return True
        if name == "vars" and node.args:
            return True
        if name == "getattr" and not (len(node.args) >= 2 and _string(node.args[1])):
            return True
    return False


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _string(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal(node: ast.Call) -> str | None:
    """The module name of ``import_module("a.b")`` / ``__import__("a.b")``."""
    if node.args and _string(node.args[0]):
        value = node.args[0].value  # type: ignore[attr-defined]
        return value if isinstance(value, str) and not value.startswith(".") else None
    return None


def _names(node: ast.AST, *, strings: bool = False) -> set[str]:
    """The names ``node`` mentions: names, attributes, the constant names given to
    ``getattr``; and strings, where asked (at the top level: a dispatch table)."""
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            if strings:
                found.add(child.value)
        elif _called_getattr(child):
            found.add(child.args[1].value)  # type: ignore[attr-defined]
    return found


def _called_getattr(node: ast.AST) -> bool:
    """``getattr(x, "name")``: an attribute by a constant name."""
    return (
        isinstance(node, ast.Call)
        and _called(node) == "getattr"
        and len(node.args) > 1
        and _string(node.args[1])
    )


def _locals(node: ast.AST) -> set[str]:
    """The names a top-level function binds in its own scope (its parameters, what it
    assigns or imports): in its body such a name is not the module's definition of the
    same name, as in ``def double(raw)`` next to ``def raw()``. Bindings in nested scopes
    are left out and ``global`` names kept, so a doubt counts as a use."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return set()
    args = node.args
    bound = {
        a.arg
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if a is not None
    }
    declared = {
        name
        for child in ast.walk(node)
        if isinstance(child, (ast.Global, ast.Nonlocal))
        for name in child.names
    }
    todo: list[ast.AST] = list(node.body)
    while todo:
        child = todo.pop()
        if isinstance(child, _DEFS):
            bound.add(child.name)  # its body is another scope
            continue
        if isinstance(child, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp)):
            continue
        if isinstance(child, ast.GeneratorExp):
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            bound.add(child.id)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in child.names)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            bound.add(child.name)
        todo.extend(ast.iter_child_nodes(child))
    return bound - declared


# -- imports --------------------------------------------------------------------------------------


def _top_imports(node: ast.stmt) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a top-level statement, outside definitions (inside
    ``try``, ``if``, ``with`` blocks too)."""
    todo: list[ast.AST] = [node]
    while todo:
        child = todo.pop()
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif not isinstance(child, (*_DEFS, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(child))


def _absolute(node: ast.ImportFrom, package: str) -> str | None:
    base = node.module or ""
    if not node.level:
        return base or None
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return None
    head = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{head}.{base}".strip(".") if base else head or None


def _bind(source: Source, node: ast.Import | ast.ImportFrom, package: str) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            chain = [".".join(parts[: i + 1]) for i in range(len(parts))]
            if alias.asname:
                source.bindings.setdefault(alias.asname, []).extend(chain)
            else:
                source.bindings.setdefault(parts[0], []).extend(chain)
        return
    base = _absolute(node, package)
    if base is None:
        return
    for alias in node.names:
        if alias.name == "*":
            source.always.append(base)
            continue
        source.bindings.setdefault(alias.asname or alias.name, []).extend(
            [base, f"{base}.{alias.name}?"]
        )


def _imports_inside(node: ast.AST, package: str) -> list[str]:
    """The modules imported anywhere inside ``node``: statements and literal
    ``import_module``/``__import__`` calls."""
    found: list[str] = []
    for child in ast.walk(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                parts = alias.name.split(".")
                found.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
        elif isinstance(child, ast.ImportFrom):
            base = _absolute(child, package)
            if base is not None:
                found.append(base)
                found.extend(f"{base}.{a.name}?" for a in child.names if a.name != "*")
    found.extend(_literal_imports(node, package))
    return found


def _literal_imports(node: ast.AST, package: str) -> list[str]:
    found: list[str] = []
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and _called(child) in ("import_module", "__import__"):
            name = _literal(child)
            if name is not None:
                parts = name.split(".")
                found.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found


# -- params handed to code Normandy cannot follow --------------------------------------------------

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
        s.tree is None or "variables_storage" in s.bindings or "variables_storage" in _names(s.tree)
        for s in (source, *sources)
    )
