"""The command line of normandy 0.3, translated to today's commands (SPEC 9).

normandy --run-pipeline -tags a -tags b -env prod -param version Trilogy
         -log-level warnings -threads 4
normandy --create-project -project-path PATH
"""

from __future__ import annotations

import shlex

# old single-dash option -> (new option, number of values it takes)
_RUN_OPTIONS = {
    "-tags": ("--tags", 1),
    "-env": ("--env", 1),
    "-param": ("--param", 2),
    "-log-level": ("--log-level", 1),
    "-threads": ("--workers", 1),
    "-project-path": ("--project", 1),
}


def translate(args: list[str]) -> list[str] | None:
    """Today's arguments for an old command line, or ``None`` if ``args`` is not one."""
    if "--run-pipeline" in args:
        rest = [a for a in args if a != "--run-pipeline"]
        return ["run", *_options(rest)]
    if "--create-project" in args:
        rest = [a for a in args if a != "--create-project"]
        out = ["create-project"]
        i = 0
        while i < len(rest):
            if rest[i] == "-project-path" and i + 1 < len(rest):
                out.append(rest[i + 1])
                i += 2
            else:
                out.append(rest[i])
                i += 1
        return out
    return None


def _options(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        old = args[i]
        if old in _RUN_OPTIONS:
            new, count = _RUN_OPTIONS[old]
            values = args[i + 1 : i + 1 + count]
            if count == 2 and len(values) == 2:
                out += [new, f"{values[0]}={values[1]}"]
            else:
                out += [new, *values]
            i += 1 + count
        else:
            out.append(old)
            i += 1
    return out


def deprecation_note(translated: list[str]) -> str:
    return (
        "normandy: this command line is deprecated and will be removed; use instead:\n"
        f"  normandy {shlex.join(translated)}"
    )
