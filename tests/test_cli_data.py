"""``flareflow ingest file`` / ``store info`` on the bundled real files."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from flare_core.store import Store
from flareflow.cli import app

runner = CliRunner()


def test_ingest_files_and_info(store_root, data_dir):
    args = ["ingest", "file", str(data_dir / "sharp/sun2022_sharp_m24h_fold2.csv.gz"),
            str(data_dir / "flares/ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"),
            str(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt"), "--store", str(store_root)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "sun2022 -> 12330 sharp rows" in res.output
    assert "1 unknown GOES class" in res.output  # counted drop is reported
    st = Store(store_root)
    assert st.read_sharp().height == 12330
    assert st.read_flares()["harpnum"].drop_nulls().len() > 0
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "+0 new" in again.output
    info = runner.invoke(app, ["store", "info", "--store", str(store_root), "--json"])
    assert info.exit_code == 0
    d = json.loads(info.output)
    assert d["generation"] == 3 and d["tables"]["sharp"]["rows"] == 12330
    table = runner.invoke(app, ["store", "info", "--store", str(store_root)])
    assert table.exit_code == 0 and "sharp" in table.output


def test_ingest_env_store(monkeypatch, store_root, data_dir):
    monkeypatch.setenv("FLAREFLOW_STORE", str(store_root))
    res = runner.invoke(app, ["ingest", "file", str(data_dir / "flares/liu2019")])
    assert res.exit_code == 0, res.output
    assert Store(store_root).read_flares()["source"].unique().to_list() == ["liu2019"]


def test_ingest_bad_file_exits_2(store_root, tmp_path, data_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("what,is,this\n1,2,3\n")
    res = runner.invoke(app, ["ingest", "file", str(bad), "--store", str(store_root)])
    assert res.exit_code == 2
    assert "bad.csv" in res.output and "unknown file layout" in res.output
    lines = (data_dir / "flares/liu2019/M-class.csv").read_text().splitlines()[:5]
    lines[2] = "Q1.0" + lines[2][4:]
    p = tmp_path / "M-class.csv"
    p.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["ingest", "file", str(p), "--strict", "--store", str(store_root)])
    assert res.exit_code == 2 and "M-class.csv, line 3" in res.output
    res = runner.invoke(app, ["ingest", "file", str(p), "--store", str(store_root)])
    assert res.exit_code == 0 and "1 unknown GOES class" in res.output
    assert pl.DataFrame(Store(store_root).read_flares()).height == 3


def test_noaa_keyed_files_take_harpnum_from_the_map(store_root, data_dir):
    """FlareML snapshots carry NOAA numbers only: the map given alongside (or already in the
    store) fills harpnum, whatever the order of the arguments."""
    flareml = str(data_dir / "sharp/flareml_flaring_ar_snapshots.csv")
    harp_map = str(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")
    res = runner.invoke(app, ["ingest", "file", flareml, harp_map, "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    sharp = Store(store_root).read_sharp()
    assert sharp.height == 845 and sharp["harpnum"].null_count() == 0
    # a second store: map first, then the snapshots in a later call (map read from the store)
    other = store_root.parent / "other"
    assert runner.invoke(app, ["ingest", "file", harp_map, "--store", str(other)]).exit_code == 0
    res = runner.invoke(app, ["ingest", "file", flareml, "--store", str(other)])
    assert res.exit_code == 0, res.output
    assert Store(other).read_sharp().equals(sharp)


def test_window_stats_are_refused_with_a_reason(store_root, data_dir):
    path = data_dir / "swan_sf/swan_sf_window_stats_2013-10_2014-04.csv.gz"
    res = runner.invoke(app, ["ingest", "file", str(path), "--store", str(store_root)])
    assert res.exit_code == 2
    assert "window_stats" in res.output and "does not keep" in res.output
    assert Store(store_root).read_sharp().height == 0
