"""The forecast store: every issued forecast, one embedded DuckDB file.

One row per (issue_time, harpnum, model, model_version). The frame handed to
`ForecastStore.upsert` and returned by `ForecastStore.read` has these polars columns:

==================  ========================  ===============================================
column              dtype                     meaning (unit)
==================  ========================  ===============================================
issue_time          Datetime(us, UTC)         when the forecast is issued; the prediction
                                              window: see "Prediction windows" below
harpnum             Int64                     HMI Active Region Patch number
noaa_ars            Utf8 (nullable)           NOAA AR numbers, comma separated ("11967,11968")
model               Utf8                      model name, e.g. "cox_ph" or "defn"
model_version       Utf8                      model version / training tag
series              Utf8 (nullable)           SHARP series the forecast read, e.g.
                                              "hmi.sharp_720s_nrt" (HARP numbers are per series)
t_rec               Datetime(us, UTC) (null)  newest SHARP record the forecast used (freshness)
p_c24               Float64 (nullable)        P(flare >= C1.0 peaks in the window), [0, 1]
p_m24               Float64 (nullable)        P(flare >= M1.0 peaks in the window), [0, 1]
p_x24               Float64 (nullable)        P(flare >= X1.0 peaks in the window), [0, 1]
mean_lifetime_h     Float64 (nullable)        restricted mean time to the next >=M flare,
                                              hours after issue_time, capped at the curve's
                                              last point (integral of the survival curve)
warning_class       Utf8 (nullable)           warning issued by the model, e.g. "M"
method              Utf8 (nullable)           how the row was made, where that is a rule
                                              (the ``headline`` rows: which model gave each
                                              class and the warning thresholds)
survival_grid_h     List(Float64) (nullable)  hours after issue_time (the survival model,
                                              re-based to it), strictly increasing
survival_curve      List(Float64) (nullable)  S(t) on ``survival_grid_h``, non-increasing
written_at          Datetime(us, UTC)         (read only) when the row was stored
==================  ========================  ===============================================

Prediction window: every row forecasts ``(issue_time, issue_time + 24 h]``. The survival
model (``survival``) is re-based to the issue time (`flare_core.forecasting`). The binary
models (`RECORD_WINDOW_MODELS`: DeFN, LSTM, logistic, persistence, climatology) were trained
for ``(t_rec, t_rec + 24 h]``; their value is used for the issue window under a
stationarity assumption over the lead ``issue_time - t_rec`` (less than the freshness, 6 h
by default; `flare_core.forecasting`, "Windows"). Within a row ``p_c24 >= p_m24 >= p_x24``
(`flare_core.forecasting.project_class_probabilities`).

Failed regions: a region left out of an issue time (invalid inputs or model outputs,
`flare_core.forecasting`, or a data fetch that failed) is a row of the ``failed_regions``
table (`FAILED_SCHEMA`: ``issue_time, harpnum, model_version, series, reason``), written by
`ForecastStore.upsert` (``failed=``) in the same transaction as that issue time's forecasts
and replaced with them; read with `ForecastStore.read_failed`.

Re-running an issue time *replaces* it: `upsert` first deletes every row of that issue time
for the (model, model_version) pairs it writes, then inserts the new rows, in the same
transaction (one transaction covers a run of consecutive issue times: one DELETE and one
INSERT each, so that a week of hourly issue times commits a handful of times, not 168). A
region that dropped out of a re-run therefore does not linger, and an interrupted run leaves
each issue time either wholly old or wholly new.

DuckDB lets only one process open a database file for writing. Every access (read or write)
therefore holds an exclusive file lock (``<path>.lock``, the `filelock` package; released by
the OS if the holder dies) for a short while: one read, or a run of transactions of at most
``max_hold_s`` seconds (each transaction aims at half of it). Opening the file is retried a few times in case a process
that does not use the lock holds it. An hourly run and a backfill thus interleave without
losing or duplicating rows.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import filelock
import numpy as np
import polars as pl

from ..config import check_positive
from ..errors import DataQualityWarning, ParseError, StoreError
from ..schema import UTC_DATETIME
from ..timeutil import to_utc, to_utc_columns

__all__ = [
    "FORECAST_SCHEMA",
    "RECORD_WINDOW_MODELS",
    "FORECAST_KEY",
    "PROBABILITY_COLUMNS",
    "FAILED_SCHEMA",
    "ABSENT_CLASS_REASONS",
    "absent_class_reason",
    "curve_problem",
    "conform_failed",
    "ForecastStore",
    "conform_forecasts",
    "empty_forecast_frame",
]

logger = logging.getLogger(__name__)

#: Columns (and dtypes) of a forecast frame, in canonical order.
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "issue_time": UTC_DATETIME,
    "harpnum": pl.Int64,
    "noaa_ars": pl.Utf8,
    "model": pl.Utf8,
    "model_version": pl.Utf8,
    "series": pl.Utf8,
    "t_rec": UTC_DATETIME,
    "p_c24": pl.Float64,
    "p_m24": pl.Float64,
    "p_x24": pl.Float64,
    "mean_lifetime_h": pl.Float64,
    "warning_class": pl.Utf8,
    "survival_grid_h": pl.List(pl.Float64),
    "survival_curve": pl.List(pl.Float64),
    "method": pl.Utf8,
}
#: Columns of the failed-regions table (one row per region left out of an issue time).
FAILED_SCHEMA: dict[str, pl.DataType] = {
    "issue_time": UTC_DATETIME,
    "harpnum": pl.Int64,
    "model_version": pl.Utf8,
    "series": pl.Utf8,
    "reason": pl.Utf8,
}
_FAILED_KEY = ("issue_time", "harpnum", "model_version")
#: The primary key of the store.
FORECAST_KEY: tuple[str, ...] = ("issue_time", "harpnum", "model", "model_version")
#: Probability columns, by increasing flare-class threshold (C+, M+, X+).
PROBABILITY_COLUMNS: tuple[str, ...] = ("p_c24", "p_m24", "p_x24")
#: Models trained for ``(t_rec, t_rec + 24 h]`` whose value is published for
#: ``(issue_time, issue_time + 24 h]`` (stationarity over the lead; module docstring): the
#: binary models of `flare_core.forecasting`.
RECORD_WINDOW_MODELS: frozenset[str] = frozenset(
    {"defn", "lstm", "logistic", "persistence", "climatology"})
_M_ONLY = "the model forecasts >=M flares only"
#: Why a model's row has no value of a class, by (model, probability column).
ABSENT_CLASS_REASONS: dict[tuple[str, str], str] = {
    ("survival", "p_c24"): _M_ONLY + " (time to the next >=M flare)",
    **{(m, "p_c24"): _M_ONLY for m in ("lstm", "logistic", "persistence", "climatology")},
    **{(m, "p_x24"): ("no X forecast: the model directory has no flare-class forest for "
                      "P(X | M)") for m in ("survival", "defn", "lstm", "logistic",
                                           "persistence", "climatology", "headline")},
    ("headline", "p_c24"): "no model of the directory forecasts >=C flares",
}


def absent_class_reason(model: str, column: str) -> str:
    """Why ``model`` publishes no ``column`` (`ABSENT_CLASS_REASONS`, else a generic text)."""
    return ABSENT_CLASS_REASONS.get((model, column), "not forecast by this model")
_REQUIRED = FORECAST_KEY
_VALUE_COLUMNS = (*PROBABILITY_COLUMNS, "mean_lifetime_h", "survival_curve")
# 1: no series / method columns; 2: times stored as naive UTC TIMESTAMP; 3: TIMESTAMPTZ.
# Older files are read as they are and migrated on the first write (`_migrate`).
_SCHEMA_VERSION = 3
_TABLES: dict[str, str] = {
    "forecasts": """
    issue_time      TIMESTAMPTZ NOT NULL,
    harpnum         BIGINT      NOT NULL,
    noaa_ars        VARCHAR,
    model           VARCHAR     NOT NULL,
    model_version   VARCHAR     NOT NULL,
    series          VARCHAR,
    t_rec           TIMESTAMPTZ,
    p_c24           DOUBLE,
    p_m24           DOUBLE,
    p_x24           DOUBLE,
    mean_lifetime_h DOUBLE,
    warning_class   VARCHAR,
    survival_grid_h DOUBLE[],
    survival_curve  DOUBLE[],
    method          VARCHAR,
    written_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issue_time, harpnum, model, model_version)""",
    "failed_regions": """
    issue_time      TIMESTAMPTZ NOT NULL,
    harpnum         BIGINT      NOT NULL,
    model_version   VARCHAR     NOT NULL,
    series          VARCHAR,
    reason          VARCHAR     NOT NULL,
    written_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issue_time, harpnum, model_version)""",
}
#: Time columns of each table: tz-aware UTC (``TIMESTAMPTZ``) from schema 3 on.
_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "forecasts": ("issue_time", "t_rec", "written_at"),
    "failed_regions": ("issue_time", "written_at"),
}
_TABLE_SQL = "".join(f"CREATE TABLE IF NOT EXISTS {name} ({ddl}\n);\n"
                     for name, ddl in _TABLES.items()) + (
    "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR);\n")
# schema 1 files (no series / method columns) gain them on the first write
_MIGRATE_SQL = """
ALTER TABLE forecasts ADD COLUMN IF NOT EXISTS series VARCHAR;
ALTER TABLE forecasts ADD COLUMN IF NOT EXISTS method VARCHAR;
"""
_TOL = 1e-9
_YIELD_S = 0.06  # > filelock's 0.05 s poll interval


def empty_forecast_frame() -> pl.DataFrame:
    """A zero-row forecast frame with `FORECAST_SCHEMA`."""
    return pl.DataFrame(schema=FORECAST_SCHEMA)


def _record(row: dict) -> str:
    return f"issue_time={row['issue_time']} harpnum={row['harpnum']} model={row['model']}"


def curve_problem(grid: list[float] | None, curve: list[float] | None) -> str | None:
    """What is wrong with a survival curve (``survival_grid_h``, ``survival_curve``), or None.

    Both null is fine (no curve). Otherwise both must have the same non-zero length, hold
    finite values, the grid must start at >= 0 and strictly increase, and S(t) must lie in
    [0, 1] and not increase (tolerance 1e-6).
    """
    if grid is None and curve is None:
        return None
    if grid is None or curve is None or len(grid) != len(curve) or len(grid) == 0:
        return ("survival_grid_h and survival_curve must both be set with the same non-zero "
                f"length (got {grid!r} and {curve!r})")
    if any(v is None or not math.isfinite(v) for v in (*grid, *curve)):
        return "survival curve holds null/NaN values"
    if grid[0] < 0 or any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
        return "survival_grid_h must be >= 0 and strictly increasing"
    if any(not (-1e-6 <= s <= 1 + 1e-6) for s in curve) or any(
        b > a + 1e-6 for a, b in zip(curve, curve[1:], strict=False)
    ):
        return "survival_curve must lie in [0, 1] and not increase"
    return None


def _maybe_bad_curve() -> pl.Expr:
    """Rows whose survival curve `curve_problem` might reject (a superset: every row it
    rejects, and maybe a few it accepts), so that only those are checked row by row."""
    grid, curve = pl.col("survival_grid_h"), pl.col("survival_curve")
    some = grid.is_not_null() | curve.is_not_null()
    # a null or NaN element makes the comparisons below null, not False: fill_null(True)
    ok = (grid.is_not_null() & curve.is_not_null()
          & (grid.list.len() == curve.list.len()) & (grid.list.len() > 0)
          & grid.list.eval(pl.element().is_not_null() & pl.element().is_finite()).list.all()
          & curve.list.eval(pl.element().is_not_null() & pl.element().is_finite()).list.all()
          & (grid.list.first() >= 0)
          & grid.list.eval(pl.element().diff().drop_nulls() > 0).list.all()
          & curve.list.eval(pl.element().is_between(-1e-6 + 1e-12, 1 + 1e-6 - 1e-12)).list.all()
          & curve.list.eval(pl.element().diff().drop_nulls() < 1e-6 - 1e-12).list.all())
    return some & ~ok.fill_null(False)


def _check_curve(row: dict) -> None:
    problem = curve_problem(row["survival_grid_h"], row["survival_curve"])
    if problem is not None:
        raise ParseError(f"forecast {_record(row)}: {problem}")


def conform_forecasts(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Check a forecast frame and cast it to `FORECAST_SCHEMA` (canonical column order).

    Absent optional columns become nulls; extra columns are dropped. Datetimes must be
    tz-aware (any zone; converted to UTC).

    Raises
    ------
    ParseError
        Naming the record: a required column absent or null, a duplicated key, a probability
        outside [0, 1], a negative mean lifetime, a row with no forecast value at all, or a
        malformed survival curve (grid and curve of different lengths, grid not strictly
        increasing from >= 0, S(t) outside [0, 1] or increasing).

    Warns
    -----
    DataQualityWarning
        When some rows have p_c24 < p_m24 or p_m24 < p_x24 (nested classes; degraded
        but usable, e.g. separately trained classifiers). The count is logged.
    """
    missing = [c for c in _REQUIRED if c not in forecasts.columns]
    if missing:
        raise ParseError(f"forecast frame lacks required column(s) {missing}")
    df = forecasts
    for col in ("issue_time", "t_rec"):
        if col not in df.columns:
            continue
        dtype = df.schema[col]
        if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
            raise ParseError(f"forecast column {col!r} must be a tz-aware datetime, got {dtype}")
        df = df.with_columns(pl.col(col).dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    absent = [pl.lit(None, dtype=dt).alias(c) for c, dt in FORECAST_SCHEMA.items()
              if c not in df.columns]
    if absent:
        df = df.with_columns(absent)
    try:
        df = df.select([pl.col(c).cast(dt, strict=True) for c, dt in FORECAST_SCHEMA.items()])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as e:
        raise ParseError(f"forecast frame does not fit FORECAST_SCHEMA: {e}") from e

    def _first_bad(mask: pl.Expr, what: str) -> None:
        bad = df.filter(mask)
        if bad.height:
            raise ParseError(f"forecast {_record(bad.row(0, named=True))}: {what} "
                             f"({bad.height} row(s))")

    for col in _REQUIRED:
        if df[col].null_count():
            raise ParseError(f"forecast column {col!r} has {df[col].null_count()} null value(s)")
    dup = df.filter(df.select(FORECAST_KEY).is_duplicated())
    if dup.height:
        raise ParseError(f"forecast {_record(dup.row(0, named=True))}: key "
                         f"{FORECAST_KEY} is duplicated ({dup.height} rows)")
    for col in PROBABILITY_COLUMNS:
        _first_bad(~pl.col(col).is_between(0.0, 1.0) | pl.col(col).is_nan(),
                   f"{col} outside [0, 1]")
    _first_bad((pl.col("mean_lifetime_h") < 0) | pl.col("mean_lifetime_h").is_nan(),
               "mean_lifetime_h must be >= 0 hours")
    _first_bad(pl.all_horizontal([pl.col(c).is_null() for c in _VALUE_COLUMNS]),
               f"no forecast value: all of {list(_VALUE_COLUMNS)} are null")
    for row in df.filter(_maybe_bad_curve()).iter_rows(named=True):
        _check_curve(row)
    n_unnested = df.filter((pl.col("p_c24") < pl.col("p_m24") - _TOL)
                           | (pl.col("p_m24") < pl.col("p_x24") - _TOL)).height
    if n_unnested:
        logger.warning("%d forecast row(s) have p_c24 < p_m24 or p_m24 < p_x24", n_unnested)
        warnings.warn(f"{n_unnested} forecast row(s) have non-nested class probabilities "
                      "(p_c24 < p_m24 or p_m24 < p_x24)", DataQualityWarning, stacklevel=2)
    return df


def conform_failed(failed: pl.DataFrame | None) -> pl.DataFrame:
    """Check a failed-regions frame and cast it to `FAILED_SCHEMA` (None: zero rows).

    Raises
    ------
    ParseError
        If ``issue_time``, ``harpnum``, ``model_version`` or ``reason`` is absent or null,
        ``issue_time`` is not tz-aware, or a (issue_time, harpnum, model_version) repeats.
    """
    if failed is None:
        return pl.DataFrame(schema=FAILED_SCHEMA)
    missing = [c for c in (*_FAILED_KEY, "reason") if c not in failed.columns]
    if missing:
        raise ParseError(f"failed-regions frame lacks required column(s) {missing}")
    dtype = failed.schema["issue_time"]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise ParseError(f"failed-regions column 'issue_time' must be a tz-aware datetime, "
                         f"got {dtype}")
    df = failed.with_columns(pl.col("issue_time").dt.convert_time_zone("UTC"))
    if "series" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.Utf8).alias("series"))
    df = df.select([pl.col(c).cast(dt, strict=True) for c, dt in FAILED_SCHEMA.items()])
    for col in (*_FAILED_KEY, "reason"):
        if df[col].null_count():
            raise ParseError(f"failed-regions column {col!r} has null value(s)")
    if df.select(_FAILED_KEY).is_duplicated().any():
        raise ParseError(f"failed-regions key {_FAILED_KEY} is duplicated")
    return df


