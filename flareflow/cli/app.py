"""The typer application objects that the command modules attach to, and the options of
``flareflow`` itself (``--version``, ``--verbose``)."""

from __future__ import annotations

from typing import Annotated

import typer

from .logs import setup_logging

__all__ = ["app", "ingest_app", "store_app"]

app = typer.Typer(
    name="flareflow",
    help="Operational solar-flare forecasting: ingest SHARP + GOES data, train, forecast, "
         "publish. Exit codes: 0 ok, 1 failed, 2 bad input or usage, 3 partial (some regions "
         "failed).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(help="Fetch or read data into the local store.", no_args_is_help=True)
store_app = typer.Typer(help="Inspect the local store.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(store_app, name="store")


def _version(value: bool) -> None:
    if value:
        from flareflow import __version__

        typer.echo(f"flareflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Debug log lines, and tracebacks after "
                                               "error lines.")] = False,
) -> None:
    setup_logging(verbose)
