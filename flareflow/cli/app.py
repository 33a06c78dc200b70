"""The typer application objects that the command modules attach to."""

from __future__ import annotations

import typer

__all__ = ["app", "ingest_app", "store_app"]

app = typer.Typer(
    name="flareflow",
    help="Operational solar-flare forecasting: ingest SHARP + GOES data, train, forecast, publish.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
ingest_app = typer.Typer(help="Fetch or read data into the local store.", no_args_is_help=True)
store_app = typer.Typer(help="Inspect the local store.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(store_app, name="store")
