"""Impossible times (issue 12): a record time after the time of reading (+1 h) or before
SDO/HMI, and a flare peaking in the future, are counted drops; ``--strict`` names the record.

Each test edits one line of a bundled real file (NRT SHARP CSV, JSOC JSON reply, NCEI GOES
flare list); the clock is the real one.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from flare_core.errors import ParseError
from flare_core.sources import load_file
from flare_core.sources.plausibility import FUTURE_TOLERANCE, HMI_FIRST_DATA
from flareflow.cli import app
from tests.support import NCEI_FLARES, raw_lines, set_field, write_lines

NRT = "sharp_nrt/hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
JSOC_REPLY = "jsoc/sharp_720s_nrt_13900_rs_list_2026-08-22.json"
FUTURE = "T_REC after the time of reading (+1 h)"
BEFORE_HMI = "T_REC before SDO/HMI (2010-04-30)"


def _tai(t: datetime) -> str:
    """A JSOC T_REC string for the UTC instant ``t`` (TAI = UTC + 37 s since 2017)."""
    return (t + timedelta(seconds=37)).strftime("%Y.%m.%d_%H:%M:%S_TAI")


def _nrt(data_dir, tmp_path, edits: dict[int, str], name="hmi_sharp_720s_nrt_t.csv"):
    lines = raw_lines(data_dir / NRT)[:21]
    for row, t_rec in edits.items():
        set_field(lines, row, 0, t_rec)
    return write_lines(tmp_path, name, lines)


def test_year_2099_and_pre_hmi_records_are_counted_drops(data_dir, tmp_path):
    p = _nrt(data_dir, tmp_path, {3: "2099.01.01_00:00:00_TAI", 5: "2009.06.01_00:00:00_TAI"})
    res = load_file(p)
    assert res.frame.height == 18
    assert res.drops.counts == {FUTURE: 1, BEFORE_HMI: 1}
    assert res.drops.examples[FUTURE].endswith(
        "hmi_sharp_720s_nrt_t.csv:4 value 'HARP 8382 at 2098-12-31T23:59:23'")
    assert ":6 value 'HARP 8382 at 2009-05-31T23:59:26'" in res.drops.examples[BEFORE_HMI]
    assert res.frame["t_rec"].min() >= HMI_FIRST_DATA
    assert "1 T_REC after the time of reading (+1 h) (record dropped)" in res.drops.summary()


def test_the_tolerance_is_one_hour_after_the_time_of_reading(data_dir, tmp_path):
    assert FUTURE_TOLERANCE == timedelta(hours=1)
    now = datetime.now(UTC).replace(microsecond=0)
    p = _nrt(data_dir, tmp_path, {2: _tai(now + timedelta(minutes=30)),
                                  4: _tai(now + timedelta(hours=2))})
    res = load_file(p)
    assert res.drops.counts == {FUTURE: 1}
    assert res.frame["t_rec"].max() == now + timedelta(minutes=30)


def test_strict_fails_naming_file_line_and_record(data_dir, tmp_path, store_root):
    from flare_core.sources import read_file

    p = _nrt(data_dir, tmp_path, {3: "2099.01.01_00:00:00_TAI"})
    with pytest.raises(ParseError, match=r"hmi_sharp_720s_nrt_t.csv, line 4: T_REC after the "
                       r"time of reading \(\+1 h\): 'HARP 8382 at 2098-12-31T23:59:23'"):
        read_file(p, strict=True)
    res = CliRunner().invoke(app, ["ingest", "file", str(p), "--strict",
                                   "--store", str(store_root)])
    assert res.exit_code == 2
    assert "line 4: T_REC after the time of reading" in res.output
    assert "HARP 8382 at 2098-12-31T23:59:23" in res.output
    res = CliRunner().invoke(app, ["ingest", "file", str(p), "--store", str(store_root)])
    assert res.exit_code == 0 and "1 T_REC after the time of reading" in res.output


def test_a_jsoc_reply_with_a_year_2099_record(data_dir, tmp_path):
    reply = json.loads((data_dir / JSOC_REPLY).read_text())
    t_rec = next(k for k in reply["keywords"] if k["name"] == "T_REC")["values"]
    n = len(t_rec)
    t_rec[7] = "2099.08.19_06:12:00_TAI"
    p = tmp_path / "sharp_720s_nrt_13900_rs_list_2099.json"
    p.write_text(json.dumps(reply))
    res = load_file(p)
    assert res.drops.counts == {FUTURE: 1}
    assert res.frame.height == load_file(data_dir / JSOC_REPLY).frame.height - 1 <= n - 1


def test_a_flare_peaking_in_the_future_is_a_counted_drop(data_dir, tmp_path):
    with gzip.open(data_dir / NCEI_FLARES, "rt") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(11)]
    # columns: index, start_time, peak_time, end_time, label (class), noaa_ar, obs, cls
    set_field(lines, 4, 1, "2099-01-01 12:00:00")
    set_field(lines, 4, 2, "2099-01-01 12:09:00")
    set_field(lines, 4, 3, "2099-01-01 12:18:00")
    p = write_lines(tmp_path, "ncei_goes_flares_2099.csv", lines)
    res = load_file(p)
    assert res.drops.counts == {"PEAK_TIME after the time of reading (+1 h)": 1}
    assert res.frame.height == 9
    assert res.frame["peak_time"].max() < datetime(2011, 1, 1, tzinfo=UTC)
