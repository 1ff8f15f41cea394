"""The composed workload's raw data, generated (seeded): operators (CSV), vessels (an
Excel workbook) and inspections (Parquet) of a made-up fleet of cargo vessels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PORTS = [f"Port {c}" for c in "ABCDEFGHIJKLMNOP"]


def make(folder: Path, operators: int, vessels: int, inspections: int) -> dict[str, int]:
    """Write the three files into ``folder``; their sizes in bytes."""
    rng = np.random.default_rng(26)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "operator_id": np.arange(operators),
            "home_port": rng.choice(PORTS, operators),
            "safety_score": rng.integers(30, 101, operators).astype(str),
            "certified": rng.choice(["yes", "no"], operators),
            "founded": rng.integers(1950, 2024, operators),
        }
    ).to_csv(folder / "operators.csv", index=False)
    holds = rng.integers(1, 9, vessels)
    length = rng.integers(80, 400, vessels)
    engines = rng.integers(1, 5, vessels)
    rate = 900 + 140 * holds + 3.5 * length + 260 * engines + rng.normal(0, 150, vessels)
    pd.DataFrame(
        {
            "vessel_id": np.arange(vessels),
            "operator_id": rng.integers(0, operators, vessels),
            "hull": rng.choice(["steel", "composite", "aluminium"], vessels),
            "holds": holds,
            "length_m": length,
            "engines": engines,
            "built": rng.integers(1970, 2024, vessels),
            "ice_class": rng.choice(["yes", "no"], vessels),
            "day_rate": rate.round(1).astype(str),
        }
    ).to_excel(folder / "vessels.xlsx", index=False, engine="openpyxl")
    pd.DataFrame(
        {
            "vessel_id": rng.integers(0, vessels, inspections),
            **{
                f"{part}_grade": rng.integers(1, 11, inspections).astype(float)
                for part in ("hull", "engine", "safety", "crew", "cargo")
            },
            "passed": rng.choice(["yes", "no"], inspections, p=[0.8, 0.2]),
        }
    ).to_parquet(folder / "inspections.parquet", index=False)
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