def _naive_time_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The time columns of ``table`` stored as naive ``TIMESTAMP`` (schema <= 2)."""
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                       "AND data_type = 'TIMESTAMP'", [table]).fetchall()
    return [r[0] for r in rows if r[0] in _TIME_COLUMNS[table]]


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a file of an older schema to `_SCHEMA_VERSION` (one transaction).

    Schema 1 gains the ``series``/``method`` columns. Naive ``TIMESTAMP`` columns (schema
    <= 2, UTC by convention) become ``TIMESTAMPTZ``: DuckDB cannot change the type of a
    primary-key column in place, so the table is rebuilt with the current DDL and its rows
    copied, each naive value read as UTC (``timezone('UTC', t)``)."""
    con.execute(_MIGRATE_SQL)
    for table in _TABLES:
        naive = _naive_time_columns(con, table)
        if not naive:
            continue
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()]
        select = ", ".join(f"timezone('UTC', {c})" if c in naive else c for c in cols)
        old = f"_{table}_naive"
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"ALTER TABLE {table} RENAME TO {old}")
            con.execute(f"CREATE TABLE {table} ({_TABLES[table]}\n)")
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {old}")
            con.execute(f"DROP TABLE {old}")
            con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        logger.info("forecast store: table %s migrated to TIMESTAMPTZ (%s were naive UTC)",
                    table, ", ".join(naive))


