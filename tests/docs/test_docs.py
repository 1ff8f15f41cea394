"""The documentation is a contract (datasette's rule: what is not documented does not
exist): it builds without a warning, and each reference page is checked against the code
it describes — the configuration schema, the hook specifications, the public names, the
error classes, the command line."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs._schema_keys import schema_keys

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a Markdown heading line), up to the next heading of
    the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n") + len(heading)
    ends = [m.start() for m in re.finditer(rf"^#{{1,{level}}} ", text[start:], re.M)]
    return text[start : start + ends[0]] if ends else text[start:]


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    """``mkdocs build --strict``, as the README says: a broken link, a page missing from
    the navigation or a bad anchor fails it."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("the docs extra is not installed: pip install -e '.[docs]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    cli = (tmp_path / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "normandy create-project" in cli and "--resume" in cli  # the hook wrote it
    _browses_offline(tmp_path)


def _browses_offline(site: Path) -> None:
    """The built site works opened from its files (file://, no server, no network): every
    link of a page names a file of the site (a folder URL showed Chromium's listing of
    the folder), search reads an index inlined in a script (a page from file:// cannot
    fetch the JSON one), and no page loads anything from the network."""
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")  # a server's
    assert len(pages) > 10
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for attribute, link in re.findall(r'\b(href|src)="([^"]*)"', html):
            if link.startswith(("#", "mailto:")):
                continue
            if link.startswith(("http://", "https://", "//")):
                assert attribute == "href", f"{page.relative_to(site)} loads {link}"
                continue
            target = (page.parent / link.split("#")[0].split("?")[0]).resolve()
            assert target.is_file(), f"{page.relative_to(site)} links to {link}: no such file"
    index = (site / "search" / "search_index.js").read_text(encoding="utf-8")
    assert index.startswith("var __index = {") and '"location":"tutorial/first-pipeline.html' in (
        index
    )


def test_every_key_of_the_schema_is_in_the_configuration_reference() -> None:
    documented: dict[str, str] = {}
    for line in page("reference/configuration.md").splitlines():
        match = re.match(r"\| `([a-z<>_.\[\]]+)` \| ([^|]+) \|", line)
        if match:
            documented[match[1]] = match[2]
    # keys the code allows outside the schema: free-form settings, an engine's section
    extra = {
        "confs.envs.<env>.<setting>",
        "confs.<engine>",
        "flows.<flow>.steps.<step>.<entry>",
    }
    schema = schema_keys()
    assert set(documented) - extra == set(schema), "the reference and the schema differ"
    for key, words in schema.items():
        for word in words:
            assert word in documented[key], f"{key}: its type should say {word!r}"


def test_every_hook_is_documented_for_plugin_authors() -> None:
    """Each hook specification has its section — when it is called, in which process,
    its arguments, its return — and no section names a hook that does not exist."""
    from normandy_core import hookspecs

    text = page("plugins/hooks.md")
    hooks = {n for n in dir(hookspecs) if n.startswith("normandy_")}
    headings = set(re.findall(r"^### `(normandy_\w+)\(", text, re.M))
    assert headings == hooks
    for name in hooks:
        arguments = list(inspect.signature(getattr(hookspecs, name)).parameters)
        body = section(text, f"### `{name}({', '.join(arguments)})`")
        for label in ("**When**", "**Process**", "**Arguments**", "**Returns**"):
            assert label in body, f"{name}: no {label}"
        for argument in arguments:
            assert f"`{argument}`" in body, f"{name}: argument {argument} is not described"


def test_the_process_api_documents_pipe_its_variables_and_the_public_names() -> None:
    import normandy_core
    from normandy_core.pipe import Pipe
    from normandy_core.store import Variables

    text = page("reference/process-api.md")
    for field in dataclasses.fields(Pipe):
        assert f"`pipe.{field.name}`" in text, f"pipe.{field.name} is not documented"
    methods = [n for n, v in vars(Variables).items() if callable(v) and not n.startswith("_")]
    assert methods
    for method in methods:
        assert f"`pipe.vars.{method}(" in text, f"pipe.vars.{method} is not documented"
    for name in normandy_core.__all__:
        assert re.search(rf"`{re.escape(name)}[`(]", text), f"{name} is not documented"


def test_the_testing_guide_documents_the_fixtures_and_what_they_return() -> None:
    from normandy_core import testing
    from normandy_core.testing import CommandResult, NormandyProject, ProcessResult, RunResult

    text = page("guide/testing.md")
    for name in ("run_process", "normandy_project"):
        assert f"## `{name}`" in text
    runner = inspect.signature(testing.ProcessRunner.__call__).parameters
    for argument in list(runner)[1:]:
        assert f"| `{argument}` |" in text, f"run_process's {argument} is not documented"
    members = [f.name for f in dataclasses.fields(ProcessResult)]
    members += [n for n, v in vars(ProcessResult).items() if isinstance(v, property)]
    for member in members:
        assert f"| `{member}` |" in text, f"ProcessResult.{member} is not documented"
    for cls in (CommandResult, RunResult):
        for field in dataclasses.fields(cls):
            assert f"`{field.name}`" in text, f"{cls.__name__}.{field.name}"
    for method in ("run", "command", "load"):
        assert f"| `{method}(" in text
    assert callable(NormandyProject.run)
    for name in testing.__all__:
        assert f"`{name}`" in text, f"normandy_core.testing.{name} is not documented"


def test_every_error_family_has_an_example_in_troubleshooting() -> None:
    from normandy_core import errors

    text = page("guide/troubleshooting.md")
    families = [
        name
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), errors.NormandyError)
        and name != "NormandyError"
    ]
    for name in families:
        body = section(text, f"## `{name}`")
        assert "```text" in body, f"{name}: no example message"


def test_the_cli_reference_has_every_command_and_option() -> None:
    sys.path.insert(0, str(DOCS / "_hooks"))
    try:
        from cli_reference import reference
    finally:
        sys.path.remove(str(DOCS / "_hooks"))
    text = reference()
    for command in ("run", "validate", "list", "graph", "runs", "report", "vars", "gc"):
        assert f"## `normandy {command}`" in text
    assert "## `normandy create-project`" in text
    for option in ("--tags", "--resume", "--explain", "--only", "--address", "--json"):
        assert f"{option}" in section(text, "## `normandy run`")


def test_the_readme_names_the_docs_build_and_links_into_existing_pages() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[docs]" && mkdocs build --strict' in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "the README links into the docs"
    for link in links:
        assert (REPO / link).is_file(), f"the README links to {link}, which does not exist"
