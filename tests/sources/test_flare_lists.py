"""One flare, one row: canonical classes, duplicates, midnight crossings, odd bytes and
leap seconds, on slices of the real NCEI GOES list."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from flare_core.errors import ParseError
from flare_core.sources import load_file
from tests.support import NCEI_FLARES, raw_lines, set_field, write_lines


@pytest.fixture(scope="module")
def ncei_lines(data_dir) -> list[str]:
    return raw_lines(data_dir / NCEI_FLARES)


def _rows_of(lines: list[str], index: int) -> str:
    """The raw line whose leading index field is ``index``."""
    return next(line for line in lines[1:] if line.split(",")[0] == str(index))


def test_x5_of_2023_12_31_is_one_row(data_dir):
    df = load_file(data_dir / NCEI_FLARES).frame
    x5 = df.filter((pl.col("goes_class") == "X5.0")
                   & (pl.col("peak_time").dt.date() == datetime(2023, 12, 31).date()))
    assert x5.height == 1
    assert x5["peak_time"][0] == datetime(2023, 12, 31, 21, 55, tzinfo=UTC)


def test_class_spellings_are_one_flare(ncei_lines, tmp_path):
    lines = ncei_lines[:11]
    assert lines[1].split(",")[4] == "B1.9"
    for spelling in ("b1.90", "B1.90", "B 1.9"):  # the same flare, spelled three more ways
        dup = lines[1].split(",")
        dup[4] = spelling
        lines.append(",".join(dup))
    res = load_file(write_lines(tmp_path, "ncei.csv", lines), "ncei_goes")
    assert res.frame.height == 10
    assert res.drops.counts["duplicate flare (peak_time, goes_class, noaa_ar)"] == 3
    assert set(res.frame["goes_class"]) == {c.strip() for c in res.frame["goes_class"]}


def test_midnight_crossing_repaired_contradiction_not(ncei_lines, tmp_path):
    crossing = _rows_of(ncei_lines, 23825)  # 2023/12/30 23:56 start, peak "00:06"
    contradiction = _rows_of(ncei_lines, 14899)  # peak 10:36, end 10:27 the same day
    bad_peak = contradiction.split(",")
    bad_peak[0], bad_peak[2] = "99999", "2020-05-28 09:00:00"  # peak 73 min before start
    lines = [ncei_lines[0], crossing, contradiction, ",".join(bad_peak)]
    res = load_file(write_lines(tmp_path, "ncei.csv", lines), "ncei_goes")
    df = res.frame.sort("peak_time")
    assert df.height == 2  # the row with a peak before its start is dropped
    assert res.drops.counts == {"peak_time before start_time (not a midnight crossing)": 1}
    assert df["end_time"][0] is None  # the contradictory end, not an invented 24-h flare
    assert res.drops.notes["end_time before peak_time (not a midnight crossing) -> null"] == 1
    assert df["peak_time"][1] == datetime(2023, 12, 31, 0, 6, tzinfo=UTC)  # moved +1 day
    assert res.drops.notes["peak/end past midnight moved +1 day"] == 2  # its peak and end


def test_leap_second_peak_stays_on_its_day(ncei_lines, tmp_path):
    lines = ncei_lines[:6]
    set_field(lines, 3, 1, "2016-12-31 23:58:00")
    set_field(lines, 3, 2, "2016-12-31 23:59:60")
    set_field(lines, 3, 3, "2017-01-01 00:10:00")
    df = load_file(write_lines(tmp_path, "ncei.csv", lines), "ncei_goes").frame
    leap = df.filter(pl.col("start_time") == datetime(2016, 12, 31, 23, 58, tzinfo=UTC))
    assert leap["peak_time"][0] == datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def test_non_utf8_byte_names_its_line(ncei_lines, tmp_path):
    body = ("\n".join(ncei_lines[:11]) + "\n").encode().split(b"\n")
    body[4] = body[4].replace(b"G14", b"G\xe914")  # line 5
    p = tmp_path / "ncei.csv"
    p.write_bytes(b"\n".join(body))
    res = load_file(p, "ncei_goes")
    assert res.frame.height == 9
    assert res.drops.counts == {"non-UTF-8 bytes": 1}
    assert "ncei.csv:5" in res.drops.examples["non-UTF-8 bytes"]
    with pytest.raises(ParseError, match=r"ncei.csv, line 5: non-UTF-8 bytes"):
        load_file(p, "ncei_goes", strict=True)
