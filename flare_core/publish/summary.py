"""Short text summaries of one issue time: regions ranked by risk, and a Markdown digest.

Used for the HTML page's ordering and for the Prefect artifacts written by
`tasks.forecasting.publish_page` (which only wraps these functions).
"""

from __future__ import annotations

import logging

import polars as pl

from ..errors import ParseError
from .forecast_store import conform_forecasts
from .full_disk import full_disk_probabilities

__all__ = ["rank_regions", "summary_markdown"]

logger = logging.getLogger(__name__)


def rank_regions(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Forecast rows ranked by risk within each (issue_time, model, model_version).

    Order: P(M+) descending, then P(C+) descending (nulls last), then HARP number; a
    ``rank`` column (UInt32, 1 = highest risk) is added first.
    """
    df = conform_forecasts(forecasts)
    keys = ["issue_time", "model", "model_version"]
    ranked = df.sort([*keys, "p_m24", "p_c24", "harpnum"],
                     descending=[False, False, False, True, True, False], nulls_last=True)
    return ranked.select(pl.int_range(1, pl.len() + 1, dtype=pl.UInt32).over(keys)
                         .alias("rank"), pl.all())


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{p:.1%}"


def summary_markdown(forecasts: pl.DataFrame, *, top_n: int = 5) -> str:
    """A Markdown digest of one issue time: full-disk probabilities and the riskiest regions.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows of one issue time (any number of models).
    top_n : int, optional
        Regions listed per model (default 5).

    Raises
    ------
    ParseError
        If the rows span several issue times.
    """
    df = conform_forecasts(forecasts)
    if df["issue_time"].n_unique() != 1:
        raise ParseError(f"a summary covers one issue time; got {df['issue_time'].n_unique()}")
    issue = df["issue_time"][0]
    newest = df["t_rec"].max()
    lines = [f"# Flare forecast issued {issue:%Y-%m-%d %H:%M} UTC", "",
             f"Window: the 24 h after issue. Regions: {df['harpnum'].n_unique()}. "
             f"Newest SHARP record: {'–' if newest is None else f'{newest:%Y-%m-%d %H:%M} UTC'}.",
             "", "| model | full-disk C+ | M+ | X+ |", "|---|---|---|---|"]
    for fd in full_disk_probabilities(df).iter_rows(named=True):
        lines.append(f"| {fd['model']} {fd['model_version']} | {_pct(fd['p_c24'])} | "
                     f"{_pct(fd['p_m24'])} | {_pct(fd['p_x24'])} |")
    for part in rank_regions(df).partition_by(["model", "model_version"], maintain_order=True):
        lines += ["", f"## {part['model'][0]} {part['model_version'][0]}: top regions", "",
                  "| # | HARP | NOAA | C+ | M+ | X+ | mean lifetime (h) | warning |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in part.head(top_n).iter_rows(named=True):
            life = "–" if r["mean_lifetime_h"] is None else f"{r['mean_lifetime_h']:.1f}"
            lines.append(f"| {r['rank']} | {r['harpnum']} | {r['noaa_ars'] or '–'} | "
                         f"{_pct(r['p_c24'])} | {_pct(r['p_m24'])} | {_pct(r['p_x24'])} | "
                         f"{life} | {r['warning_class'] or '–'} |")
    return "\n".join(lines) + "\n"
