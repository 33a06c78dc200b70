"""Commands of this group attach to the apps in `flareflow.cli.app`."""

from __future__ import annotations

from .app import app, ingest_app, store_app  # noqa: F401
