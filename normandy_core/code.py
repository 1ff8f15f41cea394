"""The code a task's result depends on (SPEC 13), read from the source without importing.

A process's :class:`~normandy_core.fingerprint.Code` is

- the hash of its module's syntax tree, less the top-level functions nothing else in the
  module names (the other processes of a module of processes): :func:`code_hash`;
- the version of the distribution the module is installed from, if it is;
- what the module imports, followed: a module of the project itself (not installed, as a
  ``helpers.py`` beside it or an editable package) by the hash of its source, and what it
  imports in turn; an installed library by its distribution's version; the standard
  library by Python's version.

So editing a process reruns it, editing a helper it imports (in its module or another of
the project) reruns every process that uses it, and upgrading pandas reruns what imports
pandas. A doubt always counts as a dependency: an unneeded rerun is a cost, a stale result
served is the worst bug this project can have.
"""

from __future__ import annotations

import ast
import importlib.metadata
import platform
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

import xxhash

from normandy_core.fingerprint import Code
from normandy_core.signatures import module_file

__all__ = ["code_hash", "code_of"]

_MAX_MODULES = 500
"""How many project modules one process's imports are followed to, at most."""


def code_of(module: str, function: str) -> Code:
    """The :class:`Code` of the process ``module:function`` (``function`` may be a
    ``Class.method`` path: its class is what is kept)."""
    path = module_file(module)
    python = f"python=={platform.python_version()}"
    if path is None:  # compiled, or unknown: its distribution and Python stand for it
        return Code(module, "", _distribution(module, None) or python)
    imports = dict(_imports(module, path))
    imports.setdefault("python", platform.python_version())
    return Code(
        module,
        code_hash(path, function.partition(".")[0]),
        _distribution(module, path),
        tuple(sorted(imports.items())),
    )


def code_hash(path: Path, function: str) -> str:
    """The hash of what ``function``'s result may depend on in its module's source: the
    whole module, less the top-level functions that nothing else in it names (the other
    processes of a module of processes, usually). Editing one process then reruns that
    one, while editing a helper reruns every process of the module. The syntax tree is
    hashed, not the text, so comments, blank lines and formatting change nothing; a file
    that does not parse is hashed whole; a missing one hashes to ``""``."""
    try:
        source = path.read_bytes()
    except OSError:
        return ""
    try:
        tree = ast.parse(source, str(path))
    except (SyntaxError, ValueError):
        return xxhash.xxh3_128_hexdigest(source)
    defs = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    used: set[str] = set()
    for node in tree.body:
        own = getattr(node, "name", None)
        used |= _names(node) - _locals(node) - {own}
    dropped = {name for name in defs if name != function and name not in used}
    hasher = xxhash.xxh3_128()
    for node in tree.body:
        if getattr(node, "name", None) not in dropped:
            hasher.update(ast.dump(node).encode())
    return hasher.hexdigest()


def _locals(node: ast.AST) -> set[str]:
    """The names a top-level function binds in its own scope (its parameters, what it
    assigns or imports): in its body such a name is not the module's function of the same
    name, as in ``def double(raw)`` next to ``def raw()``. Bindings in nested scopes are
    left out and ``global`` names kept, so a doubt counts as a use."""
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
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
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


_LOOKUPS = frozenset({"globals", "getattr", "vars", "locals", "eval", "exec", "__import__"})
"""Built-ins through which a function can reach a module-level function by a string."""


def _names(node: ast.AST) -> set[str]:
    """The names a top-level statement mentions. Its strings count too where they can name
    a function: everywhere outside functions (a dispatch table, ``__all__``), and inside a
    function that looks names up (``globals()[name]``, ``getattr(module, name)``,
    ``import_module``). Elsewhere a string naming a function is data, most often a
    variable named like the process that makes it (``pipe.vars["double"]``)."""
    names: set[str] = set()
    attributes: set[str] = set()
    strings: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            names.add(child.id)
        elif isinstance(child, ast.Attribute):
            attributes.add(child.attr)
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            strings.add(child.value)
    function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    if not function or names & _LOOKUPS or "import_module" in names | attributes:
        return names | attributes | strings
    return names | attributes


# -- what a module imports --------------------------------------------------------------------


def _imports(module: str, path: Path) -> dict[str, str]:
    """What ``module`` (at ``path``) depends on through its imports, followed through the
    project's own modules: project module -> the hash of its source, library (top-level
    name) -> its distribution's version."""
    found: dict[str, str] = {}
    seen = {module}
    local = {module.partition(".")[0]}
    todo = [(module, path)]
    while todo and len(seen) < _MAX_MODULES:
        name, file = todo.pop()
        for imported in _imported(name, file):
            top = imported.partition(".")[0]
            if imported in seen or top in sys.stdlib_module_names:
                continue
            seen.add(imported)
            where = module_file(imported)
            if where is not None and not _installed(where):  # the project's own
                local.add(top)
                found[imported] = _module_hash(where)
                todo.append((imported, where))
            elif top not in found and top not in local:  # a library: its version
                version = _distribution(top, where)
                if version:
                    found[top] = version.partition("==")[2]
    return found


def _module_hash(path: Path) -> str:
    """The hash of a whole module's syntax tree (its text, where it does not parse)."""
    try:
        source = path.read_bytes()
    except OSError:
        return ""
    try:
        return xxhash.xxh3_128_hexdigest(ast.dump(ast.parse(source, str(path))).encode())
    except (SyntaxError, ValueError):
        return xxhash.xxh3_128_hexdigest(source)


def _imported(module: str, path: Path) -> list[str]:
    """The modules ``module`` imports anywhere in its source (``from a import b`` gives
    ``a.b`` and ``a``: ``b`` may be a module), relative imports made absolute."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                head = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{head}.{base}".strip(".") if base else head
            if not base:
                continue
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


_installed_roots: tuple[str, ...] | None = None


def _installed(path: Path) -> bool:
    """Whether ``path`` is in an installed distribution (site-packages), not the project."""
    global _installed_roots
    if _installed_roots is None:
        paths = sysconfig.get_paths()
        _installed_roots = tuple({paths["purelib"], paths["platlib"]})
    return str(path).startswith(_installed_roots)


_versions: dict[str, str] = {}


def _distribution(module: str, path: Path | None) -> str:
    """``name==version`` of the installed distribution ``module`` comes from; empty for a
    module of the project itself (its source is what matters)."""
    if path is not None and not _installed(path):
        return ""
    top = module.partition(".")[0]
    if top not in _versions:
        _versions[top] = _find_version(top)
    return _versions[top]


_packages: Mapping[str, list[str]] | None = None


def _find_version(top: str) -> str:
    global _packages
    for name in (top, top.replace("_", "-")):
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    if _packages is None:
        _packages = dict(importlib.metadata.packages_distributions())
    for name in _packages.get(top) or []:
        try:
            return f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""
