"""The realistic pipeline's data, generated: companies (CSV), shuttles (an Excel workbook)
and reviews (Parquet), a few MB in all, the same every time (seeded); and the table the
``processing`` flow makes of them (``model_input.parquet``), as its last run left it for
the other flows."""

from __future__ import annotations

from pathlib import Path

import ml_data
import numpy as np
import pandas as pd

LOCATIONS = [f"Planet {c}" for c in "ABCDEFGHIJKLMNOPQRST"]


def make(folder: Path, companies: int, shuttles: int, reviews: int) -> dict[str, int]:
    """Write the three files into ``folder``; their sizes in bytes."""
    rng = np.random.default_rng(2026)
    folder.mkdir(parents=True, exist_ok=True)
    company = pd.DataFrame(
        {
            "id": np.arange(companies),
            "company_rating": [f"{r}%" for r in rng.integers(40, 101, companies)],
            "company_location": rng.choice(LOCATIONS, companies),
            "total_fleet_count": rng.integers(1, 40, companies),
            "iata_approved": rng.choice(["t", "f"], companies),
        }
    )
    company.to_csv(folder / "companies.csv", index=False)
    engines = rng.integers(1, 5, shuttles)
    capacity = rng.integers(2, 12, shuttles)
    price = 500 + 310 * engines + 95 * capacity + rng.normal(0, 120, shuttles)
    shuttle = pd.DataFrame(
        {
            "id": np.arange(shuttles),
            "shuttle_location": rng.choice(LOCATIONS, shuttles),
            "shuttle_type": rng.choice(["Type V5", "Type F5", "Type O4"], shuttles),
            "engine_type": rng.choice(["Quantum", "Plasma", "Nuclear"], shuttles),
            "engines": engines,
            "passenger_capacity": capacity,
            "crew": rng.integers(1, 8, shuttles),
            "d_check_complete": rng.choice(["t", "f"], shuttles),
            "moon_clearance_complete": rng.choice(["t", "f"], shuttles),
            "price": [f"${p:,.1f}" for p in price],
            "company_id": rng.integers(0, companies, shuttles),
        }
    )
    shuttle.to_excel(folder / "shuttles.xlsx", index=False, engine="openpyxl")
    review = pd.DataFrame(
        {
            "shuttle_id": rng.integers(0, shuttles, reviews),
            **{
                f"review_scores_{k}": rng.integers(1, 11, reviews).astype(float)
                for k in ("rating", "comfort", "amenities", "trip", "crew", "location", "price")
            },
            "score_text": rng.choice(["good", "fine", "bad", "great"], reviews),
        }
    )
    review.to_parquet(folder / "reviews.parquet", index=False)
    ml_data.model_input_table(
        ml_data.preprocess_companies(company),
        ml_data.preprocess_shuttles(shuttle),
        ml_data.summarize_reviews(review),
        {"out_dir": str(folder)},
    )
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
