"""Operations: ``flareflow forecast | backfill | show | serve | demo``.

These run the Prefect flows of `flows` (imported inside the functions, so ``flareflow
--help`` stays fast). ``--store`` is the installation root (`flows.layout.Layout`: the data
store, models and published products); default ``FLAREFLOW_STORE`` or the per-user data dir.
Times are UTC, ISO 8601 (``2014-10-22T13:00``; naive means UTC).

``flareflow demo --out DIR`` is the offline main job: no network and no external server
(a temporary local Prefect server is started for the run).
"""

from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .errors import EXIT_FAILED, EXIT_PARTIAL, EXIT_USAGE, exit_code_of, fail, handled

__all__ = ["forecast_cmd", "backfill_cmd", "show_cmd", "score_cmd", "serve_cmd", "demo_cmd"]

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="Installation root (default: $FLAREFLOW_STORE or the user data dir).")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="MODEL_DIR (default: the latest trained into the store).")]
SeriesOpt = Annotated[str | None, typer.Option(
    "--series", help="SHARP series to read (default: the store's only one).")]


def _prepare_env() -> None:
    """Before Prefect and torch are imported: flare_core log lines in run logs, no
    analytics, an existing PREFECT_HOME (Prefect does not create missing parents; its server
    needs it), and one OpenMP thread per process unless set (as Dask gives its workers):
    small-batch torch inference with 2 OpenMP threads on a busy 2-core machine measured
    ~40x slower per forecast (benchmarks/bench_forecast.py)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "flare_core")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if os.environ.get("PREFECT_HOME"):
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


def _time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 UTC time (naive = UTC; ``now``); a bad value is a usage error (exit 2)."""
    if value is None:
        return None
    from tasks.common import parse_utc

    try:
        return parse_utc(value)
    except ValueError as e:
        fail(f"{name}: not an ISO 8601 time: {value!r}", EXIT_USAGE)
        raise AssertionError from e  # unreachable: fail raises


def _not_future(t: datetime, name: str) -> None:
    """A forecast is issued for a past or the current hour: a later one is a usage error."""
    from datetime import UTC

    now = datetime.now(UTC)
    if t > now:
        fail(f"{name} {t.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M} UTC): "
             "forecasts are issued for the current or a past hour", EXIT_USAGE)


def _run_note(url: str | None) -> str:
    return (f"run: Prefect flow (API {url})" if url else
            "run: in-process (no Prefect server configured; set PREFECT_API_URL or run "
            "`flareflow serve` to record runs in Prefect)")


def _exit_partial(res: dict[str, Any]) -> None:
    """Exit 3 when some regions failed (``failed_regions`` or ``status == "partial"``), 1
    when every region failed (``status == "failed"``), naming each with its reason.

    ``failed_regions`` is HARP -> reason (one issue time) or a list of failed-region
    records (``issue_time``, ``harpnum``, ``reason``: a backfill)."""
    failed = res.get("failed_regions") or {}
    if not failed and res.get("status") != "partial":
        return
    if isinstance(failed, dict):
        named = [f"HARP {h}: {why}" for h, why in sorted(failed.items(),
                                                         key=lambda kv: str(kv[0]))]
    else:
        named = [f"HARP {r['harpnum']} at {str(r['issue_time'])[:16]}: {r['reason']}"
                 for r in failed]
    what = "region forecast(s)" if isinstance(failed, list) else "region(s)"
    shown = "; ".join(named[:10]) + (f"; ... ({len(named) - 10} more)" if len(named) > 10
                                     else "")
    fail(f"{res.get('status') or 'partial'}: {len(named)} {what} not forecast: {shown}",
         EXIT_FAILED if res.get("status") == "failed" else EXIT_PARTIAL)


