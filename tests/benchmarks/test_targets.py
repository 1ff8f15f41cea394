"""The benchmark suite's own arithmetic: how targets are judged and how rounds alternate
(``benchmarks/_report.py``, ``benchmarks/_harness.py``). No timing is asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _harness import rounds, summarize  # noqa: E402
from _report import row, target, targets_summary, text_table  # noqa: E402


def stats(median: float) -> dict[str, float]:
    return {"median": median, "min": median / 2, "max": median * 2}


def test_a_value_target_is_judged_on_normandys_median():
    assert row("w", "m", "ms", stats(0.9), goal=target("≤ 1 ms", "value", "<=", 1.0))["met"]
    assert not row("w", "m", "ms", stats(1.1), goal=target("≤ 1 ms", "value", "<=", 1.0))["met"]


def test_a_ratio_target_is_judged_on_the_ratio_of_the_medians():
    goal = target("≥ 10× faster", "ratio", ">=", 10.0)
    met = row("w", "m", "MiB/s", stats(1000.0), ("ref", stats(80.0)), goal)
    assert met["ratio"] == pytest.approx(12.5) and met["met"]
    missed = row("w", "m", "MiB/s", stats(500.0), ("ref", stats(80.0)), goal)
    assert missed["met"] is False
    assert targets_summary([met, missed]) == (1, 2, ["w: m (≥ 10× faster)"])


def test_a_row_without_a_target_is_not_judged():
    info = row("w", "m", "s", stats(1.0), ("ref", stats(2.0)))
    assert info["met"] is None
    assert targets_summary([info]) == (0, 0, [])
    assert "0.50" in text_table([info])


def test_rounds_alternate_the_order_every_repetition():
    assert rounds(3, ["a", "b", "c"]) == [
        (0, "a"), (0, "b"), (0, "c"), (1, "c"), (1, "b"), (1, "a"), (2, "a"), (2, "b"), (2, "c"),
    ]  # fmt: skip


def test_summarize_keeps_the_samples_and_their_median():
    summary = summarize([3, 1, 2])
    assert summary == {"median": 2.0, "min": 1.0, "max": 3.0, "samples": [3.0, 1.0, 2.0]}
