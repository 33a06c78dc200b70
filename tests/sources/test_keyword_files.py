"""JSOC keyword files (exports, saved rs_list replies, region listings), on real data.

Small slices of the real NRT stream are written to tmp_path; the 1.08 M-row shared file is
only detected here (its full read is timed by benchmarks/bench_nrt_ingest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import ParseError
from flare_core.schema import (
    SERIES_DEFINITIVE_CEA,
    SERIES_NRT,
    SERIES_NRT_CEA,
    SHARP_SCHEMA,
)
from flare_core.sources import detect_format, load_file, read_file
from flare_core.timeutil import parse_t_rec
from tests.support import raw_lines, set_field, write_lines

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NRT_SHARED = SHARED / "sharp_nrt/hmi_sharp_720s_nrt_2021-05_2023-12.csv.gz"
NRT = "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
LISTING = "sharp_nrt/jsoc_nrt_region_listing_2023-06_2023-12-17.csv.gz"
FIRST_SEEN = "sharp_nrt/jsoc_nrt_sharp_first_seen_sample_2021-2023.csv.gz"
REPLY = "jsoc/sharp_720s_nrt_13900_rs_list_2026-08-22.json"
MHARP = "jsoc/mharp_720s_nrt_rs_list_2026-08-22.json"


@pytest.fixture
def nrt_head(data_dir) -> list[str]:
    """Header + the first 200 records of the bundled real NRT stream."""
    return raw_lines(data_dir / NRT)[:201]


def test_shared_nrt_stream_is_detected():
    if not NRT_SHARED.exists():
        pytest.skip("../shared/data absent")
    assert detect_format(NRT_SHARED) == "jsoc_keywords_csv"


def test_nrt_keywords_csv_head(data_dir, nrt_head, tmp_path):
    p = write_lines(tmp_path, "hmi_sharp_720s_nrt_head.csv", nrt_head)
    res = load_file(p)
    df = res.frame
    assert (res.fmt, res.kind, res.series) == ("jsoc_keywords_csv", "sharp", SERIES_NRT)
    assert df.schema == pl.Schema(SHARP_SCHEMA)
    assert df.height == 200 and res.drops.total == 0
    assert (df["series"] == SERIES_NRT).all() and (df["source"] == "jsoc_nrt").all()
    assert df["available_at"].null_count() == df.height  # unknown when served
    first = nrt_head[1].split(",")
    row = df.filter(pl.col("harpnum") == int(first[1])).row(0, named=True)
    assert row["t_rec"] == parse_t_rec(first[0])  # TAI -> UTC, 37 s in 2023
    assert row["usflux"] == pytest.approx(float(first[2]))
    assert row["savncpp"] == pytest.approx(float(first[7]))
    assert df["meangbz"].null_count() == df.height  # not in the export: null, never 0


def test_series_from_argument_or_refused(nrt_head, tmp_path):
    p = write_lines(tmp_path, "export.csv", nrt_head)
    assert detect_format(p) == "jsoc_keywords_csv"
    with pytest.raises(ParseError, match="series"):
        load_file(p)
    res = load_file(p, series=SERIES_NRT_CEA)
    assert res.series == SERIES_NRT_CEA and (res.frame["series"] == SERIES_NRT_CEA).all()
    kind, df = read_file(p, series=SERIES_NRT)
    assert kind == "sharp" and (df["series"] == SERIES_NRT).all()
    with pytest.raises(ParseError, match="unknown series"):
        load_file(p, series="hmi.nonsense")


def test_research_formats_are_definitive_cea(data_dir):
    res = load_file(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz")
    assert res.series == SERIES_DEFINITIVE_CEA
    assert (res.frame["series"] == SERIES_DEFINITIVE_CEA).all()
    assert (load_file(data_dir / "swan_sf/mvts").frame["series"] == SERIES_DEFINITIVE_CEA).all()
    with pytest.raises(ParseError, match="series= applies to JSOC exports"):
        load_file(data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz", series=SERIES_NRT)


def test_keywords_csv_bad_values_named(nrt_head, tmp_path):
    lines = list(nrt_head)
    set_field(lines, 3, 2, "lots")  # non-numeric USFLUX, line 4
    set_field(lines, 6, 0, "2023.06.01_24:99:00_TAI")  # malformed T_REC, line 7
    set_field(lines, 8, 3, "1e400")  # overflows to inf, line 9
    p = write_lines(tmp_path, "hmi_sharp_720s_nrt_bad.csv", lines)
    res = load_file(p)
    assert res.frame.height == 200 - 3
    assert res.drops.counts == {"non-numeric USFLUX": 1, "unparseable T_REC": 1,
                                "non-finite TOTUSJH": 1}
    assert "hmi_sharp_720s_nrt_bad.csv:4" in res.drops.examples["non-numeric USFLUX"]
    assert "hmi_sharp_720s_nrt_bad.csv:9" in res.drops.examples["non-finite TOTUSJH"]
    with pytest.raises(ParseError, match=r"bad.csv, line 7: unparseable T_REC: '2023.06.01_24"):
        load_file(p, strict=True)


def test_tai_leap_second_t_rec_is_malformed(nrt_head, tmp_path):
    lines = list(nrt_head)
    set_field(lines, 2, 0, "2016.12.31_23:59:60_TAI")  # TAI has no leap seconds
    res = load_file(write_lines(tmp_path, "hmi_sharp_720s_nrt_leap.csv", lines))
    assert res.drops.counts == {"unparseable T_REC": 1}


def test_keywords_csv_non_utf8_line_dropped_and_named(nrt_head, tmp_path):
    body = ("\n".join(nrt_head) + "\n").encode()
    lines = body.split(b"\n")
    lines[4] = lines[4].replace(b"_TAI", b"_TA\xff")  # a stray byte in line 5
    lines[10] = lines[10].replace(b"e+", b"\xfee+", 1)  # and inside a number, line 11
    p = tmp_path / "hmi_sharp_720s_nrt_bytes.csv"
    p.write_bytes(b"\n".join(lines))
    res = load_file(p)
    assert res.frame.height == 198
    assert sum(n for r, n in res.drops.counts.items() if "non-UTF-8" in r) == 2
    assert any(":5" in ex for r, ex in res.drops.examples.items() if "non-UTF-8" in r)
    with pytest.raises(ParseError, match=r"line 5: non-UTF-8"):
        load_file(p, strict=True)


def test_noaa_ars_missing_is_null_not_a_drop(nrt_head, tmp_path):
    lines = [nrt_head[0] + ",NOAA_ARS,QUALITY"]
    for i, line in enumerate(nrt_head[1:11]):
        lines.append(line + (',"13311,13313",0x00000000' if i % 2 else ",MISSING,0x00000400"))
    res = load_file(write_lines(tmp_path, "hmi_sharp_720s_nrt_noaa.csv", lines))
    df = res.frame
    assert df.height == 10 and res.drops.total == 0
    assert df["noaa_ars"].null_count() == 5
    assert set(df["noaa_ars"].drop_nulls()) == {"13311,13313"}
    assert res.drops.notes["NOAA_ARS MISSING (no NOAA region) -> null"] == 5
    assert sorted(df["quality"].unique()) == [0, 1024]


def test_first_seen_sample_sets_available_at(data_dir):
    res = load_file(data_dir / FIRST_SEEN)
    df = res.frame
    raw = pl.read_csv(data_dir / FIRST_SEEN, infer_schema=False)
    assert (res.fmt, res.kind, res.series) == ("jsoc_keywords_csv", "sharp", SERIES_NRT)
    assert df.height + res.drops.total == raw.height
    assert df["available_at"].null_count() == 0
    lat = (df["available_at"] - df["t_rec"]).dt.total_minutes()
    assert lat.min() > 0 and 60 < lat.median() < 150  # README: a median ~98 min after T_REC


def test_rs_list_reply_real(data_dir):
    p = data_dir / REPLY
    res = load_file(p)
    reply = json.loads(p.read_text())
    vals = {k["name"]: k["values"] for k in reply["keywords"]}
    assert (res.fmt, res.kind, res.series) == ("jsoc_rs_list_json", "sharp", SERIES_NRT)
    assert res.frame.height == reply["count"] == 355
    assert res.frame["t_rec"][0] == parse_t_rec(vals["T_REC"][0])
    assert res.frame["totpot"][0] == pytest.approx(float(vals["TOTPOT"][0]))
    assert (res.frame["harpnum"] == 13900).all()


def test_rs_list_reply_absurd_value_dropped(data_dir, tmp_path):
    reply = json.loads((data_dir / REPLY).read_text())
    usflux = next(k for k in reply["keywords"] if k["name"] == "USFLUX")
    usflux["values"][7] = "1.0e+30"
    p = tmp_path / "sharp_720s_nrt_13900_bad.json"
    p.write_text(json.dumps(reply))
    res = load_file(p)
    assert res.frame.height == 354
    assert list(res.drops.counts) == ["implausible USFLUX (outside [0, 1e+25] Mx)"]
    with pytest.raises(ParseError, match=r"line 8: implausible USFLUX .*1e\+30"):
        load_file(p, strict=True)


def test_region_listing_json_is_a_harp_map_fragment(data_dir):
    res = load_file(data_dir / MHARP)
    assert (res.fmt, res.kind, res.series) == ("jsoc_region_listing_json", "harp_map",
                                               SERIES_NRT)
    pairs = set(zip(res.frame["harpnum"], res.frame["noaa_ar"], strict=True))
    assert pairs == {(13864, 14511), (13900, 14514), (13901, 14513)}
    assert res.drops.notes["NOAA_ARS MISSING (no NOAA region)"] == 12
    with pytest.raises(ParseError, match="region listing"):
        load_file(data_dir / MHARP, "jsoc_rs_list_json")


def test_region_listing_csv_head(data_dir, tmp_path):
    lines = raw_lines(data_dir / LISTING)[:400]
    p = write_lines(tmp_path, "jsoc_nrt_region_listing_head.csv", lines)
    res = load_file(p)
    assert (res.fmt, res.kind, res.series) == ("jsoc_region_listing_csv", "harp_map",
                                               SERIES_NRT)
    assert (8404, 13315) in set(zip(res.frame["harpnum"], res.frame["noaa_ar"], strict=True))
    assert res.frame.select(pl.struct("harpnum", "noaa_ar").is_duplicated().any()).item() is False


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[2]
                                                         / "data/jsoc/error_replies").iterdir()))
def test_error_replies_are_named_parse_errors(data_dir, name):
    p = data_dir / "jsoc/error_replies" / name
    with pytest.raises(ParseError, match=name.replace(".", r"\.")) as e:
        load_file(p)
    assert any(w in str(e.value) for w in ("empty", "truncated", "status"))