@contextmanager
def _progress(label: str, forecast_store: Path, wanted: list[datetime]):
    """A rich progress bar counting the wanted issue times that reached the forecast store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from flare_core.publish.forecast_store import ForecastStore

    want = set(wanted)
    stop = threading.Event()
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
        tid = bar.add_task(label, total=len(want))

        def poll() -> None:
            store = ForecastStore(forecast_store, lock_timeout_s=30.0)
            while not stop.wait(2.0):
                try:
                    done = len(want.intersection(store.issue_times()))
                except Exception:  # noqa: BLE001 - the bar must never break the run
                    continue
                bar.update(tid, completed=done)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        try:
            yield
        finally:
            stop.set()
            th.join(timeout=5)
            try:
                bar.update(tid, completed=len(want.intersection(
                    ForecastStore(forecast_store).issue_times())))
            except Exception:  # noqa: BLE001
                pass


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _echo_result(title: str, res: dict[str, Any], keys: tuple[str, ...], url: str | None,
                 as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**res, "run": "flow" if url else "in-process"}, indent=1,
                              default=str))
        return
    typer.echo(title)
    for k in keys:
        if res.get(k) is not None:
            typer.echo(f"  {k:15s} {res[k]}")
    for t, why in sorted((res.get("gaps") or {}).items())[:5]:
        typer.echo(f"  gap {t}: {why}")
    typer.echo(_run_note(url))


@app.command("forecast")
@handled
def forecast_cmd(
    at: Annotated[str | None, typer.Option("--at", help="Issue time (UTC, not in the future); "
                                                          "default now, rounded down to the "
                                                          "hour.")] = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    fetch: Annotated[bool, typer.Option(help="Fetch NRT SHARP (JSOC) and flares (HEK) "
                                             "first (runs the Prefect flow).")] = False,
    page: Annotated[bool, typer.Option(help="Draw the plots and the page.")] = True,
    series: SeriesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue and publish the forecast of one hour (store, scoreboard JSON, plots, page).

    With a Prefect server configured (PREFECT_API_URL, as under `flareflow serve`) this runs
    the `forecast` flow; otherwise the same steps (`flare_core.issuing`) run in this
    process, in a few seconds. Exit 3 when some regions failed (status partial: the others
    are published, the failed ones named with their reasons).
    """
    _prepare_env()
    from flows.layout import Layout
    from tasks.common import floor_hour

    from .local import forecast_local, server_url

    issue = floor_hour(_time(at, "--at")) if at else floor_hour(None)
    _not_future(issue, "--at")
    layout = Layout.of(store)
    url = server_url()
    if url or fetch:  # fetching needs the flow's retried network tasks
        from flows.forecast import forecast

        res = forecast(issue, str(layout.root), str(model) if model else None, fetch=fetch,
                       page=page, series=series)
    else:
        res = forecast_local(issue, layout, model, page=page, series=series)
    _echo_result(f"forecast issued {issue:%Y-%m-%d %H:%M} UTC ({res.get('status')}): "
                 f"{res['regions']} regions, {res['rows']} rows "
                 f"({res.get('model_seconds', 0):.2f} s of model time)",
                 res, ("forecast_store", "page", "model_dir"), url, as_json)
    if res["rows"] == 0 and not res.get("failed_regions"):
        why = "; ".join(sorted(set((res.get("gaps") or {}).values()))) or "no rows"
        fail(f"nothing forecast at {issue.isoformat()}: {why} (store {layout.store})",
             EXIT_FAILED)
    _exit_partial(res)


