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
    assert "sun2022 [hmi.sharp_cea_720s] -> 12330 sharp rows" in res.output
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


def test_ingest_prints_drop_summary_and_revisions(store_root, tmp_path, data_dir):
    """A NaN keyword nulled is reported (never "dropped: none"), and so are revisions."""
    import gzip

    src = data_dir / "sharp_nrt" / "hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
    with gzip.open(src, "rt") as fin:
        lines = [next(fin) for _ in range(201)]
    header = lines[0].rstrip("\n").split(",")
    col = header.index("USFLUX")
    first = tmp_path / "a" / src.name
    first.parent.mkdir()
    first.write_text("".join(lines))
    res = runner.invoke(app, ["ingest", "file", str(first), "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    assert "[hmi.sharp_720s_nrt]" in res.output and "revised" in res.output
    row = lines[5].rstrip("\n").split(",")
    row[col] = "NaN"
    bumped = lines[6].rstrip("\n").split(",")
    bumped[col] = str(float(bumped[col]) * 1.01)
    changed = [*lines[:5], ",".join(row) + "\n", ",".join(bumped) + "\n", *lines[7:]]
    second = tmp_path / "b" / src.name
    second.parent.mkdir()
    second.write_text("".join(changed))
    res = runner.invoke(app, ["ingest", "file", str(second), "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    assert "dropped or nulled: none" not in res.output
    assert "(value nulled)" in res.output
    assert " 0 revised" not in res.output  # the changed records were revised, and said so


def test_ingest_series_option(store_root, data_dir, tmp_path):
    """--series names the series of an export whose file name does not tell it."""
    import gzip

    src = data_dir / "sharp_nrt" / "hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
    with gzip.open(src, "rt") as fin:
        lines = [next(fin) for _ in range(51)]
    anon = tmp_path / "export.csv"
    anon.write_text("".join(lines))
    res = runner.invoke(app, ["ingest", "file", str(anon), "--store", str(store_root)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    res = runner.invoke(app, ["ingest", "file", str(anon), "--series", "hmi.sharp_720s_nrt",
                              "--store", str(store_root)])
    assert res.exit_code == 0, res.output
    assert Store(store_root).series() == ["hmi.sharp_720s_nrt"]


def test_ingest_harp_map_option(store_root, data_dir):
    flareml = str(data_dir / "sharp/flareml_flaring_ar_snapshots.csv")
    harp_map = str(data_dir / "harp_noaa/all_harps_with_noaa_ars.txt")
    res = runner.invoke(app, ["ingest", "file", flareml, "--harp-map", harp_map, "--store",
                              str(store_root)])
    assert res.exit_code == 0, res.output
    assert Store(store_root).read_sharp()["harpnum"].null_count() == 0


def test_ingest_empty_or_header_only_file_is_one_line(store_root, tmp_path, data_dir):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    res = runner.invoke(app, ["ingest", "file", str(empty), "--store", str(store_root)])
    assert res.exit_code == 2 and res.stderr == f"error: {empty}: empty file (0 bytes): no " \
                                                "records to read\n"
    import gzip

    header_only = tmp_path / "fold.csv.gz"
    with gzip.open(data_dir / "sharp/sun2022_sharp_m24h_fold2.csv.gz", "rt") as fin:
        head = next(fin)
    with gzip.open(header_only, "wt") as fout:
        fout.write(head)
    res = runner.invoke(app, ["ingest", "file", str(header_only), "--store", str(store_root)])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {header_only}: header only")
    assert res.stderr.count("\n") == 1
