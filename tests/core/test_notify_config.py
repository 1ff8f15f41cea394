"""``confs.notify`` in the configuration (:mod:`normandy_core.config._notify`): its shape
checked with positions and did-you-mean like every key, what the schema cannot see, the
email's credentials in the env, and the plugin that delivers it."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from normandy_core.config._nodes import Location
from normandy_core.config._notify import check_plugin
from normandy_core.errors import ConfigError
from normandy_core.project import check_project, open_project

FLOWS = """
flows:
  f:
    tags: [default]
    steps:
      s: [p]
"""


def test_a_good_notify(good_conf):
    config = good_conf(
        dedent("""
        confs:
          notify:
            - on: [failure, interrupted]
              webhook: https://hooks.example.com/T0K3N
              retries: 3
            - on: long
              after: 3600
              command: [notify-send, normandy]
            - on: failure
              email:
                {to: a@example.com, from: b@example.com, smtp: "smtp.x:587", credentials: mail}
              timeout: 20
          envs:
            dev: {}
        """)
        + FLOWS
    )
    ons = [n["on"] for n in config.confs["notify"]]
    assert ons == [["failure", "interrupted"], "long", "failure"]


def test_every_mistake_with_its_position(load_conf):
    _, problems = load_conf(
        dedent("""
        confs:
          notify:
            - on: [failur]
              webhok: https://x
            - on: long
              webhook: ftp://x
              email: {to: a@b, smtp: "a host"}
            - on: failure
              after: 0
              command: []
              retries: 11
            - {on: success, email: {smtp: h}}
            - on: success
              command: [x]
              timeout: 0
          envs:
            dev: {}
        """)
        + FLOWS
    )
    found = {(p.line, p.column, p.path): p.message for p in problems}
    assert found == {
        (3, 7, "confs.notify[0]"): "a notification needs a target: webhook: URL, email: {to: "
        "…, smtp: HOST} or command: [PROGRAM, ARG…]",
        (3, 11, "confs.notify[0].on"): "must be one of: failure, success, interrupted, long "
        "(not 'failur'); did you mean 'failure'?",
        (4, 7, "confs.notify[0].webhok"): "unknown key 'webhok'; did you mean 'webhook'?",
        (5, 11, "confs.notify[1].on"): "on: long needs after: SECONDS, how long a run may go "
        "on before it is told",
        (6, 16, "confs.notify[1].webhook"): "invalid URL 'ftp://x': write http://HOST/PATH or "
        "https://HOST/PATH",
        (7, 7, "confs.notify[1].email"): "one target per notification: this one has webhook "
        "and email; write one notification for each",
        (7, 30, "confs.notify[1].email.smtp"): "invalid server 'a host': write HOST or HOST:PORT",
        (9, 7, "confs.notify[2].after"): "after: is when to tell of a long run: add long to "
        "on:, or remove after:",
        (9, 14, "confs.notify[2].after"): "must be at least 1 (not 0)",
        (10, 16, "confs.notify[2].command"): "must not be empty",
        (11, 16, "confs.notify[2].retries"): "must be at most 10 (not 11)",
        (12, 21, "confs.notify[3].email.to"): "missing required key 'to'",
        (15, 16, "confs.notify[4].timeout"): "must be at least 0.1 (not 0)",
    }


def _project(root: Path, notify: str, credentials: str | None = None) -> Path:
    (root / "pipeline").mkdir(parents=True)
    conf = (
        "confs:\n  processes: {p: 'mod:p'}\n"
        + notify
        + "  envs:\n    dev:\n"
        + ("      credentials: conf/creds.yml\n" if credentials is not None else "      {}\n")
        + FLOWS
    )
    (root / "pipeline" / "pipeline_conf.yml").write_text(conf)
    (root / "mod.py").write_text("def p():\n    pass\n")
    if credentials is not None:
        (root / "conf").mkdir()
        (root / "conf" / "creds.yml").write_text(credentials)
    return root


def test_notify_without_its_plugin_says_how_to_install_it(tmp_path: Path):
    notify = "  notify:\n    - {on: failure, webhook: 'http://127.0.0.1:9/x'}\n"
    project = open_project(_project(tmp_path / "a", notify))
    infos = project.plugins.infos  # as where normandy-notify is not installed
    for name in [n for n, info in infos.items() if "notify" in info.source.lower()]:
        del infos[name]
    with pytest.raises(ConfigError) as caught:
        check_project(project, signatures=False)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column, problem.path) == (3, 3, "confs.notify")
    assert problem.message == (
        "notifications are delivered by the plugin normandy-notify, which is not installed; "
        "install it beside normandy: pip install normandy-notify (from Normandy's source "
        "tree: pip install ./plugins/normandy-notify)"
    )
    # without notify, nothing is asked of the plugin
    check_project(open_project(_project(tmp_path / "b", "")), signatures=False)


def test_the_plugin_is_known_by_its_distribution():
    where = Location("pipeline/pipeline_conf.yml", 3, 3, "confs.notify")
    notify = [{"on": "failure", "command": ["x"]}]
    assert check_plugin(notify, where, ["normandy", "normandy-notify"]) == []
    assert check_plugin(notify, where, ["normandy", "Normandy_Notify"]) == []
    assert len(check_plugin(notify, where, ["normandy", "acme-notify"])) == 1
    assert check_plugin([], where, ["normandy"]) == []


def test_the_emails_credentials_must_be_in_the_env(tmp_path: Path):
    email = "{to: a@b, smtp: h, credentials: mail}"
    notify = f"  notify:\n    - {{on: failure, email: {email}}}\n"
    for creds, message in [
        ("db: {password: x}\n", "the credentials of env dev have no entry 'mail' (they have: db)"),
        ("mail: {user: robot}\n", "the credentials' entry 'mail' of env dev must hold user and "
         "password"),
    ]:  # fmt: skip
        root = _project(tmp_path / str(len(message)), notify, creds)
        project = open_project(root)
        project.plugins.infos["notify"] = project.plugins.infos.get(
            "notify", _installed("normandy-notify")
        )
        with pytest.raises(ConfigError) as caught:
            check_project(project, signatures=False)
        (problem,) = caught.value.problems
        assert problem.path == "confs.notify[0].email.credentials"
        assert (problem.line, problem.column) == (4, 60)
        assert problem.message == (
            f"{message}; add mail: {{user: …, password: …}} to the env's credentials file"
        )
        assert "robot" not in problem.message and "x}" not in problem.message
    root = _project(tmp_path / "good", notify, "mail: {user: robot, password: pw}\n")
    project = open_project(root)
    project.plugins.infos["notify"] = _installed("normandy-notify")
    assert check_project(project, signatures=False).credentials["mail"]["user"] == "robot"


def _installed(distribution: str):
    from normandy_core.plugins import PluginInfo

    return PluginInfo("notify", distribution, "installed")