@app.command("backfill")
@handled
def backfill_cmd(
    start: Annotated[str, typer.Option(help="First issue time (UTC).")],
    end: Annotated[str, typer.Option(help="Last issue time (UTC, inclusive, not in the "
                                          "future).")],
    cadence: Annotated[float, typer.Option(help="Hours between issue times.")] = 1.0,
    dask_address: Annotated[str | None, typer.Option(
        help="Existing Dask scheduler (tcp://host:8786; runs the Prefect flow).")] = None,
    workers: Annotated[int, typer.Option(help="Workers of the local Dask cluster (flow "
                                              "only).")] = 2,
    batch_size: Annotated[int | None, typer.Option(
        help="Issue times per batch (one task each; default one week, "
             "flare_core.issuing.BATCH_ISSUE_TIMES).")] = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    series: SeriesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forecasts for every issue time from START to END, published batch by batch.

    With a Prefect server configured (PREFECT_API_URL) or --dask-address this runs the
    `backfill` flow on Dask; otherwise the batches run in this process.
    """
    _prepare_env()
    from flows.layout import Layout
    from tasks.common import floor_hour

    from .local import backfill_local, issue_times, server_url

    t0, t1 = floor_hour(_time(start, "--start")), floor_hour(_time(end, "--end"))
    _not_future(t1, "--end")
    if t1 < t0:
        fail(f"--end {t1.isoformat()} is before --start {t0.isoformat()}", EXIT_USAGE)
    times = issue_times(t0, t1, cadence)
    layout = Layout.of(store)
    url = server_url()
    if url or dask_address:
        from deployments.server import local_server
        from flows.backfill import backfill

        with local_server(), _progress("backfill", layout.forecasts, times):
            res = backfill(t0, t1, str(layout.root), str(model) if model else None,
                           cadence_h=cadence, dask_address=dask_address, n_workers=workers,
                           series=series,
                           **({"batch_size": batch_size} if batch_size is not None else {}))
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TimeElapsedColumn,
        )

        with Progress(SpinnerColumn(), "[progress.description]{task.description}",
                      BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            tid = bar.add_task("backfill", total=len(times))
            res = backfill_local(times, layout, model, batch_size=batch_size, series=series,
                                 on_batch=lambda n: bar.advance(tid, n))
    shown = {k: v for k, v in res.items() if k != "gaps"}
    _echo_result(f"backfill {res['start'][:16]} .. {res['end'][:16]} UTC: "
                 f"{res['issue_times']} of {res['requested']} issue times, {res['rows']} rows, "
                 f"{len(res.get('gaps') or {})} without data",
                 shown if as_json else res, ("forecast_store", "page", "model_dir"), url,
                 as_json)
    if res["rows"] == 0:
        fail(f"nothing forecast from {t0.isoformat()} to {t1.isoformat()}: no fresh SHARP "
             f"record (store {layout.store})", EXIT_FAILED)
    _exit_partial(res)


def _risk_table(rows: Any, title: str):
    from rich.table import Table

    table = Table(title=title)
    for col, just in (("#", "right"), ("HARP", "right"), ("NOAA", "left"),
                      ("model", "left"), ("P(C+)", "right"), ("P(M+)", "right"),
                      ("P(X+)", "right"), ("life h", "right"), ("warn", "left"),
                      ("data UTC", "left")):
        table.add_column(col, justify=just, no_wrap=True)

    def pct(p: float | None) -> str:
        return "-" if p is None else f"{100 * p:.1f}%"

    for r in rows.iter_rows(named=True):
        style = "bold red" if (r["p_m24"] or 0) >= 0.5 else None
        table.add_row(str(r["rank"]), str(r["harpnum"]), r["noaa_ars"] or "", r["model"],
                      pct(r["p_c24"]), pct(r["p_m24"]), pct(r["p_x24"]),
                      "-" if r["mean_lifetime_h"] is None else f"{r['mean_lifetime_h']:.1f}",
                      r["warning_class"] or "",
                      r["t_rec"].strftime("%m-%d %H:%M") if r.get("t_rec") else "",
                      style=style)
    return table


def _where_hint(layout: Any) -> str:
    return (f"looked in {layout.forecasts} (store {layout.root}); point at another store "
            "with --store or FLAREFLOW_STORE")


@app.command("show")
@handled
def show_cmd(
    at: Annotated[str | None, typer.Option("--at", help="Issue time (UTC); default the "
                                                          "latest published.")] = None,
    store: StoreOpt = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model "
                                                              "(e.g. survival).")] = None,
) -> None:
    """Print the regions of one issued forecast, ranked by risk (from the forecast store)."""
    import polars as pl
    from rich.console import Console

    from flare_core.publish.forecast_store import ForecastStore
    from flare_core.publish.summary import rank_regions
    from flows.layout import Layout
    from tasks.common import floor_hour

    layout = Layout.of(store)
    t_at = floor_hour(_time(at, "--at")) if at else None
    if not layout.forecasts.is_file():
        fail(f"no forecast published: {_where_hint(layout)}", EXIT_FAILED)
    fs = ForecastStore(layout.forecasts)
    latest = fs.latest_issue_time()
    if latest is None:
        fail(f"no forecast published: {_where_hint(layout)}", EXIT_FAILED)
    t = t_at or latest
    rows = fs.read(issue_time=t)
    if model:
        known = sorted(set(rows["model"]) | set(fs.read(issue_time=latest)["model"]))
        if model not in known and fs.latest_issue_time(model=model) is None:
            fail(f"unknown model {model!r}; known: {', '.join(known)}", EXIT_USAGE)
        rows = rows.filter(pl.col("model") == model)
    if rows.height == 0:
        fail(f"no forecast{f' of {model}' if model else ''} issued at {t.isoformat()}; the "
             f"latest is {latest.isoformat()} ({_where_hint(layout)})", EXIT_FAILED)
    ranked = rank_regions(rows)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(_risk_table(ranked, f"Flare forecast issued {t:%Y-%m-%d %H:%M} UTC, "
                                        f"window (t, t + 24 h]"))


@app.command("score")
@handled
def score_cmd(
    start: Annotated[str, typer.Option(help="First issue time (UTC).")],
    end: Annotated[str, typer.Option(help="Last issue time (UTC, inclusive).")],
    store: StoreOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score the forecasts published from START to END against the flares that happened.

    A table per model and target (P(M+), P(C+)); --json prints the whole result. With a
    Prefect server configured (PREFECT_API_URL) this runs the `evaluate` flow.
    """
    _prepare_env()
    from rich.console import Console

    from flows.layout import Layout

    from .local import score_local, server_url

    t0, t1 = _time(start, "--start"), _time(end, "--end")
    if t1 < t0:
        fail(f"--end {t1.isoformat()} is before --start {t0.isoformat()}", EXIT_USAGE)
    layout = Layout.of(store)
    url = server_url()
    if url:
        from flows.evaluate import evaluate

        res = evaluate(t0, t1, str(layout.root), str(model) if model else None)
    else:
        res = score_local(t0, t1, layout, model)
    if as_json:
        typer.echo(json.dumps(res, indent=1, default=str))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    if not res.get("models"):
        fail(f"nothing to score from {t0.isoformat()} to {t1.isoformat()}: {res['rows']} "
             f"forecast rows, {res['not_yet_verifiable']} not yet verifiable "
             f"({_where_hint(layout)})", EXIT_FAILED)
    _print_scores(console, res, targets=("p_m24", "p_c24"))
    console.print(f"{res['rows']} forecast rows of {res['issue_times']} issue times; "
                  f"{res['not_yet_verifiable']} not yet verifiable (flare list ends before "
                  "their window)")
    console.print(_run_note(url))


@app.command("serve")
def serve_cmd(
    store: StoreOpt = None,
    port: Annotated[int, typer.Option(help="Port of the local Prefect server.")] = 4200,
    ui: Annotated[bool, typer.Option(help="Serve the Prefect UI too.")] = True,
    fetch: Annotated[bool, typer.Option(help="Hourly forecasts fetch JSOC/HEK data.")] = True,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Serve only this deployment (repeatable; for trials and tests).",
        hidden=True)] = None,
    interval: Annotated[str | None, typer.Option(
        help="Replace every cron schedule by this interval, e.g. 30s, 5m (trials, tests).",
        hidden=True)] = None,
) -> None:
    """Serve the four deployments on a local Prefect server (127.0.0.1).

    Hourly forecast, daily ingest, weekly retrain and backfill (start/end set in the UI).
    The API needs the credentials in $FLAREFLOW_API_AUTH or <store>/api_auth (generated on
    first start, mode 0600); the server log is <store>/logs/prefect-server.log. Ctrl-C or
    SIGTERM stops the deployments and the server. Hidden options for trials: --only NAME
    (repeatable) and --interval 30s.
    """
    _prepare_env()
    from deployments.definitions import serve_all

    try:
        serve_all(store, port=port, ui=ui, fetch=fetch, only=only or None,
                  interval_s=_interval_s(interval))
    except ValueError as e:  # ConfigError: a bad option or FLAREFLOW_* setting
        fail(str(e), exit_code_of(e))


