"""A process's signature read from its module's source, without importing it.

Checking a flow's data before a run needs every process's parameters, and importing a
process module to get them costs its libraries' imports (pandas, scikit-learn: seconds)
in the ``normandy`` process, on top of the workers' own. So the module's file is found
the way the import system would find it (without running any package's ``__init__``),
parsed, and the function's ``def`` read: its parameters, which have defaults. Where that is
not certain — a decorated function, one made at run time, a class — ``None`` says so, and
the caller imports the module instead (:meth:`normandy_core.registry.Registry.signature`).
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from pathlib import Path

from normandy_core.binding import RESERVED, Parameter, Signature
from normandy_core.errors import ProcessLoadError

_MAX_HOPS = 4
"""How many ``from x import f`` re-exports are followed to the ``def``."""

_Found = ast.FunctionDef | ast.AsyncFunctionDef | tuple[str, str] | None
"""What a module's top-level name is: its ``def``, where it is imported from, or ``None``
(anything else: an assignment, a class, a decorated function, a module…)."""

_trees: dict[tuple[str, float], ast.Module] = {}
_tables: dict[tuple[str, int], dict[str, _Found]] = {}


def static_signature(
    target: str, name: str = "", files: dict[str, Path | None] | None = None
) -> Signature | None:
    """The :class:`Signature` of ``"module:function"`` read from the source, or ``None``
    where it cannot be known for certain without importing. Raises
    :class:`ProcessLoadError` for a signature that cannot be served. ``files``: where
    each module's file was found, kept by a caller reading many processes at once (a
    check), which knows that nothing moves meanwhile."""
    module, _, attribute = target.partition(":")
    if not attribute or "." in attribute:
        return None  # Class.method and the like: import
    for _ in range(_MAX_HOPS):
        found = _definition(module, attribute, files)
        if found is None:
            return None
        if isinstance(found, tuple):  # re-exported: from module import attribute
            module, attribute = found
            continue
        return _signature(found, name, target)
    return None


def function_source(
    target: str,
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, Path] | None:
    """The ``def`` of ``"module:function"`` and its file, read from the source (following
    re-exports), or ``None`` where that is not certain (see the module's docstring)."""
    module, _, attribute = target.partition(":")
    if not attribute or "." in attribute:
        return None
    for _ in range(_MAX_HOPS):
        found = _definition(module, attribute, None)
        if found is None:
            return None
        if isinstance(found, tuple):
            module, attribute = found
            continue
        path = module_file(module)
        return (found, path) if path is not None else None
    return None


def _definition(module: str, attribute: str, files: dict[str, Path | None] | None) -> _Found:
    """The top-level ``def`` of ``attribute`` in ``module``, or where it is imported from,
    or ``None`` where it is anything else (or the source cannot be found)."""
    if files is None:
        path = module_file(module)
    elif module in files:
        path = files[module]
    else:
        path = files[module] = module_file(module)
    if path is None:
        return None
    tree = _parse(path)
    if tree is None:
        return None
    key = (module, id(tree))  # a tree lives as long as its file is unchanged
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = _top_level(module, path, tree)
    return table.get(attribute)


def _top_level(module: str, path: Path, tree: ast.Module) -> dict[str, _Found]:
    """What each top-level name of ``module`` is, read once for all its processes: the
    last binding of a name wins, as when the module runs."""
    table: dict[str, _Found] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            table[node.name] = None if node.decorator_list else node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    source = _absolute(module, path, node)
                    table[alias.asname or alias.name] = (source, alias.name) if source else None
        else:
            for name in _bound(node):
                table[name] = None  # an assignment, a class, an import of a module…
    return table


def _bound(node: ast.stmt) -> list[str]:
    """The names a top-level statement other than a ``def`` or a ``from`` import binds."""
    if isinstance(node, ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import):
        return [a.asname or a.name.partition(".")[0] for a in node.names]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str | None:
    """The module an ``ImportFrom`` of ``module`` imports from."""
    if not node.level:
        return node.module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _parse(path: Path) -> ast.Module | None:
    try:
        key = (str(path), path.stat().st_mtime)
        tree = _trees.get(key)
        if tree is None:
            tree = _trees[key] = ast.parse(path.read_bytes(), str(path))
        return tree
    except (OSError, SyntaxError, ValueError):
        return None  # the import will say what is wrong


def module_file(module: str) -> Path | None:
    """The ``.py`` file of ``module``, found as the import system would find it, without
    importing it or its packages; ``None`` where there is none (a compiled module, a
    namespace package, a module the finders do not know)."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        file = getattr(loaded, "__file__", None)
        return Path(file) if file and file.endswith(".py") else None
    parts = module.split(".")
    spec = None
    for finder in sys.meta_path:  # the top-level name: editable installs have finders
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(parts[0], None)
        except Exception:  # noqa: BLE001 - a finder that fails is one that does not know
            spec = None
        if spec is not None:
            break
    for i in range(1, len(parts)):
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), list(locations))
    origin = spec.origin if spec is not None and spec.has_location else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str, target: str) -> Signature:
    """What :func:`normandy_core.binding.signature_of` would say of the function."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    with_default = {a.arg for a in positional[len(positional) - len(args.defaults) :]}
    with_default |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
    reserved: list[str] = []
    inputs: list[Parameter] = []
    for arg in args.posonlyargs:
        if arg.arg not in with_default:
            label = f"process {name!r}" + (f" ({target})" if target else "")
            raise ProcessLoadError(
                f"{label} has the positional-only parameter {arg.arg!r}, which Normandy cannot "
                f"give (it passes everything by name): remove the '/' after it, or give "
                f"{arg.arg!r} a default"
            )
    for arg in [*args.args, *args.kwonlyargs]:
        if arg.arg in RESERVED:
            reserved.append(arg.arg)
        else:
            inputs.append(Parameter(arg.arg, arg.arg in with_default))
    if args.kwarg is not None:
        reserved.extend(r for r in RESERVED if r not in reserved)
    star = args.vararg.arg if args.vararg is not None else ""
    star_star = args.kwarg.arg if args.kwarg is not None else ""
    return Signature(tuple(reserved), tuple(inputs), star, star_star)


__all__ = ["function_source", "module_file", "static_signature"]
