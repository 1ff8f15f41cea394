"""``normandy ui [--port 8765] [--host 127.0.0.1]``: the local web app over a project's
runs (the app is :mod:`normandy_core.web`; this only starts its server)."""

from __future__ import annotations

import ipaddress
import signal
import socket
from typing import Annotated

import typer

from normandy_cli._options import ProjectOpt
from normandy_cli._output import err, reports_errors

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@reports_errors
def ui(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The port to listen on (0: any free).")
    ] = 8765,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="The address to listen on; anything but 127.0.0.1 lets other machines read "
            "the runs.",
        ),
    ] = "127.0.0.1",
    project: ProjectOpt = None,
) -> None:
    """Browse the project's runs in a web browser: the runs (filtered by status, flow or tag),
    a run as it goes on, two runs compared, a variable previewed, the flows drawn. Read-only;
    every page is also JSON. Ctrl-C stops it."""
    from normandy_core.errors import UiError
    from normandy_core.roots import find_project_root
    from normandy_core.web import require

    root = find_project_root(project)
    require()
    sock = _listen(host, port)
    import uvicorn

    from normandy_core.web import create_app

    app = create_app(root, hosts=_hosts(host))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    err(f"normandy ui: {url} shows the runs of {root} (read-only; Ctrl-C stops it)")
    if host not in LOOPBACK:
        err(
            f"normandy ui: listening on {host}: whoever reaches this machine can read the "
            "runs, their params and logs"
        )
    config = uvicorn.Config(  # no websockets (its live pages use server-sent events):
        app,  # none of uvicorn's websocket libraries is imported
        log_level="warning",
        timeout_graceful_shutdown=2,
        lifespan="off",
        access_log=False,
        ws="none",
    )
    # uvicorn catches Ctrl-C and SIGTERM while it serves, then raises them again under the
    # handlers it found: those must end the server as its own stop, not as an interrupted
    # command (the console script's first handlers exit 130 at once)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then raises it again: how it ends
        pass
    except OSError as exc:
        raise UiError(f"normandy ui stopped: {exc.strerror or exc}") from None
    finally:
        sock.close()
    err("normandy ui: stopped")


def _listen(host: str, port: int) -> socket.socket:
    from normandy_core.errors import UiError

    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = "is already used by another program" if exc.errno == 98 else exc.strerror
        raise UiError(
            f"cannot listen on {host}:{port}: the port {why}; choose another with --port "
            "(--port 0: any free port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def _hosts(host: str) -> tuple[str, ...]:
    """The names the app answers to: its own address, and the loopback names."""
    if host in ("0.0.0.0", "::"):
        return ("*",)
    return tuple(dict.fromkeys([host, "127.0.0.1", "localhost", "[::1]"]))