def _interval_s(value: str | None) -> float | None:
    """``30``, ``30s``, ``5m``, ``1h`` as seconds; None stays None."""
    if value is None:
        return None
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    num, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "s")
    try:
        seconds = float(num) * units[unit]
    except ValueError as e:
        raise typer.BadParameter(f"--interval: not a duration like 30s or 5m: {value!r}") \
            from e
    if not seconds > 0:
        raise typer.BadParameter(f"--interval must be > 0, got {value!r}")
    return seconds


#: flow name -> the demo phase it starts (the CLI watches Prefect's flow-run log records)
_DEMO_PHASES = {"ingest-files": "ingest the bundled files", "train": "train the models",
                "backfill": "forecast + publish", "evaluate": "score the published forecasts"}


class _PhaseWatcher:
    """A rich progress display of the demo's phases: a spinner line per phase, started when
    Prefect logs the phase's flow run beginning, and a bar of the published issue times.

    Between training and the forecasts the demo replays JSOC hour by hour: that line starts
    when the train flow finishes.
    """

    def __init__(self, progress: Any, forecast_store: Path, wanted: list[datetime]) -> None:
        import logging

        self.progress, self.forecast_store, self.want = progress, forecast_store, set(wanted)
        self.current: Any = None
        self.forecast_task: Any = None
        self.stop = threading.Event()
        watcher = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    watcher.on_record(record)
                except Exception:  # noqa: BLE001 - the display must never break the run
                    pass

        self.handler = _Handler(level=logging.INFO)
        self.logger = logging.getLogger("prefect.flow_runs")

    def phase(self, name: str, total: int | None = None) -> Any:
        if self.current is not None:
            task = self.progress.tasks[self.current]
            self.progress.update(self.current, total=task.total or 1,
                                 completed=task.total or 1)
        self.current = self.progress.add_task(name, total=total)
        return self.current

    def on_record(self, record: Any) -> None:
        msg = record.getMessage()
        flow_name = getattr(record, "flow_name", None)
        if msg.startswith("Beginning") and flow_name in _DEMO_PHASES:
            if flow_name == "backfill":
                self.forecast_task = self.phase(_DEMO_PHASES[flow_name], len(self.want))
            else:
                self.phase(_DEMO_PHASES[flow_name])
        elif msg.startswith("Finished in state") and flow_name == "train":
            self.phase("replay JSOC hour by hour into the store")

    def poll(self) -> None:
        from flare_core.publish.forecast_store import ForecastStore

        while not self.stop.wait(2.0):
            if self.forecast_task is None or not self.forecast_store.is_file():
                continue
            try:
                done = len(self.want.intersection(
                    ForecastStore(self.forecast_store, lock_timeout_s=30.0).issue_times()))
            except Exception:  # noqa: BLE001 - the display must never break the run
                continue
            self.progress.update(self.forecast_task, completed=done)

    def __enter__(self) -> _PhaseWatcher:
        self.logger.addHandler(self.handler)
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.logger.removeHandler(self.handler)
        if exc[0] is None and self.current is not None:
            self.phase("done")
            self.progress.update(self.current, total=1, completed=1)