class ForecastStore:
    """Issued forecasts in one DuckDB file, safe to share between processes.

    Parameters
    ----------
    path : str or Path
        The DuckDB database file (created, with its parent folder, on the first write).
        The lock file is ``<path>.lock`` next to it.
    lock_timeout_s : float, optional
        Seconds to wait for the file lock before raising `StoreError` (default 120).
    open_retries : int, optional
        Extra attempts to open the database when DuckDB reports it locked by a process
        that does not use our lock (default 5; back-off 0.1, 0.2, 0.4, ... s).
    max_hold_s : float, optional
        An upsert of many issue times releases the lock after the transaction that passes
        this many seconds of holding it and pauses briefly before queueing again (default
        0.5), so a long backfill lets a concurrent hourly run in.

    Notes
    -----
    The constructor does no I/O. Times are tz-aware UTC at the interface and in the file
    (``TIMESTAMPTZ`` columns; every connection sets DuckDB's session zone to UTC). A file
    of schema 2 or older (naive ``TIMESTAMP`` columns, UTC by convention) is read as UTC
    and migrated on the next write.

    Examples
    --------
    >>> store = ForecastStore(tmp_path / "forecasts.duckdb")  # doctest: +SKIP
    >>> store.upsert(forecasts)                               # doctest: +SKIP
    >>> store.read(issue_time=store.latest_issue_time())      # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, lock_timeout_s: float = 120.0,
                 open_retries: int = 5, max_hold_s: float = 0.5) -> None:
        check_positive("lock_timeout_s", lock_timeout_s)
        check_positive("max_hold_s", max_hold_s)
        if not isinstance(open_retries, int) or open_retries < 0:
            raise StoreError(f"open_retries must be an int >= 0, got {open_retries!r}")
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.open_retries = open_retries
        self.max_hold_s = max_hold_s
        self._lock = filelock.FileLock(str(self.path) + ".lock", timeout=lock_timeout_s)

    def __repr__(self) -> str:
        return f"ForecastStore({str(self.path)!r})"

    # -- connection handling -------------------------------------------------------------

    @contextmanager
    def _connect(self, *, write: bool,
                 setup: bool = True) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """Hold the file lock and yield an open connection (None: nothing stored yet).

        A write connection first makes sure of the tables and the schema version, unless
        ``setup`` is False (a later connection of the same upsert, the file already set up).
        """
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout as e:
            raise StoreError(f"forecast store {self.path}: lock {self._lock.lock_file} not "
                             f"acquired within {self.lock_timeout_s} s") from e
        try:
            if not write and not self.path.exists():
                yield None
                return
            con = self._open(write=write)
            try:
                if write and setup:
                    con.execute(_TABLE_SQL)
                    _migrate(con)
                    con.execute("INSERT OR REPLACE INTO store_meta VALUES ('schema_version', ?)",
                                [str(_SCHEMA_VERSION)])
                yield con
            finally:
                con.close()
        finally:
            self._lock.release()

    def _open(self, *, write: bool) -> duckdb.DuckDBPyConnection:
        delay_s = 0.1
        for attempt in range(self.open_retries + 1):
            try:
                con = duckdb.connect(str(self.path), read_only=not write)
            except duckdb.IOException as e:
                if attempt == self.open_retries:
                    raise StoreError(f"forecast store {self.path} could not be opened after "
                                     f"{attempt + 1} attempts: {e}") from e
                logger.info("forecast store %s busy (%s); retry in %.1f s", self.path, e, delay_s)
                time.sleep(delay_s)
                delay_s *= 2
            except duckdb.Error as e:
                raise StoreError(f"forecast store {self.path} is not a usable DuckDB "
                                 f"database: {e}") from e
            else:
                # The session zone (the host's by default) decides how TIMESTAMPTZ values
                # come back and how a schema-2 naive TIMESTAMP compares with a UTC
                # parameter: UTC.
                con.execute("SET TimeZone = 'UTC'")
                return con
        raise AssertionError("unreachable")

    # -- writing ---------------------------------------------------------------------------

    def upsert(self, forecasts: pl.DataFrame, *, failed: pl.DataFrame | None = None) -> int:
        """Store forecasts, replacing whatever an earlier run wrote for the same issue time.

        For each issue time in ``forecasts`` or ``failed``, every stored row of that issue
        time with a (model, model_version) present in the input at that issue time is
        deleted and the input rows are inserted. Other models' rows are kept. The failed
        regions of that issue time and of the input's model versions are replaced likewise.

        The issue times are written in ascending order, a run of consecutive issue times
        per transaction: the first transaction holds one issue time, and each next one
        grows (at most 4x) towards ``max_hold_s / 2`` seconds, as measured on the ones
        before. A backfill batch of a week thus commits in a handful of transactions (a
        commit flushes DuckDB's write-ahead log to disk) instead of one per issue time,
        while a transaction, and so a lock hold, stays short.

        Parameters
        ----------
        forecasts : pl.DataFrame
            Columns of `FORECAST_SCHEMA` (only the key columns are required; checked by
            `conform_forecasts`).
        failed : pl.DataFrame, optional
            Regions left out (`FAILED_SCHEMA`; `conform_failed`). An issue time with no
            failed row of a model version written clears that version's stored failures.

        Returns
        -------
        int
            Number of forecast rows written.

        Raises
        ------
        ParseError
            If a frame fails `conform_forecasts` / `conform_failed` (nothing is written).
        StoreError
            If the lock or the database cannot be had, or a write fails (the transaction in
            progress is rolled back, so each of its issue times stays as it was; issue times
            already committed stay).
        """
        df = conform_forecasts(forecasts)
        bad = conform_failed(failed)
        if df.is_empty() and bad.is_empty():
            logger.info("forecast store %s: nothing to upsert", self.path)
            return 0
        written_at = datetime.now(UTC)
        # rows sorted by issue time (the key): each issue time is one contiguous slice
        df = df.sort(FORECAST_KEY)
        bad = bad.sort("issue_time", maintain_order=True)
        versions = pl.concat([df["model_version"], bad["model_version"]]).unique().sort()
        times = pl.concat([df["issue_time"], bad["issue_time"]]).unique().sort()
        t_us = times.dt.epoch("us").to_numpy()
        df_at = np.searchsorted(df["issue_time"].dt.epoch("us").to_numpy(), t_us)
        bad_at = np.searchsorted(bad["issue_time"].dt.epoch("us").to_numpy(), t_us)
        df_at = np.append(df_at, df.height)
        bad_at = np.append(bad_at, bad.height)
        target_s = self.max_hold_s / 2
        n, i, step = 0, 0, 1
        while i < len(times):
            # One lock hold covers several transactions, up to max_hold_s, so that opening
            # the file is amortised and a concurrent writer still gets a turn.
            with self._connect(write=True, setup=i == 0) as con:
                assert con is not None
                held_since = time.monotonic()
                while i < len(times):
                    j = min(i + step, len(times))
                    t0 = time.monotonic()
                    part = df.slice(int(df_at[i]), int(df_at[j] - df_at[i]))
                    self._replace_issue_times(
                        con, times.slice(i, j - i), part,
                        bad.slice(int(bad_at[i]), int(bad_at[j] - bad_at[i])),
                        versions.to_list(), written_at)
                    n += part.height
                    elapsed = time.monotonic() - t0
                    step = max(1, min(4 * (j - i), int((j - i) * target_s
                                                       / max(elapsed, 1e-6))))
                    i = j
                    if time.monotonic() - held_since > self.max_hold_s:
                        break
            if i < len(times):
                time.sleep(_YIELD_S)  # let a waiting process (polling the lock) get its turn
        logger.info("forecast store %s: upserted %d row(s) and %d failed region(s) for %d "
                    "issue time(s)", self.path, n, bad.height, len(times))
        return n

    def _replace_issue_times(self, con: duckdb.DuckDBPyConnection, times: pl.Series,
                             part: pl.DataFrame, failed: pl.DataFrame, versions: list[str],
                             written_at: datetime) -> None:
        """One transaction: at each of ``times``, delete the rows of the (model, version)
        pairs ``part`` holds there and the failed regions of ``versions``, insert ``part``
        and ``failed`` (the rows of those issue times)."""
        try:
            con.execute("BEGIN TRANSACTION")
            if part.height:
                self._delete(con, part.select("issue_time", "model", "model_version").unique())
            if versions:
                con.register("_times", times.to_frame("issue_time").to_arrow())
                try:
                    con.execute("DELETE FROM failed_regions USING _times t WHERE "
                                "failed_regions.issue_time = t.issue_time AND "
                                f"model_version IN ({', '.join('?' * len(versions))})",
                                versions)
                finally:
                    con.unregister("_times")
            if part.height:
                self._insert(con, part.with_columns(pl.lit(written_at).alias("written_at")))
            if failed.height:
                self._insert_into(con, "failed_regions", failed.with_columns(
                    pl.lit(written_at).alias("written_at")))
            con.execute("COMMIT")
        except BaseException as e:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(e, duckdb.Error):
                span = (times[0].isoformat() if len(times) == 1 else
                        f"{times[0].isoformat()} .. {times[-1].isoformat()}")
                raise StoreError(f"forecast store {self.path}: writing issue time(s) {span} "
                                 f"failed: {e}") from e
            raise

    @staticmethod
    def _delete(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> None:
        """Delete the stored rows of these (issue_time, model, model_version): one
        statement (a join; the issue-time bounds let DuckDB skip the other row groups)."""
        con.register("_keys", keys.to_arrow())
        try:
            con.execute("DELETE FROM forecasts USING _keys k WHERE "
                        "forecasts.issue_time = k.issue_time AND forecasts.model = k.model "
                        "AND forecasts.model_version = k.model_version "
                        "AND forecasts.issue_time BETWEEN ? AND ?",
                        [keys["issue_time"].min(), keys["issue_time"].max()])
        finally:
            con.unregister("_keys")

    @staticmethod
    def _insert(con: duckdb.DuckDBPyConnection, incoming: pl.DataFrame) -> None:
        ForecastStore._insert_into(con, "forecasts", incoming)

    @staticmethod
    def _insert_into(con: duckdb.DuckDBPyConnection, table: str,
                     incoming: pl.DataFrame) -> None:
        con.register("_incoming", incoming.to_arrow())
        try:
            cols = ", ".join(incoming.columns)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
        finally:
            con.unregister("_incoming")

    # -- reading ---------------------------------------------------------------------------

    def read(self, issue_time: datetime | str | None = None, start: datetime | str | None = None,
             end: datetime | str | None = None, *, model: str | None = None,
             harpnums: list[int] | None = None) -> pl.DataFrame:
        """Stored forecasts, sorted by (issue_time, harpnum, model, model_version).

        Parameters
        ----------
        issue_time : datetime or ISO str, optional
            Only this issue time (UTC; naive values are taken as UTC).
        start, end : datetime or ISO str, optional
            Only issue times in [start, end) (UTC).
        model : str, optional
            Only this model.
        harpnums : list of int, optional
            Only these regions.

        Returns
        -------
        pl.DataFrame
            `FORECAST_SCHEMA` columns plus ``written_at`` (UTC); zero rows if the store
            does not exist yet.
        """
        where, params = [], []
        if issue_time is not None:
            where.append("issue_time = ?")
            params.append(to_utc(issue_time))
        if start is not None:
            where.append("issue_time >= ?")
            params.append(to_utc(start))
        if end is not None:
            where.append("issue_time < ?")
            params.append(to_utc(end))
        if model is not None:
            where.append("model = ?")
            params.append(model)
        if harpnums is not None:
            where.append("list_contains(?, harpnum)")
            params.append([int(h) for h in harpnums])
        schema = {**FORECAST_SCHEMA, "written_at": UTC_DATETIME}
        with self._connect(write=False) as con:
            if con is None:
                return pl.DataFrame(schema=schema)
            have = self._columns(con, "forecasts")
            cols = [c if c in have else f"NULL AS {c}" for c in FORECAST_SCHEMA]
            return self._select(con, f"{', '.join(cols)}, written_at", "forecasts", where,
                                params, FORECAST_KEY, schema)

    @staticmethod
    def _select(con: duckdb.DuckDBPyConnection, columns: str, table: str, where: list[str],
                params: list, order: Sequence[str], schema: dict) -> pl.DataFrame:
        """``SELECT columns FROM table WHERE ... ORDER BY order`` as a polars frame of
        ``schema``, its time columns tz-aware UTC (the one read path of both tables)."""
        sql = (f"SELECT {columns} FROM {table}"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY {', '.join(order)}")
        out = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
        assert isinstance(out, pl.DataFrame)
        # aware from TIMESTAMPTZ, naive UTC from a schema-2 file's TIMESTAMP
        return to_utc_columns(out, _TIME_COLUMNS[table]).cast(schema)

    @staticmethod
    def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
        rows = con.execute("SELECT column_name FROM information_schema.columns "
                           "WHERE table_name = ?", [table]).fetchall()
        return {r[0] for r in rows}

    def read_failed(self, issue_time: datetime | str | None = None,
                    start: datetime | str | None = None,
                    end: datetime | str | None = None) -> pl.DataFrame:
        """Regions left out of issue times (`FAILED_SCHEMA` plus ``written_at``), sorted by
        (issue_time, harpnum, model_version); the bounds as in `read`. Zero rows for a store
        that does not exist yet or was written before the table existed."""
        where, params = [], []
        for op, t in (("=", issue_time), (">=", start), ("<", end)):
            if t is not None:
                where.append(f"issue_time {op} ?")
                params.append(to_utc(t))
        schema = {**FAILED_SCHEMA, "written_at": UTC_DATETIME}
        with self._connect(write=False) as con:
            if con is None or not self._columns(con, "failed_regions"):
                return pl.DataFrame(schema=schema)
            return self._select(con, ", ".join(schema), "failed_regions", where, params,
                                _FAILED_KEY, schema)

    def content_stamp(self) -> str:
        """A short text that changes whenever the stored content does: the row count and
        newest ``written_at`` of both tables (every upsert stamps what it writes with the
        time it ran). Empty for a store that does not exist yet. Cheap: two aggregates."""
        with self._connect(write=False) as con:
            if con is None:
                return ""
            parts = []
            for table in _TABLES:
                if table == "failed_regions" and not self._columns(con, table):
                    parts.append(f"{table}:-")
                    continue
                n, newest = con.execute(
                    f"SELECT count(*), max(written_at) FROM {table}").fetchone()
                parts.append(f"{table}:{n}:{newest}")
        return f"{self.path.resolve()}|" + "|".join(parts)

    def issue_times(self, *, model: str | None = None) -> list[datetime]:
        """Every stored issue time (tz-aware UTC), ascending; optionally of one model."""
        sql = "SELECT DISTINCT issue_time FROM forecasts"
        params: list = []
        if model is not None:
            sql += " WHERE model = ?"
            params.append(model)
        with self._connect(write=False) as con:
            if con is None:
                return []
            rows = con.execute(sql + " ORDER BY issue_time", params).fetchall()
        return [to_utc(r[0]) for r in rows]  # naive from a schema-2 TIMESTAMP: UTC

    def latest_issue_time(self, *, model: str | None = None) -> datetime | None:
        """The newest stored issue time (tz-aware UTC), or None for an empty store."""
        times = self.issue_times(model=model)
        return times[-1] if times else None
