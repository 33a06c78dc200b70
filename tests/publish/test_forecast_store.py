"""ForecastStore: round trip, idempotent upsert, two writer processes, crashes mid-publish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from forecast_factory import T0, make_forecasts

from flare_core.errors import DataQualityWarning, ParseError, StoreError
from flare_core.publish.forecast_store import FORECAST_KEY, FORECAST_SCHEMA, ForecastStore
from flare_core.publish.full_disk import full_disk_probabilities

REPO = Path(__file__).resolve().parents[2]


def _key_counts(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by(FORECAST_KEY).len()


def test_empty_store_reads_empty(tmp_path):
    store = ForecastStore(tmp_path / "f.duckdb")
    assert store.read().is_empty()
    assert store.read().schema["issue_time"] == FORECAST_SCHEMA["issue_time"]
    assert store.issue_times() == []
    assert store.latest_issue_time() is None
    assert not (tmp_path / "f.duckdb").exists()  # reading creates nothing


def test_round_trip_keeps_values_and_types(tmp_path, issue_times):
    fc = make_forecasts(issue_times)
    store = ForecastStore(tmp_path / "f.duckdb")
    assert store.upsert(fc) == fc.height
    back = store.read()
    assert back.drop("written_at").schema == pl.Schema(FORECAST_SCHEMA)
    assert back["written_at"].null_count() == 0
    expected = fc.sort(FORECAST_KEY)
    assert back.drop("written_at").equals(expected)
    assert store.issue_times() == issue_times
    assert store.latest_issue_time() == issue_times[-1]
    assert store.latest_issue_time().tzinfo is not None


def test_read_filters(tmp_path, issue_times):
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(make_forecasts(issue_times))
    store.upsert(make_forecasts(issue_times[:2], model="defn", version="2"))
    one = store.read(issue_time=issue_times[3])
    assert one["issue_time"].unique().to_list() == [issue_times[3]]
    window = store.read(start=issue_times[2], end=issue_times[5])  # [start, end)
    assert window["issue_time"].unique().sort().to_list() == issue_times[2:5]
    assert set(store.read(model="defn")["issue_time"]) == set(issue_times[:2])
    assert store.read(harpnums=[4698])["harpnum"].unique().to_list() == [4698]
    # naive and ISO inputs are taken as UTC
    iso = store.read(issue_time=issue_times[1].replace(tzinfo=None).isoformat())
    assert iso.height == 6  # 3 regions x (cox_ph, defn)
    assert store.latest_issue_time(model="defn") == issue_times[1]
    assert store.issue_times(model="defn") == issue_times[:2]


def test_upsert_twice_is_idempotent(tmp_path, issue_times):
    store = ForecastStore(tmp_path / "f.duckdb")
    fc = make_forecasts(issue_times)
    store.upsert(fc)
    first = store.read()
    store.upsert(fc)
    again = store.read()
    assert again.height == fc.height
    assert _key_counts(again)["len"].max() == 1
    assert again.drop("written_at").equals(first.drop("written_at"))


def test_rerun_replaces_issue_time_and_drops_vanished_regions(tmp_path, issue_times):
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(make_forecasts(issue_times, seed=0))
    store.upsert(make_forecasts(issue_times, model="defn", version="2", seed=3))
    # re-run one issue time: new values, and region 4685 has rotated off the disk
    rerun = make_forecasts(issue_times[4:5], harpnums=(4698, 4676), seed=9)
    store.upsert(rerun)
    got = store.read(issue_time=issue_times[4], model="cox_ph")
    assert got.drop("written_at").equals(rerun.sort(FORECAST_KEY))
    # the other model's rows and the other issue times are untouched
    assert store.read(issue_time=issue_times[4], model="defn").height == 3
    assert store.read(model="cox_ph").height == 3 * len(issue_times) - 1


def test_bad_frames_raise_naming_the_record(tmp_path, issue_times):
    store = ForecastStore(tmp_path / "f.duckdb")
    good = make_forecasts(issue_times[:1])
    with pytest.raises(ParseError, match="p_m24 outside"):
        store.upsert(good.with_columns(pl.lit(1.5).alias("p_m24")))
    with pytest.raises(ParseError, match="duplicated"):
        store.upsert(pl.concat([good, good]))
    with pytest.raises(ParseError, match="tz-aware"):
        store.upsert(good.with_columns(pl.col("issue_time").dt.replace_time_zone(None)))
    with pytest.raises(ParseError, match="required column"):
        store.upsert(good.drop("model_version"))
    rising = good.with_columns(pl.col("survival_curve").list.reverse())
    with pytest.raises(ParseError, match="harpnum=.*not increase"):
        store.upsert(rising)
    short = good.with_columns(pl.col("survival_grid_h").list.head(2))
    with pytest.raises(ParseError, match="same non-zero length"):
        store.upsert(short)
    empty = good.select("issue_time", "harpnum", "model", "model_version")
    with pytest.raises(ParseError, match="no forecast value"):
        store.upsert(empty)
    assert store.read().is_empty()  # nothing was written by any failed call


def test_non_nested_probabilities_warn(tmp_path, issue_times):
    fc = make_forecasts(issue_times[:1]).with_columns(pl.lit(0.9).alias("p_x24"))
    with pytest.warns(DataQualityWarning, match="non-nested"):
        ForecastStore(tmp_path / "f.duckdb").upsert(fc)


def test_minimal_frame_without_optional_columns(tmp_path):
    fc = pl.DataFrame({"issue_time": [T0], "harpnum": [1], "model": ["m"],
                       "model_version": ["0"], "p_m24": [0.1]},
                      schema_overrides={"issue_time": pl.Datetime("us", "UTC")})
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(fc)
    back = store.read()
    assert back["p_m24"].to_list() == [0.1]
    assert back["survival_curve"].to_list() == [None]


def test_crash_mid_transaction_keeps_the_old_issue_time(tmp_path, issue_times, monkeypatch):
    """An exception after the DELETE and before the INSERT rolls the issue time back."""
    store = ForecastStore(tmp_path / "f.duckdb")
    old = make_forecasts(issue_times[:3], seed=1)
    store.upsert(old)
    before = store.read()

    calls = {"n": 0}
    real_insert = ForecastStore._insert

    def insert_then_die(con, incoming):
        calls["n"] += 1
        if calls["n"] == 2:  # the second issue time dies mid-transaction
            raise KeyboardInterrupt("killed mid-publish")
        real_insert(con, incoming)

    monkeypatch.setattr(ForecastStore, "_insert", staticmethod(insert_then_die))
    new = make_forecasts(issue_times[:3], seed=2)
    with pytest.raises(KeyboardInterrupt):
        store.upsert(new)
    monkeypatch.undo()
    after = store.read()
    # issue time 0 committed (new), issue time 1 rolled back (old), issue time 2 never began
    by_it = {it: after.filter(pl.col("issue_time") == it).drop("written_at")
             for it in issue_times[:3]}
    assert by_it[issue_times[0]].equals(new.filter(pl.col("issue_time") == issue_times[0])
                                        .sort(FORECAST_KEY))
    for it in issue_times[1:3]:
        assert by_it[it].equals(before.filter(pl.col("issue_time") == it).drop("written_at"))
    # and the store is still writable: the lock was released
    store.upsert(new)
    assert store.read().drop("written_at").equals(new.sort(FORECAST_KEY))


_WRITER = textwrap.dedent("""
    import sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from forecast_factory import make_forecasts
    from flare_core.publish.forecast_store import ForecastStore

    path, go, batch = sys.argv[1], sys.argv[5], sys.argv[6] == "batch"
    seed, first, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    t0 = datetime(2014, 10, 22, tzinfo=UTC)
    store = ForecastStore(path, max_hold_s=0.02)
    fcs = [make_forecasts([t0 + timedelta(hours=i)], seed=seed * 1000 + i)
           .with_columns(warning_class=__import__("polars").lit(f"writer{{seed}}"))
           for i in range(first, first + n)]
    while go != "-" and not Path(go).exists():
        time.sleep(0.01)
    if batch:  # a backfill: one call, many issue times
        store.upsert(__import__("polars").concat(fcs))
    else:  # an hourly run: one issue time per call
        for i, fc in enumerate(fcs):
            store.upsert(fc)
            print(first + i, flush=True)
