"""What every flareflow task shares: file references, hashes, retry and result-storage policy.

Tasks hand each other `FileRef` values (a path and the SHA-256 of its content), never big
frames or fitted models, so that a task's cache key (``INPUTS + TASK_SOURCE``) changes exactly
when the data behind a path changes. Results are persisted under the store root
(``<store>/.prefect-results``), so deleting a store also forgets what was cached for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from flare_core.errors import SourceUnavailable, StoreError
from flare_core.io import atomic_file, hash_json, hash_path
from flare_core.timeutil import to_utc

__all__ = [
    "FileRef",
    "RESULTS_DIR",
    "NETWORK_RETRY_DELAYS_S",
    "file_sha256",
    "store_fingerprint",
    "write_frame_addressed",
    "retry_on_source_unavailable",
    "retry_on_store_busy",
    "result_storage_for",
    "bind_storage",
    "run_logger",
    "floor_hour",
    "parse_utc",
]

logger = logging.getLogger(__name__)

# Prefect forwards flare_core's records to run logs (PREFECT_LOGGING_EXTRA_LOGGERS=flare_core),
# but an unset level inherits the root logger's WARNING: let INFO through unless configured.
if logging.getLogger("flare_core").level == logging.NOTSET:
    logging.getLogger("flare_core").setLevel(logging.INFO)

#: Sub-directory of the store root holding Prefect's persisted task results (cache records).
RESULTS_DIR = ".prefect-results"
#: Back-off of the network tasks (JSOC, HEK, NOAA), seconds between attempts.
NETWORK_RETRY_DELAYS_S = [10, 60, 300]


@dataclass(frozen=True)
class FileRef:
    """A file (or directory) and the SHA-256 (hex) of its content.

    ``sha256`` is what cache keys see; two refs with the same hash hold the same data.
    """

    path: str
    sha256: str

    @property
    def short(self) -> str:
        """The first 12 hex digits of the hash (for names and logs)."""
        return self.sha256[:12]


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, or of every file of a directory (relative paths +
    bytes): `flare_core.io.hash_path`."""
    return hash_path(path)


def store_fingerprint(store_root: str | Path) -> str:
    """SHA-256 of the committed state of a `flare_core.store.Store` (its manifest tables).

    Every store write commits new, uniquely named Parquet files, and an idempotent re-write
    commits nothing, so the file lists of the manifest identify the content.
    """
    from flare_core.store import Store

    return hash_json(Store(store_root).manifest().get("tables", {}))


def write_frame_addressed(frame: pl.DataFrame, directory: str | Path, prefix: str) -> FileRef:
    """Write ``frame`` as Parquet named by its content hash; returns the `FileRef`.

    The file is written to a temporary name and renamed, so a reader never sees a partial
    file, and writing the same content twice leaves one file.
    """
    with atomic_file(Path(directory) / f"{prefix}.parquet") as f:
        frame.write_parquet(f.path, statistics=False)
        sha = hash_path(f.path)
        f.target = f.target.with_name(f"{prefix}-{sha[:16]}.parquet")
    return FileRef(path=str(f.target), sha256=sha)


def retry_on_store_busy(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only on `StoreError` (a store locked or busy)."""
    try:
        state.result()
    except StoreError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


def retry_on_source_unavailable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the task raised `SourceUnavailable`.

    A `flare_core.errors.SourceError` (the archive answered with an error) or a parsing
    error would fail the same way again, so it is not retried.
    """
    try:
        state.result()
    except SourceUnavailable:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


def result_storage_for(store_root: str | Path) -> Path:
    """Where persisted results go: ``<store_root>/.prefect-results`` (Prefect turns a path
    into a local file system; no block needs registering on the server)."""
    path = Path(store_root).resolve() / RESULTS_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def bind_storage(task_obj: Any, store_root: str | Path) -> Any:
    """``task_obj`` with its results (and so its cache) persisted under the store root."""
    return task_obj.with_options(result_storage=result_storage_for(store_root),
                                 persist_result=True)


def run_logger() -> Any:
    """The Prefect run logger inside a flow or task run, else this package's stdlib logger
    (so the tasks' ``.fn`` can be called from plain code and tests)."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tasks")


def floor_hour(t: datetime) -> datetime:
    """``t`` in UTC, rounded down to the whole hour."""
    return parse_utc(t).replace(minute=0, second=0, microsecond=0)


def parse_utc(t: datetime | str | None) -> datetime:
    """A tz-aware UTC datetime from a datetime or ISO string (naive = UTC; None or ``"now"``
    = now): `flare_core.timeutil.to_utc`. A malformed string raises `ParseError` (a
    ``ValueError``)."""
    if t is None or (isinstance(t, str) and t.strip().lower() == "now"):
        return datetime.now(UTC)
    return to_utc(t)
