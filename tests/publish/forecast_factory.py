"""Synthetic forecast frames shared by the publish (and tasks) tests.

Forecasts are made, not measured, so they are synthetic: exponential survival curves with
a region-specific hazard, and the probabilities that follow from them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from flare_core.publish.forecast_store import FORECAST_SCHEMA

GRID_H = [0.0, 6.0, 12.0, 24.0, 48.0, 72.0, 144.0]
T0 = datetime(2014, 10, 22, tzinfo=UTC)


def make_forecasts(issue_times, harpnums=(4698, 4676, 4685), *, model="cox_ph",
                   version="v1", seed=0, with_curves=True) -> pl.DataFrame:
    """One forecast row per (issue time, region); probabilities follow from S(t)."""
    rng = np.random.default_rng(seed)
    rows = []
    for it in issue_times:
        for k, h in enumerate(harpnums):
            rate_per_h = float(rng.uniform(0.002, 0.05)) * (k + 1)
            curve = np.exp(-rate_per_h * np.asarray(GRID_H))
            p_any = 1 - float(np.exp(-rate_per_h * 24))
            rows.append({
                "issue_time": it, "harpnum": h, "noaa_ars": f"{12190 + k}", "model": model,
                "model_version": version, "t_rec": it - timedelta(minutes=12),
                "p_c24": p_any, "p_m24": p_any * 0.3, "p_x24": p_any * 0.05,
                "mean_lifetime_h": 1 / rate_per_h,
                "warning_class": "M" if p_any * 0.3 > 0.2 else None,
                "survival_grid_h": GRID_H if with_curves else None,
                "survival_curve": curve.tolist() if with_curves else None,
            })
    return pl.DataFrame(rows, schema=FORECAST_SCHEMA)