""")


def _writer(path: Path, seed: int, first: int, n: int, go: str,
            mode: str = "single") -> subprocess.Popen:
    code = _WRITER.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, str(path), str(seed), str(first),
                             str(n), go, mode], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_processes_with_overlapping_issue_times(tmp_path):
    """An 'hourly run' and a 'backfill' write overlapping issue times at the same time."""
    path, go = tmp_path / "f.duckdb", tmp_path / "go"
    backfill = _writer(path, seed=1, first=0, n=24, go=str(go), mode="batch")
    hourly = _writer(path, seed=2, first=16, n=16, go=str(go))
    go.touch()
    for p in (backfill, hourly):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    df = ForecastStore(path).read()
    assert _key_counts(df)["len"].max() == 1  # nothing duplicated
    assert df["issue_time"].n_unique() == 32  # nothing lost: issue times 0..31
    assert df.height == 32 * 3
    # every issue time is wholly one writer's (no half-replaced issue times)
    writers = df.group_by("issue_time").agg(pl.col("warning_class").n_unique().alias("n"))
    assert writers["n"].max() == 1
    only_backfill = df.filter(pl.col("issue_time") < T0 + timedelta(hours=16))
    assert set(only_backfill["warning_class"]) == {"writer1"}
    only_hourly = df.filter(pl.col("issue_time") >= T0 + timedelta(hours=24))
    assert set(only_hourly["warning_class"]) == {"writer2"}


def test_process_killed_mid_publish_leaves_store_consistent(tmp_path):
    path = tmp_path / "f.duckdb"
    ForecastStore(path).upsert(make_forecasts([T0 + timedelta(hours=i) for i in range(120)],
                                              seed=5))
    proc = _writer(path, seed=7, first=0, n=120, go="-")
    done = 0
    deadline = time.monotonic() + 60
    while done < 5 and time.monotonic() < deadline:  # let it commit a few issue times
        line = proc.stdout.readline()
        if not line:
            break
        done += 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert done >= 5, proc.stderr.read()
    store = ForecastStore(path, lock_timeout_s=10)
    df = store.read()
    assert df.height == 120 * 3  # no issue time lost a region or gained one
    assert _key_counts(df)["len"].max() == 1
    per_it = df.group_by("issue_time").agg(pl.col("written_at").n_unique(), pl.len())
    assert per_it["len"].unique().to_list() == [3]
    assert per_it["written_at"].max() == 1  # wholly old or wholly new, never mixed
    first_issue = df.filter(pl.col("issue_time") == T0)
    assert set(first_issue["warning_class"]) == {"writer7"}  # reported done => committed
    # the killed writer's lock is gone: a new write gets through
    store.upsert(make_forecasts([T0], seed=8))
    assert store.read(issue_time=T0).height == 3


def test_foreign_holder_is_retried_then_reported(tmp_path, issue_times):
    """A process that ignores our lock and keeps the file open makes writes fail cleanly."""
    path = tmp_path / "f.duckdb"
    ForecastStore(path).upsert(make_forecasts(issue_times[:1]))
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', "
            "flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="could not be opened after 2 attempts"):
            ForecastStore(path, open_retries=1).upsert(make_forecasts(issue_times[1:2]))
    finally:
        holder.kill()
        holder.wait()
    assert ForecastStore(path).read()["issue_time"].n_unique() == 1


def test_full_disk_probability_combines_regions(issue_times):
    fc = make_forecasts(issue_times[:2])
    fd = full_disk_probabilities(fc)
    assert fd.height == 2
    for row in fd.iter_rows(named=True):
        p = fc.filter(pl.col("issue_time") == row["issue_time"])["p_m24"].to_numpy()
        assert row["p_m24"] == pytest.approx(1 - float((1 - p).prod()))
        assert row["n_regions"] == 3
        assert row["p_m24"] >= p.max()
    with_null = fc.with_columns(pl.when(pl.col("harpnum") == 4698).then(None)
                                .otherwise(pl.col("p_x24")).alias("p_x24"))
    assert full_disk_probabilities(with_null)["p_x24"].null_count() == 2


def test_datetime_in_other_zone_is_converted(tmp_path):
    fc = make_forecasts([T0]).with_columns(
        pl.col("issue_time").dt.convert_time_zone("Europe/Paris"))
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(fc)
    assert store.issue_times() == [datetime(2014, 10, 22, tzinfo=UTC)]


def test_failed_regions_are_replaced_with_their_issue_time(tmp_path, issue_times):
    """Failed regions are stored with the forecasts of their issue time and replaced with
    them; an issue time where every region failed is still recorded."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    store = ForecastStore(tmp_path / "f.duckdb")
    assert store.read_failed().height == 0  # no file yet
    rows = make_forecasts(issue_times[:2])
    failed = pl.DataFrame({"issue_time": [issue_times[0], issue_times[2]],
                           "harpnum": [4711, 4711], "model_version": ["v1", "v1"],
                           "series": ["hmi.sharp_720s_nrt"] * 2,
                           "reason": ["input: usflux = 1e+308", "model: NaN"]},
                          schema=FAILED_SCHEMA)
    store.upsert(rows, failed=failed)
    got = store.read_failed()
    assert got.drop("written_at").equals(failed)
    assert store.read_failed(issue_time=issue_times[2])["reason"].to_list() == ["model: NaN"]
    # a clean re-run of issue time 0 clears its failure; issue time 2 keeps its own
    store.upsert(rows.filter(pl.col("issue_time") == issue_times[0]))
    assert store.read_failed()["issue_time"].to_list() == [issue_times[2]]
    with pytest.raises(ParseError, match="duplicated"):
        store.upsert(rows, failed=pl.concat([failed, failed]))


