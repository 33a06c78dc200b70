"""Versions and content hashes of what a model was trained from.

`hash_frame` identifies the training data of a frame (``model.json``'s ``data_hash`` when no
files are given; files are hashed by `flare_core.io.hash_files`); `code_version` the source
tree (``flare_core.__version__`` plus the git commit when the tree is a checkout).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["hash_frame", "code_version"]


def hash_frame(frame: pl.DataFrame) -> str:
    """SHA-256 (hex) of a frame's content, independent of row order."""
    h = frame.sort(frame.columns[:2] if frame.width >= 2 else frame.columns).hash_rows(seed=0)
    digest = hashlib.sha256(np.sort(h.to_numpy()).tobytes())
    digest.update(",".join(f"{c}:{t}" for c, t in frame.schema.items()).encode())
    return digest.hexdigest()


def code_version() -> str:
    """``flare_core.__version__`` plus the git commit of the source tree when available."""
    import subprocess

    from . import __version__

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+g{commit}" if commit else __version__
