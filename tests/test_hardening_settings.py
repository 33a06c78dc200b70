"""Two weak spots of the reliability issue that are settings, not behaviour under attack:
the local Prefect server's start-up timeout, and the skops version that loads model files."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from deployments.server import START_TIMEOUT_ENV, start_timeout_s
from flare_core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_server_start_timeout_is_generous_and_configurable(monkeypatch) -> None:
    """Was a fixed 20 s, which failed the first forecast on a loaded machine."""
    monkeypatch.delenv(START_TIMEOUT_ENV, raising=False)
    assert start_timeout_s() >= 120.0
    monkeypatch.setenv(START_TIMEOUT_ENV, "300")
    assert start_timeout_s() == 300.0
    for bad in ("0", "-5", "soon"):
        monkeypatch.setenv(START_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match=START_TIMEOUT_ENV):
            start_timeout_s()


def test_skops_is_required_at_012_or_later() -> None:
    """skops before 0.12 had allow-list bypass advisories; model files load through it."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"skops\b", d))
    assert spec.replace(" ", "") == "skops>=0.12"
    installed = tuple(int(x) for x in version("skops").split(".")[:2])
    assert installed >= (0, 12)
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines()
            if line.lower().startswith("skops==")]
    assert pins and tuple(int(x) for x in pins[0].split("==")[1].split(".")[:2]) >= (0, 12)
