"""File readers on the bundled real files, and on small corrupted copies of them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import ParseError
from flare_core.goes import class_to_flux
from flare_core.schema import FLARE_SCHEMA, SHARP_SCHEMA
from flare_core.sources import (
    detect_format,
    load_file,
    read_file,
    read_hayes_flares,
    read_hek_noheader,
    read_liu2019_flares,
    read_ncei_goes_flares,
    read_ncei_solar_events,
    read_sun2022,
    read_sun2022_labels,
    read_swan_sf_mvts,
    read_swpc_flares,
)
from flare_core.timeutil import tai_to_utc
from tests.support import raw_lines, set_field, write_lines

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NCEI = "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"


# ----------------------------------------------------------------------------- sun2022


def test_read_sun2022_real_fold(data_dir):
    path = data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz"
    df = read_sun2022(path)
    raw = pl.read_csv(path)
    assert df.schema == pl.Schema(SHARP_SCHEMA)
    assert df.height == raw.height  # no duplicates or bad rows in the real file
    assert df["harpnum"].n_unique() == raw["arpnum"].n_unique()
    # labels never leak into the SHARP frame
    assert not {"label", "flares", "FLARE_INDEX", "flare_index"} & set(df.columns)
    # t_rec = t_end converted TAI -> UTC with the scalar reference implementation
    first = raw.sort(["arpnum", "t_end"]).row(0, named=True)
    t_tai = datetime.fromisoformat(first["t_end"])
    row = df.filter(pl.col("harpnum") == first["arpnum"]).row(0, named=True)
    assert row["t_rec"] == tai_to_utc(t_tai)
    assert row["usflux"] == pytest.approx(first["USFLUX"])
    assert row["area"] == pytest.approx(first["AREA"])
    assert df["meanpot"].null_count() == df.height  # absent keyword is null, never 0
    assert df.select(pl.col("t_rec").diff().over("harpnum").min()).item().total_seconds() > 0


def test_sun2022_folds_disjoint_and_labels(data_dir):
    folds = [read_sun2022(data_dir / f"sharp/sun2022_sharp_m24h_fold{k}.csv.gz") for k in range(2)]
    assert not set(folds[0]["harpnum"]) & set(folds[1]["harpnum"])
    lab = read_sun2022_labels(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")
    assert lab.columns == ["harpnum", "t_rec", "label_m24_source"]
    assert lab.height == folds[0].height
    assert 0 < lab["label_m24_source"].sum() < lab.height


def test_sun2022_bad_rows_dropped_or_raised(data_dir, tmp_path):
    lines = raw_lines(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")[:21]
    bad = list(lines)
    set_field(bad, 3, 3, "2013-13-45 00:00:00")  # malformed t_end (line 4)
    set_field(bad, 5, 8, "lots")  # non-numeric USFLUX (line 6)
    set_field(bad, 7, 10, "nan")  # NaN R_VALUE: kept, value nulled
    bad.append(bad[10])  # duplicated record
    bad.insert(12, bad[2])  # out of order + duplicate
    p = write_lines(tmp_path, "fold.csv", bad)
    res = load_file(p, "sun2022")
    assert res.frame.height == 20 - 2
    assert res.drops.counts["malformed t_end"] == 1
    assert res.drops.counts["non-numeric USFLUX"] == 1
    assert res.drops.notes["NaN keyword value -> null"] == 1
    assert res.drops.counts["duplicate (harpnum, t_rec)"] == 2
    assert "fold.csv:4" in res.drops.examples["malformed t_end"]
    assert res.frame["r_value"].null_count() == 1
    with pytest.raises(ParseError, match=r"fold.csv, line 4: malformed t_end"):
        read_sun2022(p, strict=True)


def test_missing_column_is_named(tmp_path):
    p = write_lines(tmp_path, "x.csv", ["prefix,arpnum,t_end", "HARP,1,2013-01-01 00:00:00"])
    with pytest.raises(ParseError, match="AREA"):
        read_sun2022(p)


# ----------------------------------------------------------------------------- SWAN-SF


def test_read_swan_sf_mvts_real(data_dir):
    mvts = data_dir / "swan_sf/mvts"
    res = load_file(mvts)
    df = res.frame
    assert res.fmt == "swan_sf_mvts" and res.kind == "sharp"
    assert df.schema == pl.Schema(SHARP_SCHEMA)
    files = sorted(mvts.glob("*.csv"))
    assert df["harpnum"].n_unique() == len({f.name.split("_id[")[1].split("]")[0] for f in files})
    # overlapping windows of HARP 3686/3647/3272 repeat records: counted, not silently lost
    assert res.drops.counts["duplicate (harpnum, t_rec)"] > 0
    assert df.height + res.drops.total >= 60 * len(files) - 1
    assert df.select(pl.struct("harpnum", "t_rec").is_duplicated().any()).item() is False
    assert df["totusjh"].null_count() < 0.02 * df.height  # a few real gaps (NA, nan)
    assert df["area_acr"].null_count() == df.height
    assert set(df["noaa_ars"].drop_nulls()) >= {"11967", "11958,11959,11960,11963,11964"}
    assert df["quality"].drop_nulls().min() >= 0
    assert not any("flare" in c for c in df.columns)


def test_swan_keyword_values_match_file(data_dir):
    f = sorted((data_dir / "swan_sf/mvts").glob("lab[[]M]1.5*"))[0]
    raw = pl.read_csv(f.read_bytes(), separator="\t")
    df = read_swan_sf_mvts([f])
    assert df.height == raw.height
    assert df["usflux"].to_list() == pytest.approx(raw["USFLUX"].to_list())
    assert df["t_rec"][0] == tai_to_utc(datetime.fromisoformat(raw["Timestamp"][0]))


# ----------------------------------------------------------------------------- flare lists


def _check_flares(df: pl.DataFrame, source: str) -> None:
    assert df.schema == pl.Schema(FLARE_SCHEMA)
    assert df.height > 0
    assert (df["source"] == source).all()
    assert df["peak_time"].null_count() == 0 and df["start_time"].null_count() == 0
    assert (df["peak_time"] >= df["start_time"]).all()
    assert (df["end_time"].is_null() | (df["end_time"] >= df["peak_time"])).all()
    sample = df.sample(50, seed=0)
    for c, flux in zip(sample["goes_class"], sample["peak_flux_wm2"], strict=True):
        assert flux == class_to_flux(c)
    assert df.select(pl.struct("peak_time", "goes_class", "noaa_ar").is_duplicated().any()).item() \
        is False
    assert (df["noaa_ar"].drop_nulls() > 0).all()


def test_read_ncei_goes_flares_real(data_dir):
    path = data_dir / NCEI
    res = load_file(path)
    df = res.frame
    assert res.fmt == "ncei_goes"
    _check_flares(df, "ncei_goes")
    raw_n = len(raw_lines(path)) - 1
    assert df.height + res.drops.total == raw_n
    assert res.drops.counts["unknown GOES class"] >= 1  # 'A0.0' in the real file
    # the 2023-12-29+ rows use YYYY/MM/DD HH:MM for start/end: parsed, not dropped
    late = df.filter(pl.col("peak_time") >= datetime(2024, 1, 1, tzinfo=UTC))
    assert late.height > 6000 and late["end_time"].null_count() == 0
    # noaa_ar 0 means unassigned -> null
    raw = pl.read_csv(path, infer_schema_length=0)
    assert df["noaa_ar"].null_count() == pytest.approx((raw["noaa_ar"] == "0").sum(), abs=5)
    assert set(df["goes_class"].str.slice(0, 1).unique()) == {"A", "B", "C", "M", "X"}


def test_read_other_flare_lists_real(data_dir):
    _check_flares(read_swpc_flares(data_dir / "flares/swpc_flarelist_20100101-20210810.csv.gz"),
                  "swpc")
    _check_flares(read_hayes_flares(
        data_dir / "flares/hayes_final_flare_list_sc24_2010-2018.csv.gz"), "hayes")
    _check_flares(read_ncei_solar_events(
        data_dir / "flares/ncei_solar_events_1996-07_2022-10.csv.gz"), "ncei_solar_events")
    liu = read_liu2019_flares(data_dir / "flares/liu2019")
    _check_flares(liu, "liu2019")
    assert (liu["peak_time"] == liu["end_time"]).all()  # no peak in the source: upper bound


def test_swpc_midnight_crossing(data_dir):
    df = read_swpc_flares(data_dir / "flares/swpc_flarelist_20100101-20210810.csv.gz")
    assert (df["end_time"] >= df["peak_time"]).all()
    assert (df["peak_time"] >= df["start_time"]).all()
    # 2010-03-13 23:35 start, 23:49 peak, 00:23 end (next day)
    row = df.filter(pl.col("start_time") == datetime(2010, 3, 13, 23, 35, tzinfo=UTC))
    assert row["end_time"][0] == datetime(2010, 3, 14, 0, 23, tzinfo=UTC)


def test_swpc_and_hayes_agree_on_sc24(data_dir):
    swpc = read_swpc_flares(data_dir / "flares/swpc_flarelist_20100101-20210810.csv.gz")
    hayes = read_hayes_flares(data_dir / "flares/hayes_final_flare_list_sc24_2010-2018.csv.gz")
    j = hayes.join(swpc, on=["peak_time", "goes_class"], how="inner")
    assert j.height > 0.9 * hayes.height


@pytest.mark.skipif(not (SHARED / "goes_flare_lists").exists(), reason="../shared/data absent")
def test_read_hek_noheader_shared():
    p = SHARED / "goes_flare_lists/hek_goes_sunpy_2010-05_2019-10_noheader.csv.gz"
    assert detect_format(p) == "hek_noheader"
    df = read_hek_noheader(p)
    _check_flares(df, "hek_noheader")
    assert df["peak_time"].min() >= datetime(2010, 5, 1, tzinfo=UTC)


def test_ncei_unknown_class_and_bad_time(data_dir, tmp_path):
    lines = raw_lines(data_dir / NCEI)[:11]
    set_field(lines, 2, 4, "Q9.9")
    set_field(lines, 5, 2, "yesterday")
    p = write_lines(tmp_path, "ncei.csv", lines)
    res = load_file(p, "ncei_goes")
    assert res.frame.height == 8
    assert res.drops.counts == {"unknown GOES class": 1, "malformed peak_raw": 1}
    with pytest.raises(ParseError, match=r"ncei.csv, line \d+"):
        read_ncei_goes_flares(p, strict=True)


def test_read_file_dispatch(data_dir):
    kind, df = read_file(data_dir / "sharp/sun2022_sharp_m24h_fold1.csv.gz")
    assert kind == "sharp" and df.height > 0
    kind, df = read_file(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")
    assert kind == "harp_map" and df.columns[:2] == ["harpnum", "noaa_ar"]  # + series (store)
    with pytest.raises(ParseError, match="unknown file layout"):
        detect_format(data_dir / "jsoc/hmi.sharp_cea_720s_keywords.csv")
    with pytest.raises(ParseError, match="no such file"):
        read_file(data_dir / "nope.csv")
    with pytest.raises(ParseError, match="unknown format"):
        read_file(data_dir / NCEI, "nonsense")
