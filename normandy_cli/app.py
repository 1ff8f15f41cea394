"""The ``normandy`` console script.

The typer application (``_app.py``) is imported only when a command needs it, so that
``normandy --version`` answers without loading the command line framework: it starts in
about a third of the time.

A Ctrl-C or SIGTERM before a run has started ends the command at once, quietly, with
status 130: nothing is running yet that needs stopping (a run installs its own handlers,
which stop its tasks and record it; a history transaction holds the signal until it is
committed).
"""

from __future__ import annotations

import os
import signal
import sys

from normandy_core._pipes import quiet_on_closed_pipes

EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> None:
    """The console script: translate the original command line, then run the app."""
    _quit_on_signals()
    _declare_main_module()
    quiet_on_closed_pipes()  # `normandy runs | head -1`: the reader may leave early
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from normandy_core import __version__

        sys.stdout.write(f"normandy {__version__}\n")
        return
    from normandy_cli import _legacy

    translated = _legacy.translate(args)
    if translated is not None:
        sys.stderr.write(_legacy.deprecation_note(translated) + "\n")
        args = translated
    from normandy_cli._app import app_for

    app_for(args)(args=args, prog_name="normandy")


def __getattr__(name: str) -> object:
    if name == "app":  # the typer application, for embedding and tests
        from normandy_cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _quit_on_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _quit)


def _quit(signum: int, frame: object) -> None:
    """Before a run: nothing to stop, nothing to record (a run replaces this handler)."""
    try:
        os.write(2, b"normandy: interrupted\n")
    finally:
        os._exit(EXIT_INTERRUPTED)


def _declare_main_module() -> None:
    """Tell multiprocessing that the ``normandy`` script is ``python -m normandy_cli``.

    A new process started by ``multiprocessing``'s spawn or forkserver methods (a task's
    own pool, under ``serial``) re-runs a ``__main__`` known only by its file path, which
    for the console script means importing the whole CLI in it for nothing; a main module
    named ``*.__main__`` is skipped instead."""
    script = sys.modules.get("__main__")
    if script is not None and script.__spec__ is None and getattr(script, "main", None) is main:
        import importlib.util

        script.__spec__ = importlib.util.find_spec("normandy_cli.__main__")
