"""Plausible keyword ranges: absurd and non-finite records are dropped, counted and named."""

from __future__ import annotations

import glob

import pytest

from flare_core.errors import ParseError
from flare_core.schema import SHARP_KEYWORDS
from flare_core.sources import load_file, read_sun2022
from flare_core.sources.plausibility import KEYWORD_RANGES
from tests.support import raw_lines, set_field, write_lines

FOLD0 = "sharp/sun2022_sharp_m24h_fold0.csv.gz"
NRT = "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"


def test_every_keyword_has_a_finite_range():
    assert set(KEYWORD_RANGES) == set(SHARP_KEYWORDS)
    for lo, hi in KEYWORD_RANGES.values():
        assert float("-inf") < lo < hi < float("inf")


def test_issue12_absurd_record_is_dropped_not_ingested(data_dir, tmp_path):
    lines = raw_lines(data_dir / FOLD0)[:21]
    # columns: prefix, arpnum, t_start, t_end, label, flares, FLARE_INDEX, AREA, USFLUX, ..
    set_field(lines, 5, 8, "1e30")  # USFLUX (line 6)
    set_field(lines, 5, 7, "-5e6")  # AREA
    set_field(lines, 5, 10, "99")  # R_VALUE
    p = write_lines(tmp_path, "fold.csv", lines)
    res = load_file(p)
    assert res.frame.height == 19
    assert res.drops.total == 1
    (reason,) = res.drops.counts
    assert reason.startswith("implausible ")
    assert "fold.csv:6" in res.drops.examples[reason]
    assert res.drops.summary() != "none"
    with pytest.raises(ParseError, match=r"fold.csv, line 6: implausible \w+ .*"):
        read_sun2022(p, strict=True)


def test_non_finite_values_counted_per_keyword(data_dir, tmp_path):
    lines = raw_lines(data_dir / NRT)[:51]
    set_field(lines, 2, 2, "inf")
    set_field(lines, 3, 2, "-inf")
    set_field(lines, 4, 5, "1e400")
    res = load_file(write_lines(tmp_path, "hmi_sharp_720s_nrt_inf.csv", lines))
    assert res.frame.height == 47
    assert res.drops.counts == {"non-finite USFLUX": 2, "non-finite TOTPOT": 1}


def test_nan_is_nulled_and_shows_in_the_summary(data_dir, tmp_path):
    lines = raw_lines(data_dir / NRT)[:21]
    set_field(lines, 2, 4, "nan")
    res = load_file(write_lines(tmp_path, "hmi_sharp_720s_nrt_nan.csv", lines))
    assert res.frame.height == 20 and res.drops.total == 0
    assert res.frame["totusjz"].null_count() == 1
    assert res.drops.summary() == "1 NaN keyword value -> null (value nulled)"


def test_ranges_drop_no_real_record(data_dir):
    files = sorted(glob.glob(str(data_dir / "sharp/sun2022_*.csv.gz"))) + [
        str(data_dir / NRT), str(data_dir / "swan_sf/mvts")]
    for f in files:
        res = load_file(f)
        bad = {r: n for r, n in res.drops.counts.items()
               if r.startswith(("implausible", "non-finite"))}
        assert bad == {}, f
