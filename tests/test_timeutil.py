from datetime import UTC, datetime, timedelta

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


def test_leap_table_comes_from_erfa_and_matches_the_vector_form():
    import erfa
    import polars as pl

    from flare_core.timeutil import TAI_MINUS_UTC_S, tai_to_utc, tai_to_utc_expr

    assert TAI_MINUS_UTC_S[-1] == (datetime(2017, 1, 1, tzinfo=UTC), 37)
    assert len(TAI_MINUS_UTC_S) == sum(1 for r in erfa.leap_seconds.get() if r["year"] >= 1972)
    # every 6 h from 1995 to 2025 (crosses eight leap seconds), plus the leap instants
    ts = [datetime(1995, 1, 1) + timedelta(hours=6 * i) for i in range(4 * 365 * 30)]
    ts += [t.replace(tzinfo=None) + timedelta(seconds=v + d)
           for t, v in TAI_MINUS_UTC_S if t.year >= 1995 for d in (-2, -1, 0, 1)]
    got = pl.DataFrame({"t": ts}).select(tai_to_utc_expr(pl.col("t")))["t"].to_list()
    assert got == [tai_to_utc(t) for t in ts]
    assert pl.DataFrame({"t": [datetime(1960, 1, 1)]}).select(
        tai_to_utc_expr(pl.col("t"))).item() is None  # before 1972: no offset


def test_utc_leap_second_keeps_its_day():
    end = datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert to_utc("2016-12-31T23:59:60Z") == end
    assert to_utc("2016-12-31 23:59:60") == end
    assert parse_t_rec("2016.12.31_23:59:60_UTC") == end
    with pytest.raises(ParseError):
        parse_t_rec("2016.12.31_23:59:60_TAI")  # TAI has no leap seconds
    with pytest.raises(ParseError):
        to_utc("2016-12-31T12:00:60Z")  # second 60 only at 23:59


def _astropy_utc(tai: datetime) -> datetime:
    """Independent reference: astropy's TAI -> UTC (its ERFA leap-second table, updated
    from the bundled IERS file, never from the network here)."""
    from astropy.time import Time
    from astropy.utils import iers

    with iers.conf.set_temp("auto_download", False):
        iso = Time(tai.isoformat(sep=" "), scale="tai").utc.iso  # '2016-12-31 23:59:60.000'
    day, clock = iso.split(" ")
    h, m, s = clock.split(":")
    if s.startswith("60"):  # the leap second itself: read as 23:59:59.999999 (LEAP_SECOND...)
        return datetime.fromisoformat(f"{day}T23:59:59.999999+00:00")
    return datetime.fromisoformat(f"{day}T{h}:{m}:{s}+00:00")


@pytest.mark.parametrize("tai", [
    datetime(1972, 6, 30, 12, 0, 0),   # first leap second era (10 s)
    datetime(1999, 1, 1, 0, 0, 31),    # 1 s before the 1999 leap ends: 32 s applies after
    datetime(1999, 1, 1, 0, 0, 32),
    datetime(2010, 6, 1, 0, 0, 0),     # 34 s
    datetime(2012, 7, 1, 0, 0, 34),    # the TAI second of the 2012-06-30 leap
    datetime(2012, 7, 1, 0, 0, 35),
    datetime(2015, 6, 30, 23, 59, 59),
    datetime(2015, 7, 1, 0, 0, 36),
    datetime(2016, 12, 31, 23, 59, 0),
    datetime(2017, 1, 1, 0, 0, 37),    # first UTC second of 2017 (37 s)
    datetime(2023, 9, 1, 12, 0, 0),
])
def test_tai_to_utc_agrees_with_astropy(tai):
    import polars as pl

    from flare_core.timeutil import tai_to_utc, tai_to_utc_expr

    ref = _astropy_utc(tai)
    got = tai_to_utc(tai)
    if ref.second == 59 and ref.microsecond == 999_999:  # astropy: inside the leap second
        # one UTC instant cannot hold 23:59:60: the TAI leap second maps onto 00:00:00 UTC
        assert got == ref + timedelta(microseconds=1)
    else:
        assert got == ref
    assert pl.DataFrame({"t": [tai]}).select(tai_to_utc_expr(pl.col("t"))).item() == got


def test_leap_table_agrees_with_astropy():
    """Each offset of TAI_MINUS_UTC_S is what astropy's Time gives at its first UTC instant,
    and one second before it the previous offset applies (1972 on)."""
    from astropy.time import Time
    from astropy.utils import iers

    from flare_core.timeutil import TAI_MINUS_UTC_S, format_t_rec

    def offsets(utc: list[datetime]) -> list[int]:  # TAI clock reading - UTC clock reading
        with iers.conf.set_temp("auto_download", False):
            tai = Time([t.replace(tzinfo=None).isoformat() for t in utc], scale="utc").tai
        return [round((datetime.fromisoformat(x) - t.replace(tzinfo=None)).total_seconds())
                for x, t in zip(tai.isot, utc, strict=True)]

    off = offsets([t for t, _ in TAI_MINUS_UTC_S])
    off_before = offsets([t - timedelta(seconds=1) for t, _ in TAI_MINUS_UTC_S[1:]])
    assert off == [v for _, v in TAI_MINUS_UTC_S]
    assert off_before == [v for _, v in TAI_MINUS_UTC_S[:-1]]
    for t, v in TAI_MINUS_UTC_S:
        assert format_t_rec(t) == (t.replace(tzinfo=None) + timedelta(seconds=v)).strftime(
            "%Y.%m.%d_%H:%M:%S_TAI")