def test_schema_1_file_is_read_and_migrated(tmp_path, issue_times):
    """A forecast file written before the series/method columns and the failed table is
    read as it is (nulls) and migrated on the next write."""
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE forecasts (issue_time TIMESTAMP NOT NULL, harpnum BIGINT NOT
        NULL, noaa_ars VARCHAR, model VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
        t_rec TIMESTAMP, p_c24 DOUBLE, p_m24 DOUBLE, p_x24 DOUBLE, mean_lifetime_h DOUBLE,
        warning_class VARCHAR, survival_grid_h DOUBLE[], survival_curve DOUBLE[],
        written_at TIMESTAMP NOT NULL, PRIMARY KEY (issue_time, harpnum, model,
        model_version));
        CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        INSERT INTO store_meta VALUES ('schema_version', '1');
        INSERT INTO forecasts VALUES ('2014-10-22 00:00', 4698, '12192', 'cox_ph', 'v1',
        NULL, 0.5, 0.2, 0.01, 30.0, NULL, NULL, NULL, '2014-10-22 00:05');""")
    con.close()
    store = ForecastStore(path)
    old = store.read()
    assert old.height == 1 and old["series"].null_count() == 1
    assert store.read_failed().height == 0
    store.upsert(make_forecasts(issue_times[1:2]).with_columns(series=pl.lit("s")))
    both = store.read()
    assert both["series"].to_list() == [None, "s", "s", "s"]
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM store_meta").fetchone() == ("3",)
    con.close()


_TIME_COLUMNS = {"forecasts": ("issue_time", "t_rec", "written_at"),
                 "failed_regions": ("issue_time", "written_at")}


def _duckdb_types(path: Path) -> dict[tuple[str, str], str]:
    """(table, column) -> the type DuckDB itself reports, for the time columns."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT table_name, column_name, data_type "
                           "FROM information_schema.columns").fetchall()
    finally:
        con.close()
    return {(t, c): d for t, c, d in rows if c in _TIME_COLUMNS.get(t, ())}


