from datetime import UTC, datetime

import pytest

from flare_core.errors import ParseError
from flare_core.timeutil import format_t_rec, parse_t_rec, to_utc


def test_parse_t_rec_tai_to_utc():
    # 2014: TAI - UTC = 35 s
    assert parse_t_rec("2014.02.04_03:00:00_TAI") == datetime(2014, 2, 4, 2, 59, 25, tzinfo=UTC)
    # 2010: 34 s; 2020: 37 s
    assert parse_t_rec("2010.06.01_00:00:00_TAI") == datetime(2010, 5, 31, 23, 59, 26, tzinfo=UTC)
    assert parse_t_rec("2020.01.01_00:12:00_TAI") == datetime(2020, 1, 1, 0, 11, 23, tzinfo=UTC)


def test_parse_t_rec_across_leap_second():
    # 2017-01-01 00:00:36 TAI is 2016-12-31 23:59:60 UTC-ish; 00:00:37 TAI is 00:00:00 UTC
    assert parse_t_rec("2017.01.01_00:00:37_TAI") == datetime(2017, 1, 1, tzinfo=UTC)
    assert parse_t_rec("2016.12.31_23:00:00_TAI") == datetime(2016, 12, 31, 22, 59, 24, tzinfo=UTC)


def test_format_round_trip():
    for s in ["2014.02.04_03:00:00_TAI", "2011.02.15_01:48:00_TAI", "2023.09.01_12:00:00_TAI"]:
        assert format_t_rec(parse_t_rec(s)) == s


@pytest.mark.parametrize("bad", ["2014-02-04T03:00:00", "2014.02.04", "2014.13.04_03:00:00_TAI", "", None, "2014.02.04_03:00:00_TAI junk"])
def test_parse_t_rec_rejects_malformed(bad):
    with pytest.raises(ParseError):
        parse_t_rec(bad)


def test_to_utc():
    assert to_utc("2014-02-04T03:00:00Z") == datetime(2014, 2, 4, 3, tzinfo=UTC)
    assert to_utc(datetime(2014, 2, 4, 3)).tzinfo is UTC
    with pytest.raises(ParseError):
        to_utc("yesterday")
