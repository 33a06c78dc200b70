"""Risk ranking and the Markdown digest."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from forecast_factory import T0, make_forecasts

from flare_core.errors import ParseError
from flare_core.publish.summary import rank_regions, summary_markdown


def test_rank_regions_orders_by_m_then_c_within_each_model():
    fc = pl.concat([make_forecasts([T0], harpnums=(1, 2, 3, 4)),
                    make_forecasts([T0], harpnums=(1, 2, 3, 4), model="defn", seed=3)])
    fc = fc.with_columns(pl.when(pl.col("harpnum") == 4).then(None).otherwise(pl.col("p_m24"))
                         .alias("p_m24"))
    ranked = rank_regions(fc)
    for part in ranked.partition_by("model"):
        assert part["rank"].to_list() == [1, 2, 3, 4]
        assert part["harpnum"][-1] == 4  # null P(M+) ranks last
        p = part["p_m24"].drop_nulls().to_list()
        assert p == sorted(p, reverse=True)


def test_summary_markdown_lists_full_disk_and_regions():
    fc = make_forecasts([T0])
    md = summary_markdown(fc, top_n=2)
    assert md.startswith("# Flare forecast issued 2014-10-22 00:00 UTC")
    ranked = rank_regions(fc)["harpnum"].to_list()
    for h in ranked[:2]:
        assert f"| {h} |" in md
    assert f"| {ranked[2]} |" not in md  # only the top 2
    full = 1 - (1 - fc["p_m24"]).product()
    assert "| cox_ph v1 | " in md and f"{full:.1%}" in md
    with pytest.raises(ParseError, match="one issue time"):
        summary_markdown(make_forecasts([T0, T0 + timedelta(hours=1)]))