def _failed(issue_time: datetime) -> pl.DataFrame:
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    return pl.DataFrame({"issue_time": [issue_time], "harpnum": [4711], "model_version": ["v1"],
                         "series": ["hmi.sharp_720s_nrt"], "reason": ["model: NaN"]},
                        schema=FAILED_SCHEMA)


def test_times_are_stored_timezone_aware_utc(tmp_path, issue_times):
    """issue_time, t_rec and written_at (and the failed regions' times) are TIMESTAMPTZ in
    the file, hold the input instants, and come back as Datetime("us", "UTC")."""
    import duckdb

    path = tmp_path / "f.duckdb"
    store = ForecastStore(path)
    fc = make_forecasts(issue_times[:2])
    before = datetime.now(UTC)
    store.upsert(fc, failed=_failed(issue_times[2]))
    assert set(_duckdb_types(path).values()) == {"TIMESTAMP WITH TIME ZONE"}
    assert len(_duckdb_types(path)) == 5
    back, bad = store.read(), store.read_failed()
    for frame, cols in ((back, _TIME_COLUMNS["forecasts"]),
                        (bad, _TIME_COLUMNS["failed_regions"])):
        for col in cols:
            assert frame.schema[col] == pl.Datetime("us", "UTC"), col
    assert back.drop("written_at").equals(fc.sort(FORECAST_KEY))
    assert bad["issue_time"].to_list() == [issue_times[2]]
    assert before <= back["written_at"].min() <= datetime.now(UTC)
    # the file holds instants, not wall-clock readings: a session in another zone sees the same
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'America/New_York'")
    raw = con.execute("SELECT min(issue_time), min(t_rec) FROM forecasts").fetchone()
    con.close()
    assert raw[0].utcoffset() == timedelta(hours=-4)  # EDT: the zone was really applied
    assert raw == (issue_times[0], issue_times[0] - timedelta(minutes=12))


