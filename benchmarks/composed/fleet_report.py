"""Reporting: charts of the model input (matplotlib, PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(figure: plt.Figure, folder: str, name: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    figure.savefig(Path(folder) / name, dpi=72)
    plt.close(figure)


def plot_rates(table: pd.DataFrame, folder: str, bins: int) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.hist(table["day_rate"], bins=bins)
    axes.set(title="Day rates", xlabel="day rate", ylabel="vessels")
    _save(figure, folder, "day_rates.png")


def plot_length_vs_rate(table: pd.DataFrame, folder: str, sample: int) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    shown = table.sample(min(sample, len(table)), random_state=0)
    axes.scatter(shown["length_m"], shown["day_rate"], s=4, alpha=0.5)
    axes.set(title="Length and day rate", xlabel="length (m)", ylabel="day rate")
    _save(figure, folder, "length_vs_rate.png")


def plot_grades(table: pd.DataFrame, folder: str, grades: list) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    table[grades].mean().sort_values().plot.barh(ax=axes)
    axes.set(title="Mean inspection grades")
    _save(figure, folder, "grades.png")
