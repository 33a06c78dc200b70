"""The modelling table: running SHARP statistics + flare history (+ labels) per record.

`read_inputs` reads SHARP files and flare lists of any supported format and attaches HARP
numbers to flares; `build_model_dataset` (the windows of a `TrainConfig`) and
`build_dataset` build the table; `LogScaler` is the fitted log transform of its heavy-tailed
columns. `build_model_dataset` is what the model trainers and the forecast flow call. Each output row is
one distinct ``(harpnum, t_rec)`` record; inputs use only records at or before ``t_rec`` and
flares that peaked before it, labels only what comes after (see `flare_core.features`,
`flare_core.history`, `flare_core.labels`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .errors import ConfigError
from .features import RunningStats, build_running_stats, drop_duplicate_records, utc_time_column
from .history import HISTORY_COLUMNS, build_flare_history
from .labels import label_columns, label_time_to_event

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["KEY_COLUMNS", "DatasetColumns", "build_dataset", "build_model_dataset",
           "read_inputs", "DEFAULT_HARP_MAP", "NRT_HARP_MAP", "LogScaler", "time_range"]

logger = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, str] = ("harpnum", "t_rec")


@dataclass(frozen=True)
class DatasetColumns:
    """Column groups of a `build_dataset` frame.

    Attributes
    ----------
    features : tuple of str
        Running statistics ``{keyword}__{stat}``.
    history : tuple of str
        Flare-history columns ``history__*``.
    labels : tuple of str
        Label columns present (empty for ``with_labels=False``).
    """

    features: tuple[str, ...]
    history: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def inputs(self) -> list[str]:
        """Every model-input column: features then history (never keys or labels)."""
        return [*self.features, *self.history]

    @classmethod
    def of(cls, frame: pl.DataFrame) -> DatasetColumns:
        """Split the columns of a `build_dataset` frame into their groups."""
        history = tuple(c for c in frame.columns if c.startswith("history__"))
        features = tuple(c for c in frame.columns if "__" in c and c not in history)
        labels = tuple(c for c in frame.columns if c not in (*KEY_COLUMNS, *features, *history))
        return cls(features=features, history=history, labels=labels)


def time_range(frame: pl.DataFrame) -> dict[str, str | None]:
    """``{"start", "end"}``: ISO times of the first and last ``t_rec`` (None when empty)."""
    if frame.height == 0:
        return {"start": None, "end": None}
    return {"start": frame["t_rec"].min().isoformat(), "end": frame["t_rec"].max().isoformat()}


def build_dataset(
    sharp: pl.DataFrame,
    flares: pl.DataFrame | None,
    *,
    features: RunningStats = RunningStats(),
    tmax_h: float = 144.0,
    horizon_h: float = 24.0,
    with_labels: bool = True,
    censor: Literal["last_observation", "tmax"] = "last_observation",
) -> pl.DataFrame:
    """Join running statistics, flare history and (optionally) labels on the record keys.

    Parameters
    ----------
    sharp : pl.DataFrame
        SHARP keyword frame (`flare_core.schema`), any order; duplicates of
        ``(harpnum, t_rec)`` are dropped keeping the last (counted and logged).
    flares : pl.DataFrame or None
        Flare-event frame with ``harpnum`` filled. ``None`` is allowed only with
        ``with_labels=False``: the history columns are then null (unknown, not zero).
    features : RunningStats
        Running-statistics settings; its ``window_h`` is also the B/C history window.
    tmax_h, horizon_h, censor
        Label settings, see `flare_core.labels.label_time_to_event`.
    with_labels : bool
        ``False`` for inference: no label columns, and no look at flares after ``t_rec``.

    Returns
    -------
    pl.DataFrame
        Sorted by ``(harpnum, t_rec)``: the keys, the feature columns, `HISTORY_COLUMNS`,
        then `flare_core.labels.label_columns` when ``with_labels``. `DatasetColumns.of`
        splits the columns into these groups.
    """
    if flares is None and with_labels:
        raise ConfigError("labels need a flare list: pass flares or with_labels=False")
    records, _ = drop_duplicate_records(utc_time_column(sharp, "t_rec"))
    frame = build_running_stats(records, features)
    if flares is None:
        logger.warning("no flare list given: flare-history columns are null")
        frame = frame.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(c) for c in HISTORY_COLUMNS])
    else:
        history = build_flare_history(records, flares, window_h=features.window_h)
        frame = frame.join(history, on=list(KEY_COLUMNS), how="left", maintain_order="left")
    if with_labels:
        labels = label_time_to_event(records, flares, tmax_h=tmax_h, censor=censor,
                                     horizon_h=horizon_h)
        frame = frame.join(labels, on=list(KEY_COLUMNS), how="left", maintain_order="left")
        assert frame.columns[-len(label_columns(horizon_h)):] == label_columns(horizon_h)
    logger.info("dataset: %d records x %d columns (labels: %s)", frame.height, frame.width,
                with_labels)
    return frame


#: The JSOC HARP<->NOAA map bundled with the repository (data/harp_noaa, see data/README.md).
DEFAULT_HARP_MAP = Path(__file__).resolve().parents[1] / "data" / "harp_noaa" / (
    "all_harps_with_noaa_ars.txt"
)
#: The JSOC HARP<->NOAA map of the near-real-time series (data/sharp_nrt), used for NRT data.
NRT_HARP_MAP = Path(__file__).resolve().parents[1] / "data" / "sharp_nrt" / "harp_noaa_nrt.txt"


def read_inputs(
    data: Sequence[str | Path],
    flares: Sequence[str | Path],
    *,
    harp_map: str | Path | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read SHARP files and flare lists of any supported format; attach HARPs to flares.

    Parameters
    ----------
    data : sequence of path-like
        SHARP keyword files (sun2022 CSV, SWAN-SF, store export, ...), read with
        `flare_core.sources.read_file`; each must be of kind ``"sharp"``.
    flares : sequence of path-like
        Flare lists of kind ``"flares"``.
    harp_map : path-like, optional
        HARP<->NOAA map of the data's HARP numbering; default the bundled map of that
        numbering: `NRT_HARP_MAP` for near-real-time data, else `DEFAULT_HARP_MAP`. Flares
        whose ``harpnum`` is unset get it from their ``noaa_ar``
        (`flare_core.sources.attach_harpnum`). Raises `ConfigError` when the data mix both
        numberings or the map is of the other one (a HARP number of one series is never
        looked up in the other series' map).

    Returns
    -------
    (sharp, flares) : tuple of pl.DataFrame
        Canonical frames (`flare_core.schema`), the SHARP rows concatenated in input order.
    """
    from .schema import conform_flares, conform_sharp
    from .sources import attach_harpnum, detect_format, read_file, read_harp_noaa_map
    from .sources.files import NOAA_KEYED_FORMATS

    if not data:
        raise ConfigError("no SHARP data file given")
    if not flares:
        raise ConfigError("no flare list given")
    from .schema import SERIES_DEFINITIVE_CEA, harp_numbering
    from .sources.harp_noaa import harp_map_series

    numbering: dict[str, str] = {}  # "nrt" / "definitive" -> the first file of it

    def map_path() -> Path:
        kind = next(iter(numbering), "definitive")
        if harp_map is None:
            return NRT_HARP_MAP if kind == "nrt" else DEFAULT_HARP_MAP
        given = Path(harp_map)
        if harp_numbering(harp_map_series(given)) != kind:
            raise ConfigError(
                f"--harp-map {given} lists {harp_numbering(harp_map_series(given))} HARP "
                f"numbers, but {numbering.get(kind, 'the data')} holds {kind} SHARP records: "
                f"HARP numbers differ between the series; pass the {kind} map "
                f"({NRT_HARP_MAP if kind == 'nrt' else DEFAULT_HARP_MAP})")
        return given

    @functools.cache
    def the_map() -> pl.DataFrame:  # read once, and only if some input needs it
        path = map_path()
        if not path.is_file():
            raise ConfigError(f"HARP<->NOAA map not found: {path} (pass --harp-map)")
        return read_harp_noaa_map(path)

    sharp_frames, flare_frames = [], []
    for path in data:
        # NOAA-keyed SHARP formats (Hollanda, FlareML) take their harpnum from the map
        fmt = detect_format(Path(path))
        kind, frame = read_file(path, fmt, harp_map=the_map() if fmt in NOAA_KEYED_FORMATS
                                else None)
        if kind != "sharp":
            raise ConfigError(f"{path}: expected SHARP keyword data, found a {kind!r} file")
        frame = conform_sharp(frame)
        for series in (frame["series"].unique().to_list() if "series" in frame.columns
                       else []):
            numbering.setdefault(harp_numbering(series or SERIES_DEFINITIVE_CEA), str(path))
        if len(numbering) > 1:
            raise ConfigError(f"the SHARP data mix near-real-time ({numbering['nrt']}) and "
                              f"definitive ({numbering['definitive']}) records, whose HARP "
                              "numbers differ: train and forecast on one of them")
        sharp_frames.append(frame)
    for path in flares:
        kind, frame = read_file(path)
        if kind != "flares":
            raise ConfigError(f"{path}: expected a flare list, found a {kind!r} file")
        flare_frames.append(conform_flares(frame))
    sharp = pl.concat(sharp_frames, how="vertical")
    flare_frame = pl.concat(flare_frames, how="vertical")
    if flare_frame["harpnum"].null_count() > 0:
        flare_frame = attach_harpnum(flare_frame, the_map(),
                                     records=sharp.select("harpnum", "t_rec"))
    logger.info("read %d SHARP records of %d regions from %d file(s); %d flares (%d with a "
                "HARP) from %d list(s)", sharp.height, sharp["harpnum"].n_unique(), len(data),
                flare_frame.height, flare_frame["harpnum"].is_not_null().sum(), len(flares))
    return sharp, flare_frame


