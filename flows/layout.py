"""Where a flareflow installation keeps things, all under one root directory.

::

    <root>/                      the data store (`flare_core.store.Store`: MANIFEST.json, sharp/,
                                 flares/, harp_map/) and Prefect's cached results
                                 (.prefect-results/), snapshots and datasets (work/)
    <root>/models/<hash>/        trained MODEL_DIRs (``latest`` names the newest)
    <root>/published/forecasts.duckdb   the `ForecastStore`
    <root>/published/scoreboard/ one scoreboard JSON per issue time and model
    <root>/published/page/       index.html and the plots of the latest issue time
    <root>/published/evaluation/ scores of published periods
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    """Paths of one installation rooted at ``root`` (see the module docstring)."""

    root: Path

    @classmethod
    def of(cls, root: str | Path | None = None) -> Layout:
        """The layout under ``root`` (default: ``FLAREFLOW_STORE`` / per-user default)."""
        if root is None:
            from flare_core.config import Settings

            root = Settings().store
        return cls(Path(root).expanduser().resolve())

    @property
    def store(self) -> Path:
        return self.root

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def forecasts(self) -> Path:
        return self.published / "forecasts.duckdb"

    @property
    def scoreboard(self) -> Path:
        return self.published / "scoreboard"

    @property
    def page(self) -> Path:
        return self.published / "page"

    @property
    def evaluation(self) -> Path:
        return self.published / "evaluation"

    @property
    def latest_model_file(self) -> Path:
        """A text file holding the path of the newest trained MODEL_DIR."""
        return self.models / "LATEST"

    def latest_model(self) -> Path | None:
        """The newest trained MODEL_DIR recorded by the train flow, or None."""
        f = self.latest_model_file
        if not f.is_file():
            return None
        p = Path(f.read_text().strip())
        return p if (p / "model.json").is_file() else None

    def set_latest_model(self, model_dir: str | Path) -> None:
        """Record ``model_dir`` as the newest model (`flare_core.io.atomic_write`)."""
        from flare_core.io import atomic_write

        atomic_write(self.latest_model_file, str(Path(model_dir).resolve()) + "\n")