@app.command("demo")
@handled
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Output directory (created).")],
    start: Annotated[str | None, typer.Option(help="First issue time (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last issue time (UTC).")] = None,
    workers: Annotated[int, typer.Option(help="Dask workers.")] = 2,
) -> None:
    """The offline main job: bundled real data to published, scored forecasts.

    Phases, each shown with a spinner: start a local Prefect server, ingest, train, replay,
    forecast + publish (a bar of issue times), score; no network, no external server.
    """
    _prepare_env()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TimeElapsedColumn,
    )

    from deployments.server import local_server
    from flows.demo import DEMO_END, DEMO_START, demo
    from flows.layout import Layout

    from .local import issue_times

    console = Console()
    t0 = _time(start, "--start") or DEMO_START
    t1 = _time(end, "--end") or DEMO_END
    out = out.resolve()
    layout = Layout.of(out / "store")
    began = time.perf_counter()
    with Progress(SpinnerColumn(finished_text="[green]done"),
                  "[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        watcher = _PhaseWatcher(bar, layout.forecasts, issue_times(t0, t1))
        watcher.phase("start a local Prefect server")
        with local_server() as api:
            bar.console.print(f"[bold]flareflow demo[/]: Prefect API {api}; output {out}")
            with watcher:
                res = demo(str(out), t0, t1, n_workers=workers)
    (out / "demo_summary.json").write_text(json.dumps(res, indent=1, default=str))
    bf = res["backfill"]
    console.print(f"\n[bold green]done[/] in {time.perf_counter() - began:.0f} s: "
                  f"{bf['issue_times']} of {bf['requested']} issue times, {bf['rows']} rows")
    for name in ("store", "model_dir", "forecast_store", "scoreboard", "page", "evaluation"):
        if res.get(name) is not None:
            console.print(f"  {name:15s} {res[name]}")
    console.print(f"  {'summary':15s} {out / 'demo_summary.json'}")
    _print_scores(console, res["scores"])


def _print_scores(console: Any, scores: dict[str, Any],
                  targets: tuple[str, ...] = ("p_m24",)) -> None:
    """The skill of the published forecasts (P(M+), optionally P(C+)) against the flares
    that happened: one row per model and target."""
    from rich.table import Table

    names = {"p_m24": "P(M+)", "p_c24": "P(C+)"}
    table = Table(title=f"{'/'.join(names[t] for t in targets)} in 24 h, forecasts "
                        f"{scores['start'][:16]} .. {scores['end'][:16]} UTC vs. observed "
                        "flares")
    for col in ("model", "target", "n", "events", "Brier", "BSS", "ROC AUC", "TSS@0.5"):
        table.add_column(col, justify="left" if col in ("model", "target") else "right")

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    for model, per in sorted(scores.get("models", {}).items()):
        for t in targets:
            m = per.get(t)
            if m:
                table.add_row(model, names[t], str(m["n"]), str(m["events"]), f(m["brier"]),
                              f(m["bss"]), f(m["auc"]), f((m.get("at_0.5") or {}).get("tss")))
    console.print(table)
