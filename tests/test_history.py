"""Flare history: a plain per-record reference vs the join_asof implementation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_core.errors import DataQualityWarning
from flare_core.history import HISTORY_COLUMNS, build_flare_history
from flare_core.schema import UTC_DATETIME, conform_flares
from tests.support import bundled_flares

T0 = datetime(2014, 1, 1, tzinfo=UTC)
CLASSES = ["A5.0", "B1.0", "B9.9", "C1.0", "C4.2", "M1.0", "M5.5", "X1.2"]


def flare_frame(rows: list[tuple[int | None, datetime, str]]) -> pl.DataFrame:
    """Canonical flare frame from (harpnum, peak_time, class) rows."""
    from flare_core.goes import class_to_flux

    df = pl.DataFrame(
        {
            "harpnum": [r[0] for r in rows],
            "peak_time": [r[1] for r in rows],
            "start_time": [r[1] - timedelta(minutes=10) for r in rows],
            "goes_class": [r[2] for r in rows],
            "peak_flux_wm2": [class_to_flux(r[2]) for r in rows],
        },
        schema_overrides={"harpnum": pl.Int64, "peak_time": UTC_DATETIME,
                          "start_time": UTC_DATETIME},
    )
    return conform_flares(df)


def record_frame(rows: list[tuple[int, datetime]]) -> pl.DataFrame:
    return pl.DataFrame({"harpnum": [r[0] for r in rows], "t_rec": [r[1] for r in rows]},
                        schema={"harpnum": pl.Int64, "t_rec": UTC_DATETIME})


def _reference(records: pl.DataFrame, flares: pl.DataFrame, window_h: float) -> pl.DataFrame:
    fl = flares.filter(pl.col("harpnum").is_not_null()).to_dicts()
    out = []
    for r in records.unique().sort("harpnum", "t_rec").to_dicts():
        h, t = r["harpnum"], r["t_rec"]
        before = [f for f in fl if f["harpnum"] == h and f["peak_time"] < t]

        def within(hours, fs, t=t):
            return [f for f in fs if f["peak_time"] > t - timedelta(hours=hours)]

        def cls(f):
            return f["goes_class"][0]

        b = [f for f in within(window_h, before) if cls(f) == "B"]
        c = [f for f in within(window_h, before) if cls(f) == "C"]
        ge_c = [f for f in before if cls(f) in "CMX"]
        ge_m = [f for f in before if cls(f) in "MX"]

        def since(fs, t=t):
            if not fs:
                return None
            return (t - max(f["peak_time"] for f in fs)).total_seconds() / 3600

        out.append({
            "harpnum": h, "t_rec": t,
            "history__b_count": float(len(b)),
            "history__b_flux_wm2": float(sum(f["peak_flux_wm2"] for f in b)),
            "history__c_count": float(len(c)),
            "history__c_flux_wm2": float(sum(f["peak_flux_wm2"] for f in c)),
            "history__hours_since_c": since(ge_c),
            "history__hours_since_m": since(ge_m),
            "history__m_count_24h": float(len(within(24, ge_m))),
            "history__m_count_48h": float(len(within(48, ge_m))),
            "history__m_count_all": float(len(ge_m)),
        })
    return pl.DataFrame(out, schema_overrides={"t_rec": UTC_DATETIME,
                                               "history__hours_since_c": pl.Float64,
                                               "history__hours_since_m": pl.Float64})


def _assert_close(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == ["harpnum", "t_rec", *HISTORY_COLUMNS]
    assert got.height == want.height
    if want.height == 0:
        return
    assert got.select("harpnum", "t_rec").equals(want.select("harpnum", "t_rec"))
    for col in HISTORY_COLUMNS:
        g = got[col].to_numpy().astype(float)
        w = want[col].to_numpy().astype(float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), col
        ok = ~np.isnan(w)
        np.testing.assert_allclose(g[ok], w[ok], rtol=1e-9, atol=1e-20, err_msg=col)


@st.composite
def scenarios(draw):
    minutes = st.integers(0, 6 * 24 * 60 // 12).map(lambda i: T0 + timedelta(minutes=12 * i))
    recs = draw(st.lists(st.tuples(st.integers(1, 3), minutes), max_size=30))
    fls = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 3)), minutes,
                                  st.sampled_from(CLASSES)), max_size=30))
    return record_frame(recs), flare_frame(fls)


@pytest.mark.filterwarnings("ignore::flare_core.errors.DataQualityWarning")
@settings(max_examples=80, deadline=None)
@given(case=scenarios(), window_h=st.sampled_from([1.0, 4.0, 12.0]))
def test_history_matches_reference(case, window_h):
    records, flares = case
    _assert_close(build_flare_history(records, flares, window_h=window_h),
                  _reference(records, flares, window_h))


def test_flare_at_record_time_is_not_history():
    t = T0 + timedelta(hours=10)
    flares = flare_frame([(1, t, "M2.0"), (1, t - timedelta(hours=1), "C3.0"),
                          (1, t - timedelta(hours=4), "B5.0"),  # exactly window_h before
                          (2, t - timedelta(hours=1), "X1.0")])  # another region
    got = build_flare_history(record_frame([(1, t)]), flares).row(0, named=True)
    assert got["history__m_count_all"] == 0  # the M flare peaks AT t: not yet known
    assert got["history__hours_since_m"] is None
    assert got["history__hours_since_c"] == pytest.approx(1.0)
    assert got["history__c_count"] == 1
    assert got["history__c_flux_wm2"] == pytest.approx(3e-6)
    assert got["history__b_count"] == 0  # window is open on the left


def test_unmapped_flares_warn():
    flares = flare_frame([(None, T0, "M1.0")])
    with pytest.warns(DataQualityWarning, match="attach_harpnum"):
        got = build_flare_history(record_frame([(1, T0 + timedelta(hours=1))]), flares)
    assert got["history__m_count_all"].to_list() == [0.0]


def test_real_region_history(data_dir):
    files = pytest.importorskip("flare_core.sources.files")
    flares = bundled_flares(data_dir)
    sharp = files.read_sun2022(data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz")
    # the region of fold 0 with the most >=M flares in the NCEI list
    m = flares.filter(pl.col("peak_flux_wm2") >= 1e-5, pl.col("harpnum").is_in(
        sharp["harpnum"].unique().implode()))
    harp = m.group_by("harpnum").len().sort("len", "harpnum", descending=True)["harpnum"][0]
    records = sharp.filter(pl.col("harpnum") == harp)
    region_flares = flares.filter(pl.col("harpnum") == harp)
    _assert_close(build_flare_history(records, flares), _reference(records, region_flares, 4.0))
