"""The work every benchmark runs, shared by Normandy's generated projects, the Kedro
scripts and the raw references, so that all of them time exactly the same code.

Normandy's projects get a copy of this file as their module ``bench_work`` (see
``_projects.py``); Kedro's scripts and the raw references import it from here.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

FRAME_COLUMNS = 4


def noop() -> int:
    """A task that does nothing (Kedro needs a node to have an output: it returns 0)."""
    return 0


def passthrough(value: Any) -> Any:
    """A chain link for Kedro: its input is its output."""
    return value


def burn(iterations: int) -> int:
    """Pure-Python CPU work, holding the GIL the whole time."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def calibrate(seconds: float) -> int:
    """The ``iterations`` that make :func:`burn` last about ``seconds`` here."""
    iterations = 100_000
    while True:
        start = time.perf_counter()
        burn(iterations)
        took = time.perf_counter() - start
        if took > 0.05:
            return max(1, int(iterations * seconds / took))
        iterations *= 4


def make_array(nbytes: int) -> Any:
    import numpy as np

    return np.arange(nbytes // 8, dtype=np.float64)


def make_frame(nbytes: int) -> Any:
    """A DataFrame of float64 columns, ``nbytes`` in all (one consolidated block)."""
    import numpy as np
    import pandas as pd

    rows = nbytes // (8 * FRAME_COLUMNS)
    block = np.arange(rows * FRAME_COLUMNS, dtype=np.float64).reshape(rows, FRAME_COLUMNS)
    return pd.DataFrame(block, columns=[f"c{i}" for i in range(FRAME_COLUMNS)], copy=False)


def make_data(kind: str, nbytes: int) -> Any:
    return make_array(nbytes) if kind == "array" else make_frame(nbytes)


def total(value: Any) -> float:
    """Sum every number of an array or a frame (reads every byte).

    A frame is summed through NumPy (``to_numpy()`` of one float64 block is a view, not a
    copy): pandas' own ``sum`` checks every value for NaN and costs ~0.15 s on 256 MiB,
    ten times the read it follows, which would measure pandas, not the hand-off. Every
    side of the benchmark sums with this function, the raw reference included."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return float(value.sum())


def note(path: str, **times: float) -> None:
    """Append ``times`` to the JSON object in ``path`` (how tasks report their clocks)."""
    data = {}
    if os.path.exists(path):
        with open(path) as handle:
            data = json.load(handle)
    data.update(times)
    with open(path, "w") as handle:
        json.dump(data, handle)


def line_of(i: int, width: int) -> str:
    """Line ``i`` of a chatty task's output: ``width`` characters (its newline apart)."""
    head = f"line {i:09d} "
    return head + "x" * max(0, width - len(head))


def chatter(lines: int, width: int, how: str, out: Any = None, log: Any = None) -> None:
    """Print (``how="print"``) or log at INFO (``"log"``) ``lines`` lines, one call each:
    the way a chatty task writes its progress."""
    if how == "print":
        for i in range(lines):
            print(line_of(i, width), file=out)
    else:
        for i in range(lines):
            log.info("%s", line_of(i, width))
