"""Versions and content hashes of what a model was trained from.

`hash_files` and `hash_frame` identify the training data (``model.json``'s ``data_hash``, the
train flow's cache key); `code_version` the source tree (``flare_core.__version__`` plus the git
commit when the tree is a checkout).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["hash_frame", "hash_files", "code_version"]


def hash_frame(frame: pl.DataFrame) -> str:
    """SHA-256 (hex) of a frame's content, independent of row order."""
    h = frame.sort(frame.columns[:2] if frame.width >= 2 else frame.columns).hash_rows(seed=0)
    digest = hashlib.sha256(np.sort(h.to_numpy()).tobytes())
    digest.update(",".join(f"{c}:{t}" for c, t in frame.schema.items()).encode())
    return digest.hexdigest()


def hash_files(paths: Iterable[str | Path]) -> str:
    """SHA-256 (hex) of the bytes of ``paths`` (sorted by name, directories recursively)."""
    digest = hashlib.sha256()
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    for p in sorted(files):
        digest.update(p.name.encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
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
