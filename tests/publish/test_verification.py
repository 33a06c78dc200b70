"""Rolling verification: outcomes from the real GOES flare list, scores checked against
values computed independently here (plain loops, no flare_core.metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from forecast_factory import make_forecasts

from flare_core.errors import ConfigError
from flare_core.publish import plots, verification
from tests.support import bundled_flares

T = datetime(2014, 10, 26, 23, tzinfo=UTC)  # the page's issue time


@pytest.fixture(scope="module")
def flares(data_dir) -> pl.DataFrame:
    """The bundled NCEI GOES list of Oct 2014 (HARP numbers attached from the bundled map)."""
    return bundled_flares(data_dir).filter(
        pl.col("peak_time").is_between(datetime(2014, 9, 1, tzinfo=UTC),
                                       datetime(2014, 11, 30, tzinfo=UTC)))


@pytest.fixture(scope="module")
def forecasts() -> pl.DataFrame:
    """Hourly forecasts of AR 12192 (HARP 4698) and two quiet HARPs, Oct 20-26, two models."""
    times = [datetime(2014, 10, 20, tzinfo=UTC) + timedelta(hours=h) for h in range(168)]
    return pl.concat([make_forecasts(times, harpnums=(4698, 4718, 4734)),
                      make_forecasts(times, harpnums=(4698, 4718, 4734), model="logistic",
                                     seed=3).with_columns(warning_class=pl.lit(None,
                                                                                pl.Utf8))])


def _observed_by_hand(flares: pl.DataFrame, harpnum: int, t: datetime) -> bool:
    big = flares.filter(pl.col("harpnum") == harpnum,
                        pl.col("goes_class").str.slice(0, 1).is_in(["M", "X"]),
                        pl.col("peak_time") < T)
    return any(t < p <= t + timedelta(hours=24) for p in big["peak_time"])


def test_outcomes_follow_the_flare_list_and_ignore_the_future(forecasts, flares):
    lab = verification.label_forecasts(forecasts, flares, issue_time=T)
    # only forecasts whose 24-h window closed by T, within the last 30 days
    assert lab["issue_time"].max() == T - timedelta(hours=24)
    assert lab["issue_time"].min() == datetime(2014, 10, 20, tzinfo=UTC)
    assert lab.height == 2 * 3 * (168 - 24)
    sample = lab.filter(pl.col("model") == "cox_ph").sample(60, seed=1)
    for r in sample.iter_rows(named=True):
        assert r["m_within_24h"] == _observed_by_hand(flares, r["harpnum"], r["issue_time"]), r
    ar12192 = lab.filter(pl.col("model") == "cox_ph", pl.col("harpnum") == 4698)
    assert ar12192["m_within_24h"].mean() > 0.9  # AR 12192 flared at >=M almost every day
    # at an earlier page time only the windows closed by then are verified: the X1.6 of
    # 14:28 on the 22nd lies in no verified window of a page issued at 14:00
    cut = datetime(2014, 10, 22, 14, tzinfo=UTC)
    early = verification.label_forecasts(forecasts, flares, issue_time=cut)
    assert early["issue_time"].max() == cut - timedelta(hours=24)
    last = early.filter(pl.col("model") == "cox_ph", pl.col("harpnum") == 4698,
                        pl.col("issue_time") == cut - timedelta(hours=24))
    assert last["m_within_24h"].to_list() == [True]  # the M8.7 of 01:59 and M2.7 of 05:17


def test_scores_match_independent_computation(forecasts, flares):
    lab = verification.label_forecasts(forecasts, flares, issue_time=T)
    scores = verification.score_forecasts(lab)
    assert scores["model"].to_list() == ["cox_ph", "logistic"]
    for r in scores.iter_rows(named=True):
        part = lab.filter(pl.col("model") == r["model"])
        y = np.array(part["m_within_24h"].to_list(), dtype=float)
        p = part["p_m24"].to_numpy()
        assert r["n"] == y.size and r["events"] == int(y.sum())
        assert r["brier"] == pytest.approx(float(np.mean((p - y) ** 2)))
        rate = y.mean()
        assert r["bss"] == pytest.approx(1 - r["brier"] / np.mean((rate - y) ** 2))
        # AUC = P(score of a random event > score of a random non-event), ties count half
        pos, neg = p[y == 1], p[y == 0]
        wins = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert r["roc_auc"] == pytest.approx(wins)
        yes = p >= 0.5
        tss = (yes & (y == 1)).sum() / (y == 1).sum() - (yes & (y == 0)).sum() / (y == 0).sum()
        assert r["tss"] == pytest.approx(tss)
    assert scores.filter(pl.col("model") == "logistic")["tss_warning"].to_list() == [None]
    assert scores.filter(pl.col("model") == "cox_ph")["tss_warning"][0] is not None


def test_reliability_roc_and_plot(forecasts, flares, tmp_path):
    lab = verification.label_forecasts(forecasts, flares, issue_time=T)
    rel = verification.reliability_table(lab)
    assert (rel.group_by("model").agg(pl.col("n").sum()).sort("model")["n"].to_list()
            == [lab.height // 2] * 2)
    roc = verification.roc_table(lab)
    assert set(roc["model"]) == {"cox_ph", "logistic"}
    assert ((roc["fpr"] >= 0) & (roc["fpr"] <= 1) & (roc["tpr"] >= 0) & (roc["tpr"] <= 1)).all()
    path = plots.plot_verification(rel, roc, tmp_path / "v.png",
                                   scores=verification.score_forecasts(lab), title="test")
    from test_plots import assert_png_drawn

    assert_png_drawn(path)


def test_nothing_to_verify(forecasts, flares):
    lab = verification.label_forecasts(forecasts, flares,
                                       issue_time=datetime(2014, 10, 20, 12, tzinfo=UTC))
    assert lab.is_empty()  # no window closed yet
    assert verification.score_forecasts(lab).is_empty()
    assert verification.reliability_table(lab).is_empty()
    assert verification.roc_table(lab).is_empty()
    with pytest.raises(ConfigError, match="p_m24"):
        verification.score_forecasts(lab, columns=("p_x24",))
    with pytest.raises(ConfigError, match="reliability table is empty"):
        plots.plot_verification(verification.reliability_table(lab),
                                verification.roc_table(lab), "x.png")


def test_published_period_scores_pool_versions_with_the_training_climatology(forecasts,
                                                                             flares):
    """The period scores of ``published_scores.json``: both targets, versions pooled, the
    BSS against the given climatology, the contingency scores at 0.5 (one labelling and
    one scoring function with the page)."""
    lab = verification.label_forecasts(forecasts, flares)  # no page time: every flare
    assert lab.height == forecasts.height
    scores = verification.score_forecasts(lab, columns=("p_m24", "p_c24"), by=("model",),
                                          climatology={"m_within_24h": 0.2})
    doc = verification.scores_by_model(scores)
    assert sorted(doc) == ["cox_ph", "logistic"] and sorted(doc["cox_ph"]) == ["p_c24",
                                                                                "p_m24"]
    m = doc["cox_ph"]["p_m24"]
    part = lab.filter(pl.col("model") == "cox_ph")
    y = np.array(part["m_within_24h"].to_list(), dtype=float)
    p = part["p_m24"].to_numpy()
    assert m["n"] == y.size and m["events"] == int(y.sum())
    assert m["bss"] == pytest.approx(1 - np.mean((p - y) ** 2) / np.mean((0.2 - y) ** 2))
    yes = p >= 0.5
    assert m["at_0.5"]["tp"] == int((yes & (y == 1)).sum())
    assert m["at_0.5"]["fp"] == int((yes & (y == 0)).sum())
    assert "warning" in m and "warning" not in doc["logistic"]["p_m24"]
    assert "warning" not in doc["cox_ph"]["p_c24"]
