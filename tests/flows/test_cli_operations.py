"""``flareflow forecast`` and ``flareflow show`` on the small trained installation."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from flareflow.cli import app
from tests.flows.conftest import ISSUE


def test_forecast_then_show(installation):
    runner = CliRunner()
    at = ISSUE + timedelta(hours=2)
    res = runner.invoke(app, ["forecast", "--at", at.strftime("%Y-%m-%dT%H:%M"),
                              "--store", str(installation["root"]),
                              "--model", installation["model_dir"]])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["issue_time"] == at.isoformat() and out["rows"] > 0
    shown = runner.invoke(app, ["show", "--at", at.isoformat(), "--store",
                                str(installation["root"]), "--model", "logistic"])
    assert shown.exit_code == 0, shown.output
    assert f"{at:%Y-%m-%d %H:%M}" in shown.output and "logistic" in shown.output
    harps = {line.split("│")[2].strip() for line in shown.output.splitlines()
             if line.count("│") > 3}
    assert len(harps) == out["regions"]


def test_score_cli(installation):
    res = CliRunner().invoke(app, ["score", "--start", ISSUE.isoformat(), "--end",
                                   (ISSUE + timedelta(hours=2)).isoformat(), "--store",
                                   str(installation["root"])])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["rows"] > 0 and "logistic" in out["models"]


def test_show_without_forecasts_fails_cleanly(tmp_path):
    res = CliRunner().invoke(app, ["show", "--store", str(tmp_path)])
    assert res.exit_code == 1 and "no forecast published" in res.output
