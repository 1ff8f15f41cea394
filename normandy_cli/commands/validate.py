"""``normandy validate``: check the configuration, the processes it names and the env."""

from __future__ import annotations

import typer

from normandy_cli._options import EnvOpt, FlowsOpt, ProjectOpt, TagsOpt
from normandy_cli._output import err, reports_errors


@reports_errors
def validate(
    tags: TagsOpt = None,
    flow: FlowsOpt = None,
    env: EnvOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Check pipeline_conf.yml, the processes of the flows (all unless narrowed by --tags or
    --flow), their signatures, and the env's settings and credentials."""
    from normandy_core.errors import SelectionError, display_path
    from normandy_core.plan import Selection, build_plan, select_flows
    from normandy_core.project import check_project, open_project

    proj = open_project(project)
    names, plan = None, None
    narrowed = Selection(tuple(tags or ()), tuple(flow or ()))
    selection = narrowed if tags or flow else Selection(flows=tuple(proj.config.flows))
    try:  # with the file's own problems too: the data flow's are reported with them
        if tags or flow:
            names = [f.name for f in select_flows(proj.config, selection)]
        plan = build_plan(proj.config, selection, env)
    except SelectionError:
        if not proj.problems:
            raise  # else the file's problems say why nothing could be selected
    checked = check_project(proj, names, env, plan=plan)
    flows = list(proj.config.flows) if names is None else names
    processes = {e.process for f in flows for s in proj.config.flows[f].steps for e in s.entries}
    err(
        f"{display_path(proj.config.file)}: ok — {len(flows)} flow{'s' * (len(flows) != 1)}, "
        f"{len(processes)} process{'es' * (len(processes) != 1)} checked, env {checked.env}"
    )
    raise typer.Exit(0)
