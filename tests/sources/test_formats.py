"""The format registry (`flare_core.sources.formats`): signatures, detection, declarations
and the parse context, on the bundled real files and small copies of them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flare_core.errors import FormatError, ParseError
from flare_core.schema import FLARE_SCHEMA, SERIES_DEFINITIVE_CEA
from flare_core.sources import FORMATS, NOAA_KEYED_FORMATS, detect_format, load_file
from flare_core.sources.files import JSOC_FORMATS
from flare_core.sources.formats import get_format
from flare_core.sources.formats.base import Drops, Format, Header, ParseContext, columns
from tests.support import raw_lines, write_lines

#: One real bundled file (or directory) per format, relative to ``data/``.
REAL = {
    "sun2022": "sharp/sun2022_sharp_m24h_fold0.csv.gz",
    "swan_sf_mvts": "swan_sf/mvts",
    "ncei_goes": "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz",
    "swpc": "flares/swpc_flarelist_20100101-20210810.csv.gz",
    "hayes": "flares/hayes_final_flare_list_sc24_2010-2018.csv.gz",
    "ncei_solar_events": "flares/ncei_solar_events_1996-07_2022-10.csv.gz",
    "liu2019": "flares/liu2019",
    "flareml": "sharp/flareml_flaring_ar_snapshots.csv",
    "swan_sf_window_stats": "swan_sf/swan_sf_window_stats_2013-10_2014-04.csv.gz",
    "harp_map": "harp_noaa/all_harps_with_noaa_ars.txt",
    "jsoc_keywords_csv": "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz",
    "jsoc_rs_list_json": "jsoc/sharp_720s_nrt_13900_rs_list_2026-08-22.json",
    "jsoc_region_listing_json": "jsoc/mharp_720s_nrt_rs_list_2026-08-22.json",
    "jsoc_region_listing_csv": "sharp_nrt/jsoc_nrt_region_listing_2023-06_2023-12-17.csv.gz",
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_exactly_one_signature_claims_each_real_file(data_dir, name):
    header = Header.read(data_dir / REAL[name])
    assert [f.name for f in FORMATS.values() if f.signature(header)] == [name]
    assert detect_format(data_dir / REAL[name]) == name


def test_single_files_of_directory_formats(data_dir):
    assert detect_format(data_dir / "flares/liu2019/M-class.csv") == "liu2019"
    window = sorted((data_dir / "swan_sf/mvts").glob("*.csv"))[0]
    assert detect_format(window) == "swan_sf_mvts"


def test_headerless_hek_list_is_detected_by_its_first_line(tmp_path):
    line = ("2012-03-07;2012-03-07 00:02:00;2012-03-07 00:24:00;2012-03-07 00:40:00;X5.4;"
            "(-1, 17);11429;X;5.4;-1;17")
    p = write_lines(tmp_path, "hek.csv", [line])
    assert detect_format(p) == "hek_noheader"
    df = load_file(p).frame
    assert df.schema == pl.Schema(FLARE_SCHEMA) and df["goes_class"].to_list() == ["X5.4"]


def test_unknown_layout_names_file_and_formats_tried(data_dir):
    p = data_dir / "jsoc/hmi.sharp_cea_720s_keywords.csv"
    with pytest.raises(FormatError, match="unknown file layout") as e:
        detect_format(p)
    assert str(p) in str(e.value) and "header 'name,type" in str(e.value)
    assert all(name in str(e.value) for name in FORMATS)
    assert isinstance(e.value, ParseError)  # callers catching ParseError still do


def test_directory_without_a_known_layout(tmp_path):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match=r"directory holding 1 \*\.csv files"):
        detect_format(tmp_path)


def test_ambiguous_header_is_refused_not_guessed(data_dir, tmp_path):
    # a sun2022 fold whose header also carries the SWAN-SF Timestamp and QUALITY columns
    lines = raw_lines(data_dir / REAL["sun2022"])[:3]
    lines = [lines[0] + ",Timestamp,QUALITY"] + [x + ",2013-01-01 00:00:00,0" for x in lines[1:]]
    p = write_lines(tmp_path, "both.csv", lines)
    with pytest.raises(FormatError, match="ambiguous file layout") as e:
        detect_format(p)
    assert "'sun2022'" in str(e.value) and "'swan_sf_mvts'" in str(e.value)
    assert load_file(p, "sun2022").frame.height == 2  # naming the format reads it


def test_jsoc_error_reply_fails_detection_with_jsoc_message(data_dir):
    p = data_dir / "jsoc/error_replies/mharp_2022-09-07T20-06-14_5f16635f22.json"
    with pytest.raises(ParseError, match="status 6"):
        detect_format(p)


def test_declarations_drive_the_special_cases():
    assert NOAA_KEYED_FORMATS == {"hollanda", "flareml"}
    assert JSOC_FORMATS == {"jsoc_keywords_csv", "jsoc_rs_list_json",
                            "jsoc_region_listing_json", "jsoc_region_listing_csv"}
    research = {n for n, f in FORMATS.items() if f.series == SERIES_DEFINITIVE_CEA}
    assert research == {"sun2022", "swan_sf_mvts", "hollanda", "flareml"}
    assert {f.kind for f in FORMATS.values()} == {"sharp", "flares", "harp_map", "window_stats"}
    with pytest.raises(FormatError, match="unknown format 'nope'"):
        get_format("nope")


def test_harp_map_reaches_only_noaa_keyed_readers(data_dir):
    from flare_core.sources import read_harp_noaa_map

    hmap = read_harp_noaa_map(data_dir / REAL["harp_map"])
    with_map = load_file(data_dir / REAL["flareml"], harp_map=hmap)
    without = load_file(data_dir / REAL["flareml"])
    assert with_map.frame["harpnum"].null_count() < with_map.frame.height
    assert without.frame["harpnum"].null_count() == without.frame.height
    assert without.drops.notes["no HARP map: harpnum null"] == without.frame.height
    fold = data_dir / REAL["sun2022"]
    assert load_file(fold, harp_map=hmap).frame.equals(load_file(fold).frame)  # ignored


def test_parse_context_counts_or_raises_and_shares_counts(tmp_path):
    df = pl.DataFrame({"x": ["1", "a", "3"]}).with_row_index("_row")
    ctx = ParseContext(tmp_path / "f.csv")
    kept = ctx.drop_bad(df, pl.col("x") == "a", reason="bad x", raw_col="x")
    assert kept["x"].to_list() == ["1", "3"]
    assert ctx.drops.counts == {"bad x": 1} and ctx.drops.examples["bad x"].endswith(
        "f.csv:3 value 'a'")
    other = ctx.at(tmp_path / "g.csv")
    other.drop_bad(df, pl.col("x") == "1", reason="bad x", raw_col="x")
    assert ctx.drops.counts == {"bad x": 2}  # one Drops for every file of a set
    with pytest.raises(ParseError, match=r"f.csv, line 3: bad x: 'a'"):
        ParseContext(tmp_path / "f.csv", strict=True).drop_bad(
            df, pl.col("x") == "a", reason="bad x", raw_col="x")
    assert ParseContext(tmp_path / "h", line_offset=1).drop_bad(
        df, pl.col("x") == "a", reason="r").height == 2


def test_a_format_is_its_declarations(tmp_path):
    """A format written outside the registry works through the same contract."""

    def read(path: Path, ctx: ParseContext) -> pl.DataFrame:
        df = ctx.read_table()
        ctx.require(df, ["n"])
        n = pl.col("n").cast(pl.Int64, strict=False)
        return ctx.drop_bad(df, n.is_null(), reason="non-integer n", raw_col="n").select(n)

    fmt = Format(name="counts", kind="flares", signature=columns("n"), read=read)
    p = write_lines(tmp_path, "n.csv", ["n", "1", "x", "3"])
    assert fmt.signature(Header.read(p)) and not fmt.signature(Header.read(tmp_path))
    res = fmt.load(p)
    assert (res.fmt, res.kind, res.series) == ("counts", "flares", None)
    assert res.frame["n"].to_list() == [1, 3] and res.drops.counts == {"non-integer n": 1}
    assert isinstance(res.drops, Drops)
    with pytest.raises(ParseError, match="series= applies to JSOC exports"):
        fmt.load(p, series=SERIES_DEFINITIVE_CEA)
    with pytest.raises(ParseError, match=r"n.csv, line 3: non-integer n: 'x'"):
        fmt.load(p, strict=True)


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.parametrize("name, rel", [
    ("hollanda", "sharp_keywords/hollanda_sharp_daily_flare_2010-05_2019-12.csv.gz"),
    ("hek_noheader", "goes_flare_lists/hek_goes_sunpy_2010-05_2019-10_noheader.csv.gz"),
])
def test_exactly_one_signature_claims_each_shared_file(name, rel):
    if not (SHARED / rel).exists():
        pytest.skip("../shared/data absent")
    header = Header.read(SHARED / rel)
    assert [f.name for f in FORMATS.values() if f.signature(header)] == [name]
