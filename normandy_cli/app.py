"""The ``normandy`` console script.

The typer application (``_app.py``) is imported only when a command needs it, so that
``normandy --version`` answers without loading the command line framework: it starts in
about a third of the time.
"""

from __future__ import annotations

import sys
from typing import Any

from normandy_cli import _legacy
from normandy_core._pipes import quiet_on_closed_pipes


def main(argv: list[str] | None = None) -> None:
    """The console script: translate the original command line, then run the app."""
    _declare_main_module()
    quiet_on_closed_pipes()  # `normandy runs | head -1`: the reader may leave early
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from normandy_core import __version__

        sys.stdout.write(f"normandy {__version__}\n")
        return
    translated = _legacy.translate(args)
    if translated is not None:
        sys.stderr.write(_legacy.deprecation_note(translated) + "\n")
        args = translated
    if _starts_a_pool(args):
        # the fork server boots (and can start importing the process modules) while the
        # command line framework loads; `run` asks again, harmlessly
        from normandy_core.executors import warm_up

        warm_up()
    from normandy_cli._app import app

    app(args=args, prog_name="normandy")


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer application, for embedding and tests
        from normandy_cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _starts_a_pool(args: list[str]) -> bool:
    """Whether ``args`` are a ``run`` on the local executor, as far as can be told without
    parsing them (the project may still choose another executor: then the idle fork server
    ends with the command)."""
    if args[:1] != ["run"] or any(a in ("--dry-run", "--help") for a in args):
        return False
    for i, arg in enumerate(args):
        if arg == "--executor":
            return args[i + 1 : i + 2] == ["local"]
        if arg.startswith("--executor="):
            return arg == "--executor=local"
    return True


def _declare_main_module() -> None:
    """Tell multiprocessing that the ``normandy`` script is ``python -m normandy_cli``.

    A new worker process re-runs a ``__main__`` known only by its file path, which for
    the console script means importing the whole CLI in every worker for nothing; a main
    module named ``*.__main__`` is skipped instead."""
    script = sys.modules.get("__main__")
    if script is not None and script.__spec__ is None and getattr(script, "main", None) is main:
        import importlib.util

        script.__spec__ = importlib.util.find_spec("normandy_cli.__main__")