def build_model_dataset(
    sharp: pl.DataFrame,
    flares: pl.DataFrame,
    config: TrainConfig,
    *,
    with_labels: bool = True,
) -> pl.DataFrame:
    """Features (and labels) of every SHARP record, as `train_all` and the forecasts use them.

    A thin call of `flare_core.dataset.build_dataset` with the windows of ``config``, so that
    training and prediction compute identical features.

    Parameters
    ----------
    sharp : pl.DataFrame
        Canonical SHARP keyword frame (`flare_core.schema`).
    flares : pl.DataFrame
        Canonical flare frame with ``harpnum`` attached (`flare_core.sources.harp_noaa`).
        Only flares that peaked strictly before a record's ``t_rec`` enter its features.
    config : TrainConfig
    with_labels : bool
        Add the label columns (they need flares after ``t_rec``; never inputs).
    """
    from .features import RunningStats

    kwargs: dict[str, Any] = {
        "features": RunningStats(window_h=config.window_h, long_window_h=config.long_window_h),
        "tmax_h": config.tmax_h,
        "horizon_h": config.horizon_h,
        "with_labels": with_labels,
    }
    return build_dataset(sharp, flares, **kwargs)


class LogScaler(TransformerMixin, BaseEstimator):
    """``sign(x) log1p(|x| / s)`` on the heavy-tailed feature columns, fitted on TRAINING data.

    A column is heavy-tailed when the 99th percentile of ``|x|`` exceeds ``tail_ratio`` times
    its median over the non-zero values (SHARP fluxes and currents, flare-flux sums, their
    differences and slopes). ``s`` is that median, so the transformed column is unit-free.
    Works on polars frames: `transform` returns the frame with those columns replaced and
    every other column unchanged.

    Parameters
    ----------
    features : sequence of str, optional
        Columns considered; default every column of the frame given to `fit`.
    tail_ratio : float

    Attributes
    ----------
    scales_ : dict of str to float
        The heavy-tailed columns and their scales ``s`` (``model.json``'s
        ``log_scaled_features``).

    Examples
    --------
    >>> import polars as pl
    >>> x = pl.DataFrame({"flux": [1.0] * 50 + [1e4] * 2, "flat": [1.0] * 52})
    >>> LogScaler().fit(x).scales_
    {'flux': 1.0}
    >>> round(LogScaler.from_scales({"flux": 1.0}).transform(x)["flux"][-1], 3)
    9.21
    """

    def __init__(self, features: Sequence[str] | None = None, tail_ratio: float = 20.0):
        self.features = features
        self.tail_ratio = tail_ratio

    def fit(self, X: pl.DataFrame, y: Any = None) -> LogScaler:  # noqa: N803
        """Find the heavy-tailed columns of ``X`` and their scales."""
        out: dict[str, float] = {}
        for c in (X.columns if self.features is None else self.features):
            a = np.abs(X[c].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy())
            a = a[np.isfinite(a) & (a > 0)]
            if a.size < 10:
                continue
            med, q99 = np.median(a), np.quantile(a, 0.99)
            if med > 0 and q99 > self.tail_ratio * med:
                out[c] = float(med)
        self.scales_ = out
        return self

    @classmethod
    def from_scales(cls, scales: Mapping[str, float]) -> LogScaler:
        """A fitted scaler with the given ``scales_`` (as read from ``model.json``)."""
        scaler = cls(features=list(scales))
        scaler.scales_ = {c: float(s) for c, s in scales.items()}
        return scaler

    def transform(self, X: pl.DataFrame) -> pl.DataFrame:  # noqa: N803
        """``X`` with every scaled column present replaced by ``sign(x) log1p(|x| / s)``."""
        check_is_fitted(self, "scales_")
        cols = [c for c in self.scales_ if c in X.columns]
        return X.with_columns(
            (pl.col(c).cast(pl.Float64).sign()
             * (pl.col(c).cast(pl.Float64).abs() / self.scales_[c]).log1p()).alias(c)
            for c in cols
        )
