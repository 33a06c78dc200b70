"""``flareflow forecast | backfill | show | score`` on the small trained installation.

Without ``PREFECT_API_URL`` the commands run in-process (`flareflow.cli.local`); with it
they run the flows, and both publish the same rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from flare_core.publish.forecast_store import ForecastStore
from flare_core.store import Store
from flareflow.cli import app
from tests.flows.conftest import ISSUE
from tests.flows.test_forecast_flows import absurd_installation  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _args(installation) -> list[str]:
    return ["--store", str(installation["root"]), "--model", installation["model_dir"]]


def _json(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_forecast_then_show(installation):
    at = ISSUE + timedelta(hours=2)
    res = runner.invoke(app, ["forecast", "--at", at.strftime("%Y-%m-%dT%H:%M"), "--json",
                              *_args(installation)])
    assert res.exit_code == 0, res.output
    out = _json(res.stdout)
    assert out["issue_time"] == at.isoformat() and out["rows"] > 0
    assert out["run"] == "in-process"  # no Prefect server configured
    shown = runner.invoke(app, ["show", "--at", at.isoformat(), "--store",
                                str(installation["root"]), "--model", "logistic"])
    assert shown.exit_code == 0, shown.output
    assert f"{at:%Y-%m-%d %H:%M}" in shown.output and "logistic" in shown.output
    harps = {line.split("│")[2].strip() for line in shown.output.splitlines()
             if line.count("│") > 3}
    assert len(harps) == out["regions"]
    human = runner.invoke(app, ["forecast", "--at", at.isoformat(), "--no-page",
                                *_args(installation)])
    assert human.exit_code == 0 and f"forecast issued {at:%Y-%m-%d %H:%M} UTC" in human.stdout
    assert "run: in-process" in human.stdout


def test_forecast_in_process_equals_the_flow(installation, monkeypatch):
    """The in-process path and the `forecast` flow (server configured) publish equal rows."""
    from prefect.settings import PREFECT_API_URL

    at = ISSUE + timedelta(hours=3)
    fs = ForecastStore(Path(installation["root"]) / "published" / "forecasts.duckdb")
    local = runner.invoke(app, ["forecast", "--at", at.isoformat(), "--json",
                                *_args(installation)])
    assert local.exit_code == 0, local.output
    rows_local = fs.read(issue_time=at)
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # the test harness's
    flow = runner.invoke(app, ["forecast", "--at", at.isoformat(), "--json",
                               *_args(installation)])
    assert flow.exit_code == 0, flow.output
    assert _json(flow.stdout)["run"] == "flow"
    rows_flow = fs.read(issue_time=at)
    assert rows_local.height > 0
    differ = [c for c in rows_local.columns if c != "written_at" and not rows_flow[c].equals(rows_local[c], check_names=True)]
    assert differ == [], (rows_local.select(differ), rows_flow.select(differ))
    assert _json(flow.stdout)["rows"] == _json(local.stdout)["rows"]
    # both publish the headline rows, with the rule that chose them
    headline = rows_local.filter(pl.col("model") == "headline")
    assert headline.height == rows_local["harpnum"].n_unique()
    assert headline["method"].null_count() == 0 and headline["method"][0].startswith("M+: ")
    for res in (_json(local.stdout), _json(flow.stdout)):
        assert res["status"] == "complete" and res["failed_regions"] == {}


def test_partial_forecast_exits_3_and_equals_the_flow(installation, monkeypatch, request):
    """One absurd region (USFLUX 1e308): in-process and as the flow, the other regions are
    published, the absurd one is named (result, stderr, the store's failed_regions) and the
    command exits 3 (status partial); both runners publish the same rows and failures."""
    from prefect.settings import PREFECT_API_URL

    absurd = request.getfixturevalue("absurd_installation")
    root, harp = absurd["root"], absurd["harpnum"]
    args = ["forecast", "--at", ISSUE.isoformat(), "--json", "--no-page", "--store",
            str(root), "--model", installation["model_dir"]]
    fs = ForecastStore(Path(root) / "published" / "forecasts.duckdb")
    local = runner.invoke(app, args)
    assert local.exit_code == 3, local.output
    assert local.stderr.startswith("error: partial: 1 region(s) not forecast: ")
    assert f"HARP {harp}: " in local.stderr and "usflux = 1e+308" in local.stderr
    rows_local, failed_local = fs.read(issue_time=ISSUE), fs.read_failed(issue_time=ISSUE)
    assert harp not in set(rows_local["harpnum"]) and "headline" in set(rows_local["model"])
    assert failed_local["harpnum"].to_list() == [harp]
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    flow = runner.invoke(app, args)
    assert flow.exit_code == 3, flow.output
    assert _json(flow.stdout)["run"] == "flow"
    rows_flow, failed_flow = fs.read(issue_time=ISSUE), fs.read_failed(issue_time=ISSUE)
    for a, b in ((rows_local, rows_flow), (failed_local, failed_flow)):
        assert a.drop("written_at").equals(b.drop("written_at"))
    res_local, res_flow = _json(local.stdout), _json(flow.stdout)
    for key in ("status", "failed_regions", "rows", "regions", "gaps", "series"):
        assert res_local[key] == res_flow[key], key
    assert res_local["status"] == "partial" and list(res_local["failed_regions"]) == [str(harp)]


def test_forecast_of_20_regions_is_fast_without_a_server(installation, tmp_path):
    """One ``flareflow forecast`` for 20 regions, end to end in a fresh interpreter, starts no
    Prefect server and does not even import Prefect (the 3 real regions fresh at ISSUE, each
    also copied under 6 new HARP numbers, as benchmarks/bench_forecast.py does)."""
    src = Store(installation["root"])
    sharp = src.read_sharp(start=ISSUE - timedelta(days=3), end=ISSUE)
    copies = pl.concat([sharp.with_columns(pl.col("harpnum") + k * 1_000_000)
                        for k in range(7)])
    root = tmp_path / "busy"
    st = Store(root)
    st.write_harp_map(src.read_harp_map())
    st.write_sharp(copies)
    st.write_flares(src.read_flares())
    code = ("import sys, time; t0 = time.perf_counter(); from flareflow.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print('RC', rc, 'PREFECT', 'prefect' in sys.modules, 'S', time.perf_counter() - t0)")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "forecast", "--at", ISSUE.isoformat(),
                           "--store", str(root), "--model", installation["model_dir"],
                           "--json", "--no-page"], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300)
    wall = time.perf_counter() - t0
    assert "RC 0 PREFECT False" in proc.stdout, proc.stdout + proc.stderr
    out = _json(proc.stdout[:proc.stdout.rindex("RC 0")])
    print(f"flareflow forecast, {out['regions']} regions, no server: {wall:.2f} s end to end "
          f"({proc.stdout.split(' S ')[-1].strip()} s in the interpreter)")
    assert out["regions"] >= 20
    # no Prefect import means no temporary server; wall time depends on machine load (16 s
    # without the page at load average 11 on 2 cores, imports of sklearn/skops dominating)
    assert wall < 120


def test_future_issue_time_is_a_usage_error(installation):
    res = runner.invoke(app, ["forecast", "--at", "2030-01-01T00:00", *_args(installation)])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: --at 2030-01-01")
    assert "in the future" in res.stderr
    res = runner.invoke(app, ["backfill", "--start", "2029-12-31", "--end", "2030-01-01",
                              *_args(installation)])
    assert res.exit_code == 2 and "in the future" in res.stderr


def test_nothing_to_forecast_fails(installation):
    res = runner.invoke(app, ["forecast", "--at", "2009-06-01T00:00", *_args(installation)])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: nothing forecast at 2009-06-01T00:00:00+00:00")
    assert res.stderr.count("\n") == 1


def test_bad_time_is_one_line(installation):
    res = runner.invoke(app, ["forecast", "--at", "yesterday-ish", *_args(installation)])
    assert res.exit_code == 2
    assert res.stderr == "error: --at: not an ISO 8601 time: 'yesterday-ish'\n"


def test_no_model_is_one_line_without_traceback(tmp_path):
    res = runner.invoke(app, ["forecast", "--at", ISSUE.isoformat(), "--store", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: no trained model") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.output
    verbose = runner.invoke(app, ["--verbose", "forecast", "--at", ISSUE.isoformat(),
                                  "--store", str(tmp_path)])
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_backfill_in_process(installation):
    t0, t1 = ISSUE + timedelta(hours=10), ISSUE + timedelta(hours=14)
    res = runner.invoke(app, ["backfill", "--start", t0.isoformat(), "--end", t1.isoformat(),
                              "--batch-size", "2", "--json", *_args(installation)])
    assert res.exit_code == 0, res.output
    out = _json(res.stdout)
    assert out["requested"] == 5 and out["rows"] > 0
    fs = ForecastStore(Path(installation["root"]) / "published" / "forecasts.duckdb")
    assert {t0 + timedelta(hours=i) for i in range(5)} <= set(fs.issue_times())


def test_score_table_and_json(installation):
    args = ["score", "--start", ISSUE.isoformat(), "--end",
            (ISSUE + timedelta(hours=3)).isoformat(), "--store", str(installation["root"])]
    runner.invoke(app, ["forecast", "--at", ISSUE.isoformat(), "--no-page",
                        *_args(installation)])
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows"] > 0 and "logistic" in out["models"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) < 40 and not table.stdout.lstrip().startswith("{")
    assert any("logistic" in line and "P(M+)" in line for line in lines)
    assert "ROC AUC" in table.stdout


def test_score_without_a_server_imports_no_prefect(installation):
    """``flareflow score`` in-process: scoring lives in flare_core (no Prefect import)."""
    runner.invoke(app, ["forecast", "--at", ISSUE.isoformat(), "--no-page",
                        *_args(installation)])
    code = ("import sys; from flareflow.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print('RC', rc, 'PREFECT', 'prefect' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run([sys.executable, "-c", code, "score", "--start", ISSUE.isoformat(),
                           "--end", (ISSUE + timedelta(hours=3)).isoformat(), "--store",
                           str(installation["root"]), "--json"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert "RC 0 PREFECT False" in proc.stdout, proc.stdout + proc.stderr
    out = _json(proc.stdout[:proc.stdout.rindex("RC 0")])
    assert out["models"]["logistic"]["p_m24"]["n"] > 0
    assert set(out["models"]["logistic"]) == {"p_m24"}  # logistic forecasts >=M only


def test_show_without_forecasts_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAREFLOW_STORE", str(tmp_path / "nowhere"))
    res = runner.invoke(app, ["show"])
    assert res.exit_code == 1 and "no forecast published" in res.stderr
    assert str(tmp_path / "nowhere") in res.stderr
    assert "--store" in res.stderr and "FLAREFLOW_STORE" in res.stderr
    assert res.stderr.count("\n") == 1


def test_show_unknown_model(installation):
    runner.invoke(app, ["forecast", "--at", ISSUE.isoformat(), "--no-page",
                        *_args(installation)])
    res = runner.invoke(app, ["show", "--store", str(installation["root"]), "--model", "cox"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: unknown model 'cox'; known: ")
    assert "logistic" in res.stderr
    res = runner.invoke(app, ["show", "--store", str(installation["root"]), "--at",
                              "2009-06-01T00:00"])
    assert res.exit_code == 1 and "no forecast issued at 2009-06-01" in res.stderr
    assert "the latest is" in res.stderr


def test_partial_result_exits_3():
    from flareflow.cli.operations_commands import _exit_partial

    _exit_partial({"failed_regions": {}})  # nothing failed: no exit
    with pytest.raises(typer.Exit) as e:
        _exit_partial({"failed_regions": {7115: "SourceUnavailable: timed out"}})
    assert e.value.exit_code == 3
    with pytest.raises(typer.Exit) as e:
        _exit_partial({"status": "partial"})
    assert e.value.exit_code == 3


def test_version():
    from flareflow import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"flareflow {__version__}\n"


def test_now_is_not_future():
    from flareflow.cli.operations_commands import _not_future

    _not_future(datetime.now(UTC).replace(minute=0, second=0, microsecond=0), "--at")
