"""Frozen settings objects, checked once in a side-effect-free ``__post_init__``.

Deployment values that come from the environment (store root, JSOC e-mail) live in
`Settings` (pydantic-settings); everything else is a plain frozen dataclass passed down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["Settings", "default_store_root", "check_positive"]


def check_positive(name: str, value: float) -> None:
    """Raise `ConfigError` naming the setting if ``value`` is not > 0."""
    if not (isinstance(value, int | float) and value > 0):
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def default_store_root() -> Path:
    """Per-user default store root: ``$XDG_DATA_HOME/flareflow`` or ``~/.local/share/flareflow``."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flareflow"


class Settings(BaseSettings):
    """Deployment settings read from ``FLAREFLOW_*`` environment variables.

    ``FLAREFLOW_STORE`` sets the store root; ``FLAREFLOW_JSOC_EMAIL`` the registered JSOC
    e-mail (needed only for exports); ``FLAREFLOW_JSOC_URL`` points drms at another JSOC
    server (the replay server in tests); ``FLAREFLOW_HEK_URL`` does the same for HEK.
    """

    model_config = SettingsConfigDict(env_prefix="FLAREFLOW_", frozen=True)

    store: Path = default_store_root()
    jsoc_email: str | None = None
    jsoc_url: str | None = None
    hek_url: str | None = None
