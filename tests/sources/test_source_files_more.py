"""Readers of the NOAA-keyed SHARP files (Hollanda, FlareML) and SWAN-SF window statistics."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import ParseError
from flare_core.features import feature_columns
from flare_core.schema import SHARP_SCHEMA
from flare_core.sources import (
    detect_format,
    load_file,
    read_file,
    read_flareml_labels,
    read_flareml_snapshots,
    read_harp_noaa_map,
    read_hollanda_labels,
    read_hollanda_sharp,
    read_swan_sf_window_stats,
)
from flare_core.timeutil import tai_to_utc
from tests.support import raw_lines, set_field, write_lines

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HOLLANDA = SHARED / "sharp_keywords/hollanda_sharp_daily_flare_2010-05_2019-12.csv.gz"
FLAREML = "sharp/flareml_flaring_ar_snapshots.csv"
WINSTATS = "swan_sf/swan_sf_window_stats_2013-10_2014-04.csv.gz"
LABEL_WORDS = ("flare", "label", "lab", "class")
needs_hollanda = pytest.mark.skipif(not HOLLANDA.exists(), reason="../shared/data absent")


@pytest.fixture(scope="module")
def harp_map(data_dir):
    return read_harp_noaa_map(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")


def _no_label_columns(df: pl.DataFrame) -> None:
    assert df.schema == pl.Schema(SHARP_SCHEMA)
    assert not [c for c in df.columns
                if any(part.startswith(w) for part in c.lower().split("_") for w in LABEL_WORDS)]


# ----------------------------------------------------------------------------- Hollanda


@needs_hollanda
def test_hollanda_real_file(harp_map):
    raw = pl.read_csv(HOLLANDA, separator=";", infer_schema=False)
    res = load_file(HOLLANDA, harp_map=harp_map)
    df = res.frame
    assert (res.fmt, res.kind) == ("hollanda", "sharp")
    _no_label_columns(df)
    assert df.height == raw.height == 8874
    assert df["noaa_ars"].n_unique() == raw["NOAA_AR"].n_unique() == 1289
    assert res.drops.total == 0
    # every NOAA AR of the file is in the map; ambiguous ones are counted, none collide
    assert df["harpnum"].null_count() == 0
    assert res.drops.notes["NOAA AR on several HARPs (HARP with fewest NOAA ARs kept)"] > 0
    assert df.select(pl.struct("harpnum", "t_rec").is_duplicated().any()).item() is False
    # the 15 missing values are nulls, counted
    n_missing = sum(raw[c].is_null().sum() for c in raw.columns)
    assert res.drops.notes["missing value -> null"] == n_missing == 15
    assert sum(df[c].null_count() for c in ("meanshr", "totusjh", "usflux", "epsx")) == 15
    # unsigned Longitude/Latitude are not passed off as signed lon_fwt/lat_fwt
    assert raw["Latitude"].cast(pl.Int64).min() >= 0
    assert df["lat_fwt"].null_count() == df["lon_fwt"].null_count() == df.height
    assert df["area"].null_count() == df.height and df["area_acr"].null_count() == 0
    first = raw.row(0, named=True)
    row = df.filter((pl.col("noaa_ars") == first["NOAA_AR"])
                    & (pl.col("t_rec") == tai_to_utc(datetime.fromisoformat(first["T_REC"]))))
    assert row.height == 1
    assert row["totusjh"][0] == pytest.approx(float(first["TOTUSJH"]))
    assert row["quality"][0] == int(first["QUALITY"])


@needs_hollanda
def test_hollanda_without_map_and_labels(harp_map):
    df = read_hollanda_sharp(HOLLANDA)
    assert df.height == 8874 and df["harpnum"].null_count() == df.height
    lab = read_hollanda_labels(HOLLANDA, harp_map=harp_map)
    assert lab.columns == ["harpnum", "noaa_ar", "t_rec", "label_flare_source"]
    assert lab.height == df.height
    raw = pl.read_csv(HOLLANDA, separator=";")
    assert lab["label_flare_source"].sum() == raw["FlareNumber"].sum() == 381


@needs_hollanda
def test_hollanda_malformed_rows(tmp_path, harp_map):
    lines = raw_lines(HOLLANDA)[:31]
    set_field(lines, 3, 1, "2010-05-32 23:48:00", sep=";")  # malformed T_REC, line 4
    set_field(lines, 6, 8, "abc", sep=";")  # non-numeric TOTPOT, line 7
    set_field(lines, 9, 2, "", sep=";")  # missing NOAA_AR, line 10
    p = write_lines(tmp_path, "hol.csv", lines)
    res = load_file(p, harp_map=harp_map)
    assert res.fmt == "hollanda"
    assert res.frame.height == 30 - 3
    assert res.drops.counts == {"malformed T_REC": 1, "non-numeric TOTPOT": 1,
                                "missing NOAA_AR": 1}
    assert "hol.csv:7" in res.drops.examples["non-numeric TOTPOT"]
    with pytest.raises(ParseError, match=r"hol.csv, line 4: malformed T_REC"):
        read_hollanda_sharp(p, strict=True)


# ----------------------------------------------------------------------------- FlareML


def test_flareml_real_file(data_dir, harp_map):
    path = data_dir / FLAREML
    raw = pl.read_csv(path, infer_schema=False)
    res = load_file(path, harp_map=harp_map)
    df = res.frame
    assert (res.fmt, res.kind) == ("flareml", "sharp")
    _no_label_columns(df)
    assert df.height == raw.height == 845 and res.drops.total == 0
    assert df["harpnum"].null_count() == 0
    assert df.select(pl.struct("harpnum", "t_rec").is_duplicated().any()).item() is False
    kw = [c for c in SHARP_SCHEMA if c in {k.lower() for k in raw.columns}]
    assert len(kw) == 13 and df.select(pl.sum_horizontal(pl.col(kw).null_count())).item() == 0
    assert df["meangbz"].null_count() == df.height  # absent keyword: null, never 0
    first = raw.row(0, named=True)  # X22,2/15/2011 0:10,11158,...
    row = df.filter(pl.col("noaa_ars") == first["AR"]).sort("t_rec").row(0, named=True)
    assert row["t_rec"] == datetime.strptime(first["Flare Date"], "%m/%d/%Y %H:%M").replace(
        tzinfo=row["t_rec"].tzinfo)
    assert row["totpot"] == pytest.approx(float(first["TOTPOT"]))
    assert read_flareml_snapshots(path)["harpnum"].null_count() == df.height


def test_flareml_labels(data_dir):
    lab = read_flareml_labels(data_dir / FLAREML)
    assert lab.columns == ["harpnum", "noaa_ar", "t_rec", "label_flare_class",
                           "label_peak_flux_wm2"]
    counts = dict(lab["label_flare_class"].str.slice(0, 1).value_counts().iter_rows())
    assert counts == {"B": 128, "C": 552, "M": 142, "X": 23}
    raw = pl.read_csv(data_dir / FLAREML, infer_schema=False)
    assert raw["Flare Class"][0] == "X22"
    x = lab.filter((pl.col("noaa_ar") == int(raw["AR"][0])) & (pl.col("label_flare_class")
                                                                  == "X2.2"))
    assert x["label_peak_flux_wm2"][0] == pytest.approx(2.2e-4)


def test_flareml_malformed_rows(data_dir, tmp_path):
    lines = raw_lines(data_dir / FLAREML)[:21]
    set_field(lines, 4, 1, "15/2/2011 0:10")  # month 15: line 5
    set_field(lines, 8, 2, "AR?")  # line 9
    p = write_lines(tmp_path, "fml.csv", lines)
    res = load_file(p)
    assert res.fmt == "flareml" and res.frame.height == 18
    assert res.drops.counts == {"malformed Flare Date": 1, "malformed NOAA AR number": 1}
    with pytest.raises(ParseError, match=r"fml.csv, line 5: malformed Flare Date"):
        read_flareml_snapshots(p, strict=True)
    set_field(lines, 2, 0, "Q12")
    with pytest.raises(ParseError, match=r"fml2.csv, line 2: unknown GOES class"):
        read_flareml_labels(write_lines(tmp_path, "fml2.csv", lines[:1] + lines[2:4]))


# ----------------------------------------------------------------------------- window stats


def test_window_stats_real_file(data_dir):
    res = load_file(data_dir / WINSTATS)
    df = res.frame
    assert (res.fmt, res.kind) == ("swan_sf_window_stats", "window_stats")
    assert df.height == 2698 and df["harpnum"].n_unique() == 243
    counts = dict(df["label_flare_class"].value_counts().iter_rows())
    assert counts == {"N": 2222, "B": 10, "C": 335, "M": 115, "X": 16}
    feats = feature_columns(df)
    assert "label_flare_class" not in feats
    assert set(df.columns) - set(feats) == {"harpnum", "window_start", "window_end",
                                            "label_flare_class"}
    assert len(feats) == 3 * 6
    assert {"totusjh__mean", "totbsq__std", "totpot__median", "totpot__var"} <= set(feats)
    assert (df["window_end"] > df["window_start"]).all()
    assert str(df.schema["window_start"]) == "Datetime(time_unit='us', time_zone='UTC')"
    ok = df.filter(pl.col("totusjh__std").is_not_null() & pl.col("totusjh__var").is_not_null())
    rel = (ok["totusjh__std"] ** 2 - ok["totusjh__var"]).abs() / ok["totusjh__var"].abs()
    assert rel.max() < 1e-6
    assert (df["totusjh__min"] <= df["totusjh__max"]).all()


def test_window_stats_malformed_rows(data_dir, tmp_path):
    lines = raw_lines(data_dir / WINSTATS)[:11]
    set_field(lines, 2, 0, "HARP", sep="\t")  # line 3
    set_field(lines, 5, 2, "not-a-time", sep="\t")  # line 6
    p = write_lines(tmp_path, "ws.csv", lines)
    res = load_file(p)
    assert res.fmt == "swan_sf_window_stats" and res.frame.height == 8
    assert res.drops.counts == {"malformed id": 1, "malformed START_TIME": 1}
    with pytest.raises(ParseError, match=r"ws.csv, line 3: malformed id"):
        read_swan_sf_window_stats(p, strict=True)


def test_detect_and_read_file(data_dir):
    assert detect_format(data_dir / FLAREML) == "flareml"
    assert detect_format(data_dir / WINSTATS) == "swan_sf_window_stats"
    kind, df = read_file(data_dir / FLAREML)
    assert kind == "sharp" and df["harpnum"].null_count() == df.height
    if HOLLANDA.exists():
        assert detect_format(HOLLANDA) == "hollanda"