_SCHEMA_2_SQL = """
CREATE TABLE forecasts (issue_time TIMESTAMP NOT NULL, harpnum BIGINT NOT NULL,
    noaa_ars VARCHAR, model VARCHAR NOT NULL, model_version VARCHAR NOT NULL, series VARCHAR,
    t_rec TIMESTAMP, p_c24 DOUBLE, p_m24 DOUBLE, p_x24 DOUBLE, mean_lifetime_h DOUBLE,
    warning_class VARCHAR, survival_grid_h DOUBLE[], survival_curve DOUBLE[], method VARCHAR,
    written_at TIMESTAMP NOT NULL, PRIMARY KEY (issue_time, harpnum, model, model_version));
CREATE TABLE failed_regions (issue_time TIMESTAMP NOT NULL, harpnum BIGINT NOT NULL,
    model_version VARCHAR NOT NULL, series VARCHAR, reason VARCHAR NOT NULL,
    written_at TIMESTAMP NOT NULL, PRIMARY KEY (issue_time, harpnum, model_version));
CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT INTO store_meta VALUES ('schema_version', '2');
INSERT INTO forecasts VALUES ('2014-10-22 03:00', 4698, '12192', 'cox_ph', 'v1', 's',
    '2014-10-22 02:48', 0.5, 0.2, 0.01, 30.0, NULL, [0.0, 24.0], [1.0, 0.8], NULL,
    '2014-10-22 03:05');
INSERT INTO failed_regions VALUES ('2014-10-22 04:00', 4711, 'v1', 's', 'model: NaN',
    '2014-10-22 04:05');
"""


def _schema_2_file(path: Path) -> None:
    """A store as flareflow wrote it before TIMESTAMPTZ: naive TIMESTAMP columns, UTC."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(_SCHEMA_2_SQL)
    con.close()


def test_naive_schema_2_file_reads_as_utc_and_is_migrated(tmp_path, issue_times):
    """A file with naive TIMESTAMP columns reads as the same UTC instants (filters too); the
    next write turns its time columns into TIMESTAMPTZ and keeps the old rows' instants."""
    import duckdb

    path = tmp_path / "old.duckdb"
    _schema_2_file(path)
    store = ForecastStore(path)
    t3, t4 = issue_times[3], issue_times[4]
    old = store.read()
    assert old.schema["issue_time"] == pl.Datetime("us", "UTC")
    assert old.select("issue_time", "t_rec", "written_at").row(0) == (
        t3, t3 - timedelta(minutes=12), t3 + timedelta(minutes=5))
    assert store.read(issue_time=t3).height == 1
    assert store.read(start=t3 + timedelta(seconds=1)).height == 0
    assert store.issue_times() == [t3]
    assert store.issue_times()[0].tzinfo is UTC
    assert store.read_failed(issue_time=t4)["written_at"].to_list() == [
        t4 + timedelta(minutes=5)]
    assert set(_duckdb_types(path).values()) == {"TIMESTAMP"}  # reading changes nothing

    store.upsert(make_forecasts(issue_times[:1]), failed=_failed(issue_times[0]))
    assert set(_duckdb_types(path).values()) == {"TIMESTAMP WITH TIME ZONE"}
    assert len(_duckdb_types(path)) == 5
    after = store.read()
    assert after.drop("written_at").filter(pl.col("issue_time") == t3).equals(
        old.drop("written_at"))
    assert after.filter(pl.col("issue_time") == t3)["written_at"].to_list() == [
        t3 + timedelta(minutes=5)]
    assert store.read_failed()["issue_time"].to_list() == [issue_times[0], t4]
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM store_meta").fetchone() == ("3",)
    assert con.execute("SELECT count(*) FROM information_schema.tables "
                       "WHERE table_name LIKE '%naive%'").fetchone() == (0,)
    con.close()


