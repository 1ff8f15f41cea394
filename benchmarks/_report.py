"""Rows of the results table, the targets, and the text and Markdown renderings."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

_OPS = {"<=": operator.le, ">=": operator.ge}


def target(text: str, on: str, op: str, bound: float) -> dict[str, Any]:
    """A target on the Normandy median (``on="value"``) or on the ratio Normandy/reference
    of the medians (``on="ratio"``)."""
    return {"text": text, "on": on, "op": op, "bound": bound}


def row(
    workload: str,
    measure: str,
    unit: str,
    normandy: Mapping[str, Any],
    reference: tuple[str, Mapping[str, Any]] | None = None,
    goal: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One line of the table: Normandy's median (min–max), a reference's, their ratio and
    whether the target is met."""
    keep = ("median", "min", "max")
    out: dict[str, Any] = {
        "workload": workload,
        "measure": measure,
        "unit": unit,
        "normandy": {k: normandy[k] for k in keep},
        "reference": None,
        "ratio": None,
        "target": goal,
        "met": None,
    }
    if reference is not None:
        label, ref = reference
        out["reference"] = {"label": label, **{k: ref[k] for k in keep}}
        if ref["median"]:
            out["ratio"] = normandy["median"] / ref["median"]
    if goal is not None:
        value = out["ratio"] if goal["on"] == "ratio" else normandy["median"]
        out["met"] = value is not None and _OPS[goal["op"]](value, goal["bound"])
    return out


def fmt(value: float, unit: str) -> str:
    """A value with three significant digits and its unit."""
    if unit == "×":
        return f"{value:.2f}×"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}"


def spread(stats: Mapping[str, Any], unit: str) -> str:
    low, high = (fmt(stats[k], "").strip() for k in ("min", "max"))
    return f"{fmt(stats['median'], unit)} ({low}–{high})"


def ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value:.4f} (1/{1 / value:,.0f})" if value > 0 else f"{value:.4f}"
    return f"{value:.2f}"


def cells(r: Mapping[str, Any]) -> list[str]:
    ref = r["reference"]
    status = "-" if r["met"] is None else ("met" if r["met"] else "MISSED")
    return [
        r["workload"],
        r["measure"],
        spread(r["normandy"], r["unit"]),
        f"{ref['label']}: {spread(ref, r['unit'])}" if ref else "-",
        ratio_text(r["ratio"]),
        r["target"]["text"] if r["target"] else "-",
        status,
    ]


HEADER = [
    "workload",
    "measure",
    "Normandy median (min–max)",
    "reference median (min–max)",
    "ratio N/ref",
    "target",
    "status",
]


def text_table(rows: Iterable[Mapping[str, Any]]) -> str:
    body = [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in [HEADER, *body]) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in body]
    return "\n".join(lines)


def markdown_table(rows: Iterable[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        line = cells(r)
        if r["met"] is False:
            line[-1] = "**MISSED**"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in line) + " |")
    return "\n".join(lines)


def targets_summary(rows: Iterable[Mapping[str, Any]]) -> tuple[int, int, list[str]]:
    """How many targets were met, how many there are, and the missed ones."""
    judged = [r for r in rows if r["met"] is not None]
    missed = [
        f"{r['workload']}: {r['measure']} ({r['target']['text']})" for r in judged if not r["met"]
    ]
    return len(judged) - len(missed), len(judged), missed
