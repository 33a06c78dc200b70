"""`flareflow.cli.errors` (one error line, exit codes) and the demo's phase display."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import typer
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from flare_core.errors import ConfigError, DataGapError, ParseError
from flareflow.cli import app
from flareflow.cli.errors import EXIT_FAILED, EXIT_USAGE, exit_code_of, fail, handled


def test_exit_codes_of_library_errors():
    assert exit_code_of(ConfigError("x")) == EXIT_USAGE
    assert exit_code_of(ParseError("x")) == EXIT_USAGE
    assert exit_code_of(DataGapError("x")) == EXIT_FAILED
    assert exit_code_of(RuntimeError("x")) == EXIT_FAILED


def test_handled_prints_one_line(capsys):
    @handled
    def boom() -> None:
        raise DataGapError("no SHARP record\nin the window")

    with pytest.raises(typer.Exit) as e:
        boom()
    assert e.value.exit_code == 1
    err = capsys.readouterr().err
    assert err == "error: no SHARP record in the window\n"
    with pytest.raises(typer.Exit) as e:
        fail("bad --at", 2)
    assert e.value.exit_code == 2


def test_version_and_exit_codes_in_help():
    from flareflow import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"flareflow {__version__}"
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "3 partial" in res.stdout


def test_demo_phases_show_progress_from_the_flow_log():
    """Each demo phase gets its own line as Prefect logs its flow run beginning; the one
    before it is completed, so no bar sits at 0 through a phase."""
    from flareflow.cli.operations_commands import _PhaseWatcher

    t0 = datetime(2023, 12, 8, tzinfo=UTC)
    progress = Progress(console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
    watcher = _PhaseWatcher(progress, __import__("pathlib").Path("/nonexistent.duckdb"),
                            [t0 + timedelta(hours=i) for i in range(5)])
    log = logging.getLogger("prefect.flow_runs")

    def flow_log(msg: str, flow_name: str) -> None:
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, msg, (), None)
        record.flow_name = flow_name
        watcher.handler.handle(record)

    with watcher:
        flow_log("Beginning subflow run 'x' for flow 'ingest-files'", "ingest-files")
        flow_log("Beginning subflow run 'y' for flow 'train'", "train")
        flow_log("Finished in state Completed()", "train")
        flow_log("Beginning subflow run 'z' for flow 'backfill'", "backfill")
    names = [t.description for t in progress.tasks]
    assert names == ["ingest the bundled files", "train the models",
                     "replay JSOC hour by hour into the store", "forecast + publish", "done"]
    assert all(t.finished for t in progress.tasks)
    assert progress.tasks[3].total == 5
