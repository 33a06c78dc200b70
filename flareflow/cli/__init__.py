"""The ``flareflow`` command line.

Each module registers its commands on the shared typer apps in `app`; heavy imports
(torch, prefect) happen inside the command functions so ``flareflow --help`` stays fast.
"""

from __future__ import annotations

from . import data_commands, model_commands, operations_commands  # noqa: F401  (registers commands)
from .app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``flareflow`` console script."""
    app()
