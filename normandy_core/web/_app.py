"""The Starlette application of ``normandy ui``: every route is a GET (the app is
read-only), every page is HTML and, with ``.json`` added to its path, JSON. Requests are
answered only for the hosts it listens as (a page of another site cannot read it through
a name that resolves here), and every page forbids loading anything from elsewhere."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from normandy_core.errors import NormandyError, RunNotFoundError
from normandy_core.history import HISTORY_FILE, History, VariableAccess
from normandy_core.masking import Masker
from normandy_core.status import RUNNING, category
from normandy_core.store import file_part
from normandy_core.web import _pages

if TYPE_CHECKING:
    import jinja2

    from normandy_core.config import ProjectConfig
    from normandy_core.report import _page
    from normandy_core.report._data import RunView, TaskView

# The report's modules (and Jinja2) are imported by the pages that draw runs, not by the
# app's start: `normandy ui`'s first page (the runs) is served sooner.

TEMPLATES = Path(__file__).with_name("templates")
TASK_ROWS = 200
"""Tasks listed on a run's page (``?tasks=all``: every one)."""
_PROBLEMS = ("failed", "tolerated", "interrupted")
LOG_CHUNK = 256 * 1024
LOG_TAIL = 64 * 1024
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@cache
def _asset(name: str) -> str:
    return TEMPLATES.parent.joinpath(name).read_text(encoding="utf-8")


