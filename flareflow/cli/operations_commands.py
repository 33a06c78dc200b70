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

__all__ = ["forecast_cmd", "backfill_cmd", "show_cmd", "score_cmd", "serve_cmd", "demo_cmd"]

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="Installation root (default: $FLAREFLOW_STORE or the user data dir).")]
ModelOpt = Annotated[Path | None, typer.Option(
    "--model", help="MODEL_DIR (default: the latest trained into the store).")]


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
    if value is None:
        return None
    from tasks.common import parse_utc

    try:
        return parse_utc(value)
    except ValueError as e:
        raise typer.BadParameter(f"{name}: not an ISO 8601 time: {value!r}") from e


def _fail(e: Exception) -> typer.Exit:
    typer.secho(f"error: {type(e).__name__}: {e}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


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


@app.command("forecast")
def forecast_cmd(
    at: Annotated[str | None, typer.Option("--at", help="Issue time (UTC); default now, "
                                                          "rounded down to the hour.")] = None,
    store: StoreOpt = None,
    model: ModelOpt = None,
    fetch: Annotated[bool, typer.Option(help="Fetch NRT SHARP (JSOC) and flares (HEK) "
                                             "first.")] = False,
) -> None:
    """Issue and publish the forecast of one hour (store, scoreboard JSON, plots, page)."""
    _prepare_env()
    from flows.forecast import forecast

    try:
        res = forecast(_time(at, "--at"), str(store) if store else None,
                       str(model) if model else None, fetch=fetch)
    except Exception as e:
        raise _fail(e) from e
    typer.echo(json.dumps(res, indent=1, default=str))


@app.command("backfill")
def backfill_cmd(
    start: Annotated[str, typer.Option(help="First issue time (UTC).")],
    end: Annotated[str, typer.Option(help="Last issue time (UTC, inclusive).")],
    cadence: Annotated[float, typer.Option(help="Hours between issue times.")] = 1.0,
    dask_address: Annotated[str | None, typer.Option(
        help="Existing Dask scheduler (tcp://host:8786); default a local cluster.")] = None,
    workers: Annotated[int, typer.Option(help="Workers of the local Dask cluster.")] = 2,
    batch_size: Annotated[int, typer.Option(help="Issue times per task.")] = 24,
    store: StoreOpt = None,
    model: ModelOpt = None,
) -> None:
    """Forecasts for every issue time from START to END on Dask, published as they finish."""
    _prepare_env()
    from deployments.server import local_server
    from flows.backfill import backfill, issue_times
    from flows.layout import Layout

    t0, t1 = _time(start, "--start"), _time(end, "--end")
    layout = Layout.of(store)
    try:
        with local_server(), _progress("backfill", layout.forecasts,
                                       issue_times(t0, t1, cadence)):
            res = backfill(t0, t1, str(layout.root), str(model) if model else None,
                           cadence_h=cadence, batch_size=batch_size,
                           dask_address=dask_address, n_workers=workers)
    except Exception as e:
        raise _fail(e) from e
    typer.echo(json.dumps({k: v for k, v in res.items() if k != "gaps"}, indent=1,
                          default=str))


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


@app.command("show")
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
    fs = ForecastStore(layout.forecasts)
    t = floor_hour(_time(at, "--at")) if at else fs.latest_issue_time()
    if t is None:
        raise _fail(FileNotFoundError(f"no forecast published in {layout.forecasts}"))
    rows = fs.read(issue_time=t)
    if model:
        rows = rows.filter(pl.col("model") == model)
    if rows.height == 0:
        raise _fail(LookupError(f"no forecast issued at {t.isoformat()} in {layout.forecasts}"))
    ranked = rank_regions(rows)
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(_risk_table(ranked, f"Flare forecast issued {t:%Y-%m-%d %H:%M} UTC, "
                                        f"window (t, t + 24 h]"))


@app.command("score")
def score_cmd(
    start: Annotated[str, typer.Option(help="First issue time (UTC).")],
    end: Annotated[str, typer.Option(help="Last issue time (UTC, inclusive).")],
    store: StoreOpt = None,
    model: ModelOpt = None,
) -> None:
    """Score the forecasts published from START to END against the flares that happened."""
    _prepare_env()
    from flows.evaluate import evaluate

    try:
        res = evaluate(_time(start, "--start"), _time(end, "--end"),
                       str(store) if store else None, str(model) if model else None)
    except Exception as e:
        raise _fail(e) from e
    typer.echo(json.dumps(res, indent=1, default=str))


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
        raise _fail(e) from e


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


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Output directory (created).")],
    start: Annotated[str | None, typer.Option(help="First issue time (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last issue time (UTC).")] = None,
    workers: Annotated[int, typer.Option(help="Dask workers.")] = 2,
) -> None:
    """The offline main job: bundled real data to published, scored forecasts.

    Store -> features -> models -> hourly backfill of a week with M flares -> forecast
    store, scoreboard JSON, plots, page, scores; no network, no external server.
    """
    _prepare_env()
    from rich.console import Console

    from deployments.server import local_server
    from flows.backfill import issue_times
    from flows.demo import DEMO_END, DEMO_START, demo
    from flows.layout import Layout

    console = Console()
    t0 = _time(start, "--start") or DEMO_START
    t1 = _time(end, "--end") or DEMO_END
    out = out.resolve()
    layout = Layout.of(out / "store")
    began = time.perf_counter()
    try:
        with local_server() as api:
            console.print(f"[bold]flareflow demo[/]: Prefect API {api}; output {out}")
            with _progress("forecasts published", layout.forecasts, issue_times(t0, t1)):
                res = demo(str(out), t0, t1, n_workers=workers)
    except Exception as e:
        raise _fail(e) from e
    (out / "demo_summary.json").write_text(json.dumps(res, indent=1, default=str))
    bf = res["backfill"]
    console.print(f"\n[bold green]done[/] in {time.perf_counter() - began:.0f} s: "
                  f"{bf['issue_times']} of {bf['requested']} issue times, {bf['rows']} rows")
    for name in ("store", "model_dir", "forecast_store", "scoreboard", "page", "evaluation"):
        console.print(f"  {name:15s} {res[name]}")
    console.print(f"  {'summary':15s} {out / 'demo_summary.json'}")
    _print_scores(console, res["scores"])


def _print_scores(console: Any, scores: dict[str, Any]) -> None:
    """The skill of the published P(M+) forecasts against the flares that happened."""
    from rich.table import Table

    table = Table(title=f"P(M+ in 24 h) forecasts {scores['start'][:16]} .. "
                        f"{scores['end'][:16]} UTC vs. observed flares")
    for col in ("model", "n", "events", "Brier", "BSS", "ROC AUC"):
        table.add_column(col, justify="left" if col == "model" else "right")

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    for model, per in sorted(scores.get("models", {}).items()):
        m = per.get("p_m24")
        if m:
            table.add_row(model, str(m["n"]), str(m["events"]), f(m["brier"]), f(m["bss"]),
                          f(m["auc"]))
    console.print(table)
