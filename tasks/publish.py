"""Prefect tasks for publishing: thin wrappers over `flare_core.publish`.

Each task is one side effect. The store write retries only when the store was busy or
locked (`StoreError`); bad forecasts (`ParseError`) fail at once.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flare_core.errors import StoreError
from flare_core.publish.forecast_store import ForecastStore
from flare_core.publish.page import publish_latest_page
from flare_core.publish.scoreboard_json import write_scoreboard_json
from flare_core.publish.summary import rank_regions, summary_markdown

__all__ = ["store_forecasts", "write_scoreboard_documents", "render_latest_page",
           "publish_forecast_artifacts"]


def _store_busy(task, task_run, state) -> bool:  # noqa: ARG001 (Prefect's signature)
    """Retry only when the forecast store was locked or could not be opened."""
    try:
        state.result()
    except StoreError:
        return True
    except Exception:
        return False
    return False


@task(retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_store_busy)
def store_forecasts(forecasts: pl.DataFrame, store_path: Path) -> int:
    """Upsert forecasts into the forecast store; returns the rows written."""
    return ForecastStore(store_path).upsert(forecasts)  # flare_core logs the count


@task
def write_scoreboard_documents(forecasts: pl.DataFrame, out_dir: Path,
                               mode: str = "forecast") -> list[Path]:
    """One CCMC-style JSON document per issue time and model."""
    return write_scoreboard_json(forecasts, out_dir, mode=mode)


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=_store_busy)
def render_latest_page(store_path: Path, out_dir: Path, embed_images: bool = False) -> Path:
    """Plots and index.html of the newest issue time in the store."""
    return publish_latest_page(ForecastStore(store_path), out_dir, embed_images=embed_images)


@task
def publish_forecast_artifacts(forecasts: pl.DataFrame, top_n: int = 10) -> None:
    """A table artifact (regions by risk) and a Markdown digest of one issue time."""
    ranked = rank_regions(forecasts)
    table = [
        {"rank": r["rank"], "model": r["model"], "harpnum": r["harpnum"],
         "noaa_ars": r["noaa_ars"] or "", "p_c24": r["p_c24"], "p_m24": r["p_m24"],
         "p_x24": r["p_x24"], "mean_lifetime_h": r["mean_lifetime_h"],
         "warning_class": r["warning_class"] or ""}
        for r in ranked.filter(pl.col("rank") <= top_n).iter_rows(named=True)
    ]
    create_table_artifact(table=table, key="latest-forecast-regions",
                          description="Regions ranked by P(M+ flare in 24 h), per model")
    create_markdown_artifact(markdown=summary_markdown(forecasts, top_n=top_n),
                             key="latest-forecast-summary",
                             description="Full-disk probabilities and riskiest regions")
