"""Choosing an environment, and reading its settings and credentials."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from normandy_core.config._env import BadReference, interpolate, interpolate_tree
from normandy_core.config._model import ProjectConfig, plain
from normandy_core.config._yaml import PathKey, dotted, load_yaml
from normandy_core.errors import Problem, display_path


def select_env(
    config: ProjectConfig, requested: str | None, origin: str = "--env"
) -> tuple[str | None, list[Problem]]:
    """The env to use: ``requested``, else ``confs.default_env``, else ``dev`` if defined,
    else the first env. An unknown name is a problem listing the envs (with a *did you
    mean*); ``origin`` says where the name was given (``--env``, ``env=`` in a test)."""
    names = list(config.envs)
    if requested is not None:
        if requested in config.envs:
            return requested, []
        close = difflib.get_close_matches(requested, names, n=1)
        listed = f"the envs are: {', '.join(names)}"
        if close:  # a question ends its sentence: what follows starts another
            listed = f"did you mean {close[0]!r}? The envs are: {', '.join(names)}"
        message = f"unknown env {requested!r} (from {origin}); {listed}"
        return None, [config.where("confs.envs").problem(message)]
    if config.default_env in config.envs:
        return config.default_env, []
    if "dev" in config.envs:
        return "dev", []
    return (names[0], []) if names else (None, [])


def env_settings(
    config: ProjectConfig, env: str, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The settings of ``confs.envs.<env>``, with ``${env:…}`` interpolated."""
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []

    def bad_reference(keys: list[PathKey], message: str) -> None:
        problems.append(config.where(dotted(keys)).problem(message))

    settings = interpolate_tree(
        plain(dict(config.envs[env].settings)), environ, bad_reference, ["confs", "envs", env]
    )
    return settings, problems


def load_credentials(
    config: ProjectConfig, env: str, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The mapping in the env's ``credentials`` file (empty when it has none).

    Messages never quote the file's values.
    """
    environ = os.environ if environ is None else environ
    spec = config.envs[env]
    if not spec.credentials:
        return {}, []
    where = config.where(f"confs.envs.{env}.credentials")
    try:
        path = config.root / interpolate(spec.credentials, environ)
    except BadReference as exc:
        return {}, [where.problem(exc.message())]
    if not _is_file(path):
        return {}, [
            Problem(
                where.file,
                where.line,
                where.column,
                f"confs.envs.{env}.credentials",
                _not_a_file(path),
            )
        ]
    doc, problems = load_yaml(path, secret=True)
    if doc is None:
        return {}, problems
    if doc.data is None:
        return {}, problems
    if not isinstance(doc.data, Mapping):
        problems.append(
            doc.problem([], "a credentials file must be a YAML mapping of names to values")
        )
        return {}, problems

    def bad_reference(keys: list[PathKey], message: str) -> None:
        problems.append(doc.problem(keys, message))

    return interpolate_tree(plain(doc.data), environ, bad_reference, secret=True), problems


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except PermissionError:  # a folder on the path that cannot be entered
        return False


def _not_a_file(path: Path) -> str:
    """Why a credentials path that is not a regular file cannot be read, and what to do."""
    shown = display_path(path)
    try:
        path.stat()
    except PermissionError:
        return (
            f"credentials file {shown} cannot be reached: a folder on its path does not let "
            "the user running normandy in; change that folder's permissions"
        )
    except OSError:
        return f"credentials file {shown} does not exist; " + _how_to_create(path)
    what = "a folder" if path.is_dir() else "not a regular file"
    return (
        f"credentials path {shown} is {what}; give the path of a YAML file (a mapping of "
        "names to values)"
    )


def _how_to_create(path: Path) -> str:
    """How to make a missing credentials file: from an example beside it where there is
    one (credentials files are usually kept out of git, their example is not)."""
    try:
        examples = sorted(
            p
            for p in path.parent.glob("*.y*ml")
            if p.suffix in (".yml", ".yaml")
            and any(w in p.name for w in ("example", "sample", "template"))
        )
    except OSError:
        examples = []
    if not examples:
        return "create it (a YAML mapping) or remove the credentials key"
    example = display_path(examples[0])
    return (
        f"create it from {example} (credentials files are kept out of git): "
        f"cp {example} {display_path(path)} — then put the real values in"
    )