def test_host_time_zone_does_not_shift_times(tmp_path):
    """Under a host zone far from UTC (TZ=Pacific/Auckland, DuckDB's default session zone)
    an old naive file still reads, filters and migrates as UTC, and new rows keep their
    instants."""
    code = textwrap.dedent("""
        import sys
        from datetime import UTC, datetime, timedelta
        import duckdb
        sys.path.insert(0, "tests/publish")
        from forecast_factory import make_forecasts
        from test_forecast_store import _schema_2_file
        from flare_core.publish.forecast_store import ForecastStore
        print(duckdb.connect().execute("SELECT current_setting('TimeZone')").fetchone()[0])
        path = sys.argv[1]
        _schema_2_file(path)
        store = ForecastStore(path)
        t3 = datetime(2014, 10, 22, 3, tzinfo=UTC)
        print(store.read(issue_time=t3)["t_rec"][0].isoformat())
        store.upsert(make_forecasts([datetime(2014, 10, 22, tzinfo=UTC)]))
        back = store.read()
        print(" ".join(t.isoformat() for t in back["issue_time"].unique().sort()))
        print(" ".join(t.isoformat() for t in store.issue_times()))
    """)
    env = {**os.environ, "TZ": "Pacific/Auckland"}
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "old.duckdb")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    zone, t_rec, times, listed = res.stdout.split("\n")[:4]
    assert zone == "Pacific/Auckland"  # otherwise the test shows nothing
    assert t_rec == "2014-10-22T02:48:00+00:00"
    assert times == listed == "2014-10-22T00:00:00+00:00 2014-10-22T03:00:00+00:00"


def test_content_stamp_changes_with_every_write_only(tmp_path, issue_times):
    store = ForecastStore(tmp_path / "f.duckdb")
    assert store.content_stamp() == ""
    store.upsert(make_forecasts(issue_times[:2]))
    first = store.content_stamp()
    store.read()
    assert first and store.content_stamp() == first  # reading changes nothing
    store.upsert(make_forecasts(issue_times[:1], seed=3))  # same rows count, newer write
    assert store.content_stamp() != first


def test_a_batch_replaces_per_issue_time_the_models_it_holds_there(tmp_path, issue_times):
    """One upsert of many issue times (a few transactions, not one per issue time) deletes at
    each issue time only the models it writes there, and only the failed regions of its own
    issue times, as one upsert per issue time would."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    times = issue_times[:6]
    old = pl.concat([make_forecasts(times, model=m, seed=i) for i, m in enumerate("xy")])
    stay = pl.DataFrame({"issue_time": [issue_times[1], issue_times[7]], "harpnum": [9, 9],
                         "model_version": ["v1"] * 2, "series": [None] * 2,
                         "reason": ["input: kept"] * 2}, schema=FAILED_SCHEMA)
    batch, single = (ForecastStore(tmp_path / f"{n}.duckdb") for n in ("batch", "single"))
    for store in (batch, single):
        store.upsert(old, failed=stay)
    # the re-run: model x at the even issue times, y at the odd ones, none at issue time 1
    new = pl.concat([make_forecasts(times[0::2], model="x", seed=5),
                     make_forecasts(times[3::2], model="y", seed=6)])
    failed = stay.filter(pl.col("issue_time") == issue_times[1]).with_columns(
        issue_time=pl.lit(issue_times[4]).cast(FAILED_SCHEMA["issue_time"]))
    batch.upsert(new, failed=failed)
    for it in new["issue_time"].unique().sort():
        single.upsert(new.filter(pl.col("issue_time") == it),
                      failed=failed.filter(pl.col("issue_time") == it))
    assert batch.read().drop("written_at").equals(single.read().drop("written_at"))
    assert batch.read_failed().drop("written_at").equals(
        single.read_failed().drop("written_at"))
    got = batch.read().drop("written_at")
    for it, model, source in ((times[0], "x", new), (times[0], "y", old), (times[1], "x", old),
                              (times[3], "y", new), (times[3], "x", old)):
        pick = (pl.col("issue_time") == it) & (pl.col("model") == model)
        assert got.filter(pick).equals(source.filter(pick).sort(FORECAST_KEY))
    # issue times 1 (not in the batch) and 7 keep their failures; 4 gained one
    assert batch.read_failed()["issue_time"].to_list() == [issue_times[i] for i in (1, 4, 7)]