class Ui:
    """What every request needs: the project, its history (one connection per thread of
    the server), its templates."""

    def __init__(self, root: Path, poll: float) -> None:
        self.root = root
        self.poll = poll
        self.local = threading.local()
        self._config: tuple[int, ProjectConfig | None] | None = None
        self._env: jinja2.Environment | None = None
        self._env_lock = threading.Lock()

    @property
    def env(self) -> jinja2.Environment:
        """The templates, made for the first page drawn."""
        with self._env_lock:
            if self._env is None:
                import markupsafe

                from normandy_core.report._templates import environment

                env = environment([TEMPLATES])
                env.globals["web_asset"] = lambda name: markupsafe.Markup(_asset(name))
                env.globals["category_of"] = _pages.category_of
                self._env = env
            return self._env

    # -- reading the project ----------------------------------------------------------------

    def history(self) -> History | None:
        """This thread's connection to the history; ``None`` while no run is recorded."""
        history = getattr(self.local, "history", None)
        if history is None:
            if not (self.root / ".normandy" / HISTORY_FILE).exists():
                return None
            history = self.local.history = History(self.root / ".normandy")
        return history

    def config(self) -> ProjectConfig | None:
        """The project's configuration, read again when its file changes."""
        from normandy_core.config import CONF_FILE, read_config

        try:
            stamp = (self.root / CONF_FILE).stat().st_mtime_ns
        except OSError:
            return None
        if self._config is None or self._config[0] != stamp:
            self._config = (stamp, read_config(self.root)[0])
        return self._config[1]

    def store_setting(self) -> str | None:
        config = self.config()
        return config.store if config is not None else None

    def sizes(self, run_ids: list[str]) -> dict[str, int]:
        from normandy_core.retention import run_sizes

        return run_sizes(self.root, self.store_setting(), run_ids) if run_ids else {}

    def mask(self) -> Masker:
        """Masks the credentials of every env of the project (a preview shows values
        processes stored: one may hold a credential)."""
        from normandy_core.config import load_credentials
        from normandy_core.masking import secret_values

        config = self.config()
        values: list[str] = []
        for env in config.envs if config is not None else ():
            credentials, _ = load_credentials(config, env)  # type: ignore[arg-type]
            values += secret_values(credentials)
        return Masker(values)

    def view(self, run_id: str, *, attempts: bool = True) -> RunView:
        from normandy_core.report._data import collect

        history = self.history()
        if history is None:
            raise RunNotFoundError(f"no run {run_id!r} is recorded: no run is recorded yet")
        return collect(history, run_id, self.root / "logs", tails=False, attempts=attempts)

    def many_tasks(self, run_id: str) -> bool:
        """Whether the run has more tasks than its page lists: its timeline and flows
        picture are then drawn by requests of their own, after the page (a page a browser
        reads at once, ≤ 200 KB), and its tasks' attempts read as they are opened."""
        history = self.history()
        if history is None:
            return False
        if run_id == "last":
            run_id = history.get(run_id).id
        return history.task_count(run_id) > TASK_ROWS

    # -- answering ----------------------------------------------------------------------------

    def page(self, request: Request, template: str, data: Any, **context: Any) -> Response:
        """``template`` drawn with ``context``, or ``data`` as JSON where the path ends with
        ``.json``."""
        if request.url.path.endswith(".json"):
            return JSONResponse(data() if callable(data) else data)
        html = self.env.get_template(template).render(
            project=self.root.name, root=str(self.root), **context
        )
        return HTMLResponse(html)

    def runs(self, request: Request) -> Response:
        q = request.query_params
        history = self.history()
        offset = _int(q.get("offset"), 0)
        if history is None:
            page = _pages.RunsPage((), 0, 0, {}, (), (), ())
        else:
            page = _pages.runs_page(
                history,
                self.sizes,
                status=q.get("status", ""),
                flow=q.get("flow", ""),
                tag=q.get("tag", ""),
                offset=offset,
            )

        def query(**changes: Any) -> str:
            return urlencode({**page.filters, **{k: v for k, v in changes.items() if v}})

        return self.page(
            request, "runs.html.j2", page.to_dict, title="runs", page=page, query=query
        )

    def run(self, request: Request) -> Response:
        from normandy_core.report import _page, _timeline

        run_id = request.path_params["run_id"]
        as_json = request.url.path.endswith(".json")  # every task's attempts, nothing drawn
        deferred = not as_json and self.many_tasks(run_id)
        drawn = not (as_json or deferred)  # else its parts are drawn by requests of their own
        view = self.view(run_id, attempts=not deferred)
        run = view.run
        # where each log is, for the rows shown only (2,000 URLs made for 200 rows)
        every = _page.task_rows(view, log=lambda i, t: ("none", "", ""))
        rows = _page.grouped(every)  # a map's elements: one row, but those that went wrong
        variables = _variables(view) if run.pruned is None else []
        shown = rows
        every_one = request.query_params.get("tasks") == "all"
        if len(rows) > TASK_ROWS and not every_one:
            # the problems first, then the plan's order: a page a browser reads at once
            problems = [r for r in rows if r.category in _PROBLEMS]
            shown = (problems + [r for r in rows if r.category not in _PROBLEMS])[:TASK_ROWS]
        shown = [self._with_log(view, r) for r in shown]

        def data() -> dict[str, Any]:
            return {
                **run.to_dict(),
                "counts": dict(_page.tally_of(view)),
                "tasks": [_task_dict(r.view) for r in every],
                "variables": variables,
            }

        return self.page(
            request,
            "run.html.j2",
            data,
            title=f"run {run.id}",
            run=run,
            generated=view.generated,
            meta=_page.run_meta(run, view.ended),
            notes=_page.notes(view),
            cards=_page.cards(view),
            problems=_page.problems(rows),
            legend=_page.LEGEND,
            deferred=deferred,
            all_tasks=len(every),
            timeline=_timeline.layout(view, tooltips=True) if drawn else None,
            timeline_intro=_page.TIMELINE_INTRO,
            picture=_page.picture(view, {}) if drawn else None,
            flows_intro=_page.FLOWS_INTRO,
            rows=shown,
            all_rows=len(rows),
            variables=variables,
            # as many as the tasks listed (a run of 2,000 tasks wrote 2,000 variables)
            shown_variables=len(variables) if every_one else TASK_ROWS,
        )

    def run_part(self, request: Request) -> Response:
        """A run's timeline or flows picture, alone: what its page loads after it where
        the run has many tasks."""
        from normandy_core.report import _page, _timeline

        of_timeline = request.url.path.endswith("/timeline")
        view = self.view(request.path_params["run_id"], attempts=of_timeline)  # bars' times
        if of_timeline:
            # many tasks: bars without tooltips (a click still opens the task)
            timeline = _timeline.layout(view, tooltips=len(view.tasks) <= TASK_ROWS)
            html = self.env.get_template("run_timeline.html.j2").render(timeline=timeline)
        else:
            picture = _page.picture(view, {})
            html = self.env.get_template("run_flows.html.j2").render(picture=picture)
        return HTMLResponse(html)

    def _with_log(self, view: RunView, row: _page.TaskRow) -> _page.TaskRow:
        state, name, url = self._log_place(view, row.view)
        return replace(row, log_state=state, log_name=name, log_url=url)

    def _log_place(self, view: RunView, task: TaskView) -> tuple[str, str, str]:
        from normandy_core.report import _page

        state, name, _ = _page.report_log(view, task)
        if state in ("missing", "tail"):  # the file may appear while the run goes on
            url = f"/runs/{view.run.id}/log?{urlencode({'task': task.record.key})}"
            return "link", name, url
        return state, name, ""

    def task(self, request: Request) -> Response:
        from normandy_core.report import _page

        view = self.view(request.path_params["run_id"])
        key = request.query_params.get("key", "")
        rows = _page.task_rows(view, log=lambda i, t: self._log_place(view, t))
        row = next((r for r in rows if r.record.key == key), None)
        if row is None:
            raise HTTPException(404, f"run {view.run.id} has no task {key!r}")
        var_url = f"/runs/{view.run.id}/vars/{{flow}}/{{name}}"
        if request.query_params.get("fragment"):
            macro = self.env.get_template("_task.html.j2").module.task_row  # type: ignore[attr-defined]
            return HTMLResponse(str(macro(row, None, var_url)))
        return self.page(
            request, "task.html.j2", lambda: _task_dict(row.view), title=key, run=view.run,
            row=row, var_url=var_url,
        )  # fmt: skip

    def log(self, request: Request) -> Response:
        """A task's log from ``offset`` (``-1``: its last 64 KiB), for a page that follows
        it: ``{"text", "offset", "size"}``."""
        run = self.view(request.path_params["run_id"]).run
        key = request.query_params.get("task", "")
        path = self.root / "logs" / run.id / f"process-{file_part(key)}.log"
        offset = _int(request.query_params.get("offset"), -1)
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, 2)
                start = max(size - LOG_TAIL, 0) if offset < 0 else min(offset, size)
                handle.seek(start)
                data = handle.read(LOG_CHUNK)
        except OSError:
            note = "no log file yet" if run.status == RUNNING else "no log file"
            return JSONResponse({"text": "", "offset": 0, "size": 0, "note": note})
        text = data.decode("utf-8", errors="replace")
        if offset < 0 and start > 0:
            text = text.partition("\n")[2]  # most likely cut in the middle
        return JSONResponse({"text": text, "offset": start + len(data), "size": size})

    async def events(self, request: Request) -> Response:
        """Server-sent events while the run goes on: every task's state as it changes,
        then ``end``."""
        run_id = request.path_params["run_id"]
        self.view(run_id)  # 404 for an unknown run, before the stream starts

        async def stream() -> AsyncIterator[str]:
            last = None
            while True:
                state = await asyncio.to_thread(self._state, run_id)
                if state != last:
                    yield f"data: {json.dumps(state)}\n\n"
                    last = state
                if state["status"] != RUNNING:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(self.poll)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    def _state(self, run_id: str) -> dict[str, Any]:
        from normandy_core.report import _page

        history = self.history()
        assert history is not None
        run = history.get(run_id)
        tasks = {
            t.key: [
                category(t.status, t.tolerated, t.resumed),
                _page.status_text(t),
                t.attempts,
            ]
            for t in history.tasks(run_id)
        }
        return {"status": run.status, "tasks": tasks}

    def diff(self, request: Request) -> Response:
        q = request.query_params
        picked = sorted(q.getlist("run"))
        a, b = q.get("a") or (picked[0] if picked else ""), q.get("b") or (picked[1:] or [""])[0]
        history = self.history()
        if not (a and b) or history is None:
            runs = history.runs(200) if history is not None else []
            b = b or (runs[0].id if runs else "")
            return self.page(
                request, "choose.html.j2", {"error": "give two runs: ?a=RUN&b=RUN"},
                title="compare", runs=runs, a=a, b=b,
                message="Choose two runs to compare." if not (a and b) else "",
            )  # fmt: skip
        diff = _pages.diff_runs(history, a, b)
        return self.page(
            request, "diff.html.j2", diff.to_dict, title=f"{a} → {b}", diff=diff,
            changed=sum(1 for t in diff.tasks if not t.same),
        )  # fmt: skip

    def variable(self, request: Request) -> Response:
        from normandy_core.web._preview import Source, preview

        p = request.path_params
        view = self.view(p["run_id"])
        history = self.history()
        assert history is not None
        written = {(w.flow, w.name): w for w in history.written(view.run.id)}
        known = written.get((p["flow"], p["name"]))
        source = Source("variable", p["name"], p["flow"], view.run.id)
        shown = preview(self.root, source, known.size if known else None, self.mask())
        return self.page(request, "preview.html.j2", shown.to_dict, title=p["name"], p=shown)

    def flows(self, request: Request) -> Response:
        from normandy_core.masking import mask_values
        from normandy_core.report._graph import layout

        page = _pages.flows_page(self.root)
        flows = mask_values(page.flows, self.mask())  # the config's params, as written
        return self.page(
            request,
            "flows.html.j2",
            {"flows": flows, "problems": list(page.problems)},
            title="flows",
            picture=layout(flows) if flows else None,
            problems=page.problems,
        )

    # -- errors -------------------------------------------------------------------------------

    def error(self, request: Request, status: int, heading: str, message: str) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse({"error": message}, status_code=status)
        html = self.env.get_template("error.html.j2").render(
            project=self.root.name, root=str(self.root), title=heading, status=status,
            heading=heading, message=message,
        )  # fmt: skip
        return HTMLResponse(html, status_code=status)


