"""Time-to-next->=M-flare labels: reference, censoring conventions and a real region."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flare_core.errors import ConfigError
from flare_core.labels import binary_label_names, label_columns, label_time_to_event
from tests.support import bundled_flares
from tests.test_history import CLASSES, T0, flare_frame, record_frame


def _reference(records, flares, *, tmax_h, censor, horizon_h):
    fl = flares.filter(pl.col("harpnum").is_not_null()).to_dicts()
    recs = records.unique().sort("harpnum", "t_rec").to_dicts()
    last = {}
    for r in recs:
        last[r["harpnum"]] = max(last.get(r["harpnum"], r["t_rec"]), r["t_rec"])
    out = []
    for r in recs:
        h, t = r["harpnum"], r["t_rec"]
        after = [f for f in fl if f["harpnum"] == h and f["peak_time"] > t]
        m = sorted((f for f in after if f["goes_class"][0] in "MX"),
                   key=lambda f: (f["peak_time"], -f["peak_flux_wm2"]))
        c = [f for f in after if f["goes_class"][0] in "CMX"]
        hours = [(f["peak_time"] - t).total_seconds() / 3600 for f in m]
        if hours and hours[0] <= tmax_h:
            tte, ev, cls, flux = hours[0], 1, m[0]["goes_class"], m[0]["peak_flux_wm2"]
        else:
            end = (last[h] - t).total_seconds() / 3600
            tte = min(tmax_h, end) if censor == "last_observation" else tmax_h
            ev, cls, flux = 0, None, None
        out.append({
            "harpnum": h, "t_rec": t, "time_to_event_h": tte, "event": ev,
            "next_flare_class": cls, "next_flare_flux_wm2": flux,
            "m_within": any(x <= horizon_h for x in hours),
            "c_within": any((f["peak_time"] - t).total_seconds() / 3600 <= horizon_h
                            for f in c),
        })
    return out


@st.composite
def scenarios(draw):
    minutes = st.integers(0, 10 * 24 * 5).map(lambda i: T0 + timedelta(minutes=12 * i))
    recs = draw(st.lists(st.tuples(st.integers(1, 3), minutes), max_size=30))
    fls = draw(st.lists(st.tuples(st.integers(1, 3), minutes, st.sampled_from(CLASSES)),
                        max_size=20))
    return record_frame(recs), flare_frame(fls)


@settings(max_examples=80, deadline=None)
@given(case=scenarios(), tmax_h=st.sampled_from([12.0, 144.0]),
       censor=st.sampled_from(["last_observation", "tmax"]),
       horizon_h=st.sampled_from([6.0, 24.0]))
def test_labels_match_reference(case, tmax_h, censor, horizon_h):
    records, flares = case
    got = label_time_to_event(records, flares, tmax_h=tmax_h, censor=censor,
                              horizon_h=horizon_h)
    m_col, c_col = binary_label_names(horizon_h)
    assert got.columns == ["harpnum", "t_rec", *label_columns(horizon_h)]
    assert got.schema["event"] == pl.Int8 and got.schema[m_col] == pl.Boolean
    want = _reference(records, flares, tmax_h=tmax_h, censor=censor, horizon_h=horizon_h)
    assert got.height == len(want)
    for g, w in zip(got.to_dicts(), want, strict=True):
        assert (g["harpnum"], g["t_rec"]) == (w["harpnum"], w["t_rec"])
        assert g["time_to_event_h"] == pytest.approx(w["time_to_event_h"], rel=1e-12)
        assert g["event"] == w["event"]
        assert g["next_flare_class"] == w["next_flare_class"]
        assert g["next_flare_flux_wm2"] == w["next_flare_flux_wm2"]
        assert g[m_col] == w["m_within"] and g[c_col] == w["c_within"]
        assert 0 <= g["time_to_event_h"] <= tmax_h


def test_censoring_conventions():
    t = [T0 + timedelta(hours=h) for h in (0, 10, 20)]
    records = record_frame([(1, x) for x in t])
    flares = flare_frame([(1, T0 + timedelta(hours=300), "X2.0"),  # beyond tmax
                          (1, T0 + timedelta(hours=5), "C2.0")])
    obs = label_time_to_event(records, flares, tmax_h=144.0)
    assert obs["time_to_event_h"].to_list() == [20.0, 10.0, 0.0]
    assert obs["event"].to_list() == [0, 0, 0]
    assert obs["next_flare_class"].to_list() == [None, None, None]
    assert obs["c_within_24h"].to_list() == [True, False, False]
    paper = label_time_to_event(records, flares, tmax_h=144.0, censor="tmax")
    assert paper["time_to_event_h"].to_list() == [144.0] * 3
    # with a long tmax the X flare is an event, even after the last record
    late = label_time_to_event(records, flares, tmax_h=400.0)
    assert late["event"].to_list() == [1, 1, 1]
    assert late["time_to_event_h"].to_list() == [300.0, 290.0, 280.0]
    assert late["next_flare_class"].to_list() == ["X2.0"] * 3


def test_series_split_at_each_flare_and_exact_peak_is_future():
    t = [T0 + timedelta(hours=h) for h in (0, 1, 2, 3)]
    flares = flare_frame([(1, t[1], "M1.0"), (1, t[3] + timedelta(hours=2), "M4.0")])
    got = label_time_to_event(record_frame([(1, x) for x in t]), flares)
    # the record AT the first peak already points at the second flare (peak_time > t)
    assert got["next_flare_class"].to_list() == ["M1.0", "M4.0", "M4.0", "M4.0"]
    assert got["time_to_event_h"].to_list() == [1.0, 4.0, 3.0, 2.0]


def test_bad_arguments():
    records = record_frame([(1, T0)])
    flares = flare_frame([])
    with pytest.raises(ConfigError, match="censor"):
        label_time_to_event(records, flares, censor="paper")
    with pytest.raises(ConfigError, match="tmax_h"):
        label_time_to_event(records, flares, tmax_h=-1)


@pytest.fixture(scope="module")
def real(data_dir):
    files = pytest.importorskip("flare_core.sources.files")
    flares = bundled_flares(data_dir)
    path = data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz"
    return files.read_sun2022(path), flares, files.read_sun2022_labels(path)


def test_real_region_hand_computed(real):
    sharp, flares, _ = real
    # HARP 1321 (NOAA 11401/11402). NCEI list, >=M: M1.7 peak 2012-01-18 19:12 UTC,
    # M3.2 2012-01-19 16:05, M8.7 2012-01-23 03:59. First sun2022 record: t_end
    # 2012-01-18 03:12:00 TAI = 03:11:26 UTC (TAI-UTC = 34 s in 2012).
    got = label_time_to_event(sharp.filter(pl.col("harpnum") == 1321), flares)
    first = got.row(0, named=True)
    assert first["t_rec"] == datetime(2012, 1, 18, 3, 11, 26, tzinfo=UTC)
    assert first["time_to_event_h"] == pytest.approx(16 + 34 / 3600)  # 16 h 00 min 34 s
    assert (first["event"], first["next_flare_class"]) == (1, "M1.7")
    assert first["m_within_24h"]
    row = got.filter(pl.col("t_rec") == datetime(2012, 1, 20, 14, 23, 26, tzinfo=UTC)).row(
        0, named=True)
    # after the M3.2 of Jan 19, the next is the M8.7 of Jan 23: 61 h 35 min 34 s later
    assert row["next_flare_class"] == "M8.7"
    assert row["time_to_event_h"] == pytest.approx(61 + 35 / 60 + 34 / 3600)
    assert not row["m_within_24h"]


def test_real_fold_agrees_with_source_label(real):
    # The source label (Sun et al. 2022) is ">=M within 24 h" from another flare list and
    # NOAA association; ours must never claim a flare they do not have, and must find
    # most of theirs.
    sharp, flares, source = real
    got = label_time_to_event(sharp, flares).join(source, on=["harpnum", "t_rec"])
    assert got.height == sharp.height
    ours, theirs = got["m_within_24h"], got["label_m24_source"]
    assert not (ours & ~theirs).any()
    assert (ours & theirs).sum() / theirs.sum() > 0.9
