"""The JSOC HARP <-> NOAA map and attaching HARP numbers to flares (real files)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from flare_core.errors import ParseError
from flare_core.schema import conform_flares
from flare_core.sources import attach_harpnum, read_harp_noaa_map, read_ncei_goes_flares

MAP = "harp_noaa/all_harps_with_noaa_ars.txt"


def test_read_map_real(data_dir):
    m = read_harp_noaa_map(data_dir / MAP)
    lines = (data_dir / MAP).read_text().splitlines()[1:]
    n_pairs = sum(len(line.split()[1].split(",")) for line in lines)
    assert m.schema == pl.Schema({"harpnum": pl.Int64, "noaa_ar": pl.Int64, "series": pl.Utf8})
    assert m["series"].unique().to_list() == ["hmi.sharp_cea_720s"]  # not "nrt" in the name
    assert m.height == n_pairs
    assert m["harpnum"].n_unique() == len(lines)
    assert m.filter(pl.col("harpnum") == 1)["noaa_ar"].to_list() == [11067]
    assert m["noaa_ar"].min() >= 11063


def test_map_crlf_and_malformed(tmp_path):
    p = tmp_path / "m.txt"
    p.write_bytes(b"HARPNUM NOAA_ARS\r\n1 11067\r\n5 11070,11071")
    assert read_harp_noaa_map(p).height == 3
    p.write_text("HARPNUM NOAA_ARS\n1 11067\n2 abc\n")
    with pytest.raises(ParseError, match=r"m.txt, line 3"):
        read_harp_noaa_map(p)
    p.write_text("harp noaa\n1 2\n")
    with pytest.raises(ParseError, match="header"):
        read_harp_noaa_map(p)


def test_attach_harpnum_real(data_dir):
    m = read_harp_noaa_map(data_dir / MAP)
    flares = read_ncei_goes_flares(data_dir / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz")
    out = attach_harpnum(flares, m)
    assert out.height == flares.height
    assert out.drop("harpnum").equals(flares.drop("harpnum"))
    assert out.filter(pl.col("noaa_ar").is_null())["harpnum"].null_count() == \
        flares["noaa_ar"].null_count()
    mapped = out.filter(pl.col("harpnum").is_not_null())
    # every attached pair exists in the map
    assert mapped.join(m, on=["harpnum", "noaa_ar"], how="anti").height == 0
    assert mapped.height > 0.8 * flares["noaa_ar"].drop_nulls().len()


def test_attach_harpnum_ambiguous_uses_records():
    m = pl.DataFrame({"harpnum": [10, 20], "noaa_ar": [12000, 12000]})
    t = datetime(2015, 1, 5, tzinfo=UTC)
    flares = conform_flares(pl.DataFrame({
        "start_time": [t], "peak_time": [t], "goes_class": ["M1.0"], "peak_flux_wm2": [1e-5],
        "noaa_ar": [12000], "source": ["test"],
    }))
    assert attach_harpnum(flares, m)["harpnum"][0] == 10
    records = pl.DataFrame({
        "harpnum": [10, 10, 20, 20],
        "t_rec": [datetime(2014, 12, 1, tzinfo=UTC), datetime(2014, 12, 10, tzinfo=UTC),
                  datetime(2015, 1, 1, tzinfo=UTC), datetime(2015, 1, 9, tzinfo=UTC)],
    })
    assert attach_harpnum(flares, m, records=records)["harpnum"][0] == 20