def _variables(view: RunView) -> list[dict[str, Any]]:
    """What the run's succeeded tasks wrote (committed), as their last attempt recorded it
    (a run recorded before lineage: the names its tasks noted)."""
    out = []
    for task in view.tasks:
        r = task.record
        if r.status != "succeeded" or r.resumed:
            continue
        writes = task.writes or tuple(
            VariableAccess(r.flow, name, "write") for name in r.variables
        )
        out += [
            {"flow": w.flow, "name": w.name, "type": w.type, "size": w.size, "task": r.key}
            for w in writes
        ]
    return sorted(out, key=lambda v: (v["flow"], v["name"]))


def _task_dict(task: TaskView) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        **asdict(task.record),
        "duration": task.record.duration,
        "category": task.category,
        "attempts_detail": [asdict(a) for a in task.attempts],
        "reads": [asdict(a) for a in task.reads],
        "writes": [asdict(a) for a in task.writes],
    }


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


class _Headers:
    """Every answer forbids loading anything from elsewhere, and being framed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def build(root: Path, *, hosts: tuple[str, ...], poll: float) -> Starlette:
    ui = Ui(root, poll)

    def both(path: str, endpoint: Callable[..., Any]) -> list[Route]:
        return [Route(f"{path}.json", endpoint), Route(path, endpoint)]

    routes = [
        Route("/", ui.runs),
        Route("/runs.json", ui.runs),
        *both("/diff", ui.diff),
        *both("/flows", ui.flows),
        *both("/runs/{run_id}/vars/{flow}/{name}", ui.variable),
        Route("/runs/{run_id}/events", ui.events),
        Route("/runs/{run_id}/log", ui.log),
        Route("/runs/{run_id}/timeline", ui.run_part),
        Route("/runs/{run_id}/flows", ui.run_part),
        *both("/runs/{run_id}/task", ui.task),
        *both("/runs/{run_id}", ui.run),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", None) or "no such page"
        status = getattr(exc, "status_code", 404)
        return ui.error(request, status, "Not found" if status == 404 else "Error", detail)

    async def normandy_error(request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, RunNotFoundError) else 500
        return ui.error(request, status, "Not found" if status == 404 else "Error", str(exc))

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
            Middleware(_Headers),
        ],
        exception_handlers={HTTPException: not_found, NormandyError: normandy_error},
    )
