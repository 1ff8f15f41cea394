"""What a process's function reaches in its module's source, read without importing it
(SPEC 13): the top-level definitions it uses (:meth:`Source.reachable`), the hash of
that code (:meth:`Source.code_hash`), the modules that code imports
(:meth:`Source.imports_of`).

Whether a process hands its ``params`` to code Normandy cannot follow is
:mod:`normandy_core._escape`'s.

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
from collections.abc import Iterator
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
            source.uses[name] = names_in(node) - _locals(node) - {name}
            source.inner[name] = _imports_inside(node, package)
        else:
            source.shared_uses |= names_in(node, strings=not _is_all(node))
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
        name = called_name(node)
        if name in _LOOKUPS:
            return True
        if name == "vars" and node.args:
            return True
        if name == "getattr" and not (len(node.args) >= 2 and _string(node.args[1])):
            return True
    return False


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def called_name(node: ast.Call) -> str | None:
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


def names_in(node: ast.AST, *, strings: bool = False) -> set[str]:
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
        and called_name(node) == "getattr"
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
        if isinstance(child, ast.Call) and called_name(child) in ("import_module", "__import__"):
            name = _literal(child)
            if name is not None:
                parts = name.split(".")
                found.extend(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found
