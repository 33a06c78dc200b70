"""One JSON document per issue time, in the style of the CCMC Flare Scoreboard.

The CCMC Flare Scoreboard (https://ccmc.gsfc.nasa.gov/scoreboards/flare) takes forecasts as
``{"forecast_submission": {...}}`` documents with ``model``, ``issue_time``, ``mode``,
``full_disk_forecasts`` and ``region_forecasts``; each forecast has a ``prediction_window``
(``start_time``, ``end_time``) and a list of ``flare_probabilities`` (``class``,
``probability``); regions are named by ``region_ids`` (``type`` "NOAA" or "HARP",
``number``). flareflow keeps those names and adds its survival extras per region.

Document layout (validated by `SCOREBOARD_SCHEMA`, JSON Schema draft 2020-12)::

    {
      "forecast_submission": {
        "model": {"short_name": "cox_ph", "version": "v1",
                  "spase_id": "spase://CCMC/SimulationModel/flareflow_cox_ph/v1"},
        "issue_time": "2014-10-22T00:00Z",               # UTC, ISO 8601, "Z"
        "mode": "forecast",                              # or "historical" for a backfill
        "series": "hmi.sharp_720s_nrt",                  # extra: SHARP series read (or null)
        "prediction_window_rule": "...",                 # extra: how the window is meant
        "method": "M+: defn (best validation ...",       # extra: the headline's rule (only
                                                         #   where the rows carry one)
        "failed_regions": [{"harpnum": 4711,             # extra: regions left out, and why
                            "reason": "input: ..."}],
        "full_disk_forecasts": [{
          "prediction_window": {"start_time": "2014-10-22T00:00Z",
                                "end_time": "2014-10-23T00:00Z"},
          "flare_probabilities": [{"class": "C+", "probability": 0.83}, ...],
          "number_of_regions": 3                         # regions combined
        }],
        "region_forecasts": [{
          "region_ids": [{"type": "HARP", "number": "4698"},
                         {"type": "NOAA", "number": "12192"}],
          "data_time": "2014-10-21T23:48Z",              # newest SHARP record used (or null)
          "prediction_window": {...},                    # this region's window (below)
          "flare_probabilities": [{"class": "M+", "probability": 0.31}, ...],
          "absent": {"C+": "the model forecasts >=M flares only"},  # extra: classes left out
          "mean_lifetime_h": 34.2,                       # extra: restricted mean time to the
                                                         #   next >=M flare, hours after issue
          "lifetime_label": "restricted mean time ...",  # extra: its words (lifetime_label)
          "warning_class": "M",                          # extra: the model's warning, or null
          "survival_curve": {"time_h": [0, 6, ...],      # extra: S(t), t hours after issue
                             "survival_probability": [1.0, 0.93, ...]}  # (or null)
        }, ...]
      }
    }

``class`` is a threshold: "C+" means a flare of GOES class C1.0 or above peaks in the
region's ``prediction_window``; likewise "M+" and "X+". Within a region C+ >= M+ >= X+
(`flare_core.forecasting.project_class_probabilities`). Every model, every region and the
full disk forecast the same window, ``(issue_time, issue_time + 24 h]``
(`flare_core.publish.forecast_store`, "Prediction window": the survival model re-based to
the issue time, the binary models' record-time value used for it under stationarity over
the lead, less than the freshness); ``prediction_window_rule`` says so in the document.

A class the model does not forecast is left out of ``flare_probabilities`` and named in the
region's ``absent`` with the reason (`flare_core.publish.forecast_store.absent_class_reason`).
The full-disk probability is ``1 - prod(1 - p_region)`` over the forecast regions
(`full_disk_probabilities`); it is left out when any region lacks that class. Regions left
out of the issue time (invalid inputs or outputs, failed fetches) are listed in
``failed_regions`` and counted in no probability. Probabilities are rounded to 4 decimals
(the scoreboard's format), mean lifetimes to 0.01 h.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import polars as pl

from ..config import check_positive
from ..errors import ParseError
from ..io import atomic_write
from ..models.lifetime import lifetime_label
from ..timeutil import to_utc
from .forecast_store import (
    PROBABILITY_COLUMNS,
    absent_class_reason,
    conform_failed,
    conform_forecasts,
)
from .full_disk import full_disk_probabilities

__all__ = [
    "SCOREBOARD_SCHEMA",
    "FLARE_CLASS_LABELS",
    "MODES",
    "build_scoreboard_document",
    "validate_scoreboard_document",
    "write_scoreboard_json",
    "read_scoreboard_json",
    "scoreboard_filename",
    "dumps_document",
    "PREDICTION_WINDOW_RULE",
]

logger = logging.getLogger(__name__)

#: Probability column -> scoreboard ``class`` label (a "class or above" threshold).
FLARE_CLASS_LABELS: dict[str, str] = dict(zip(PROBABILITY_COLUMNS, ("C+", "M+", "X+"),
                                              strict=True))
#: Allowed ``mode`` values (as in the CCMC scoreboards).
MODES: tuple[str, ...] = ("forecast", "historical", "nowcast", "simulated_realtime_forecast")
_DECIMALS = 4  # probabilities in decimal format, 4 places, as the scoreboard asks
_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$"

_time = {"type": "string", "pattern": _TIME_PATTERN}
_probabilities = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["class", "probability"],
        "additionalProperties": False,
        "properties": {
            "class": {"enum": list(FLARE_CLASS_LABELS.values())},
            "probability": {"type": "number", "minimum": 0, "maximum": 1},
        },
    },
}
#: What ``prediction_window`` means in every document (module docstring).
PREDICTION_WINDOW_RULE = (
    "(issue_time, issue_time + 24 h] for every model and region: the survival model is "
    "re-based to the issue time (conditioned on no >=M flare since the record); the binary "
    "models' probability for the 24 h after their record (at most the freshness before the "
    "issue time) is used for it, assuming the flare rate stationary over that lead")
_window = {
    "type": "object",
    "required": ["start_time", "end_time"],
    "additionalProperties": False,
    "properties": {"start_time": _time, "end_time": _time},
}

#: JSON Schema (draft 2020-12) of a flareflow scoreboard document.
SCOREBOARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://flareflow.invalid/schemas/scoreboard-forecast-1.json",
    "title": "flareflow forecast, CCMC Flare Scoreboard style",
    "type": "object",
    "required": ["forecast_submission"],
    "additionalProperties": False,
    "properties": {
        "forecast_submission": {
            "type": "object",
            "required": ["model", "issue_time", "mode", "full_disk_forecasts",
                         "region_forecasts"],
            "additionalProperties": False,
            "properties": {
                "model": {
                    "type": "object",
                    "required": ["short_name", "version"],
                    "additionalProperties": False,
                    "properties": {
                        "short_name": {"type": "string", "minLength": 1},
                        "version": {"type": "string", "minLength": 1},
                        "spase_id": {"type": "string"},
                    },
                },
                "issue_time": _time,
                "mode": {"enum": list(MODES)},
                "series": {"type": ["string", "null"]},
                "prediction_window_rule": {"type": "string"},
                "method": {"type": "string"},
                "failed_regions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["harpnum", "reason"],
                        "additionalProperties": False,
                        "properties": {"harpnum": {"type": "integer", "minimum": 0},
                                       "reason": {"type": "string", "minLength": 1}},
                    },
                },
                "full_disk_forecasts": {
                    "type": "array",
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["prediction_window", "flare_probabilities",
                                     "number_of_regions"],
                        "additionalProperties": False,
                        "properties": {
                            "prediction_window": _window,
                            "flare_probabilities": _probabilities,
                            "number_of_regions": {"type": "integer", "minimum": 0},
                        },
                    },
                },
                "region_forecasts": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["region_ids", "prediction_window", "flare_probabilities",
                                     "data_time", "mean_lifetime_h", "warning_class",
                                     "survival_curve"],
                        "additionalProperties": False,
                        "properties": {
                            "region_ids": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["type", "number"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"enum": ["HARP", "NOAA"]},
                                        "number": {"type": "string", "pattern": r"^\d+$"},
                                    },
                                },
                                "contains": {"properties": {"type": {"const": "HARP"}}},
                            },
                            "data_time": {"anyOf": [_time, {"type": "null"}]},
                            "prediction_window": _window,
                            "flare_probabilities": _probabilities,
                            "mean_lifetime_h": {"type": ["number", "null"], "minimum": 0},
                            "lifetime_label": {"type": ["string", "null"]},
                            "absent": {
                                "type": "object",
                                "propertyNames": {"enum": list(FLARE_CLASS_LABELS.values())},
                                "additionalProperties": {"type": "string"},
                            },
                            "warning_class": {"type": ["string", "null"]},
                            "survival_curve": {
                                "anyOf": [
                                    {"type": "null"},
                                    {
                                        "type": "object",
                                        "required": ["time_h", "survival_probability"],
                                        "additionalProperties": False,
                                        "properties": {
                                            # the numbers of the curves are
                                            # checked with numpy in _semantic_problems
                                            # (finite, t >= 0, 0 <= S <= 1): per item in
                                            # jsonschema they were half the cost of a
                                            # year's backfill
                                            "time_h": {"type": "array", "minItems": 1},
                                            "survival_probability": {
                                                "type": "array", "minItems": 1},
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
            },
        }
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCOREBOARD_SCHEMA)


def _format_time(t: datetime) -> str:
    t = to_utc(t)
    if t.second or t.microsecond:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}" if t.microsecond
                                                  else "") + "Z"
    return t.strftime("%Y-%m-%dT%H:%MZ")


def _parse_time(s: str) -> datetime:
    return _parse_time_cached(s) if isinstance(s, str) else to_utc(s)


@functools.lru_cache(maxsize=4096)
def _parse_time_cached(s: str) -> datetime:
    # every window of a backfill's documents repeats a few strings: parse each once
    return to_utc(s)


_CLASS_PAIRS = tuple(FLARE_CLASS_LABELS.items())


def _probabilities_of(row: dict) -> list[dict]:
    return [{"class": label, "probability": round(float(row[col]), _DECIMALS)}
            for col, label in FLARE_CLASS_LABELS.items() if row.get(col) is not None]


def _clipped(s: Any) -> float:
    """``round(min(1, max(0, float(s))), 4)`` (a curve value as published)."""
    if type(s) is float and 0.0 <= s <= 1.0:
        return round(s, _DECIMALS)
    return round(min(1.0, max(0.0, float(s))), _DECIMALS)


def _region_ids(harpnum: int, noaa_ars: str | None) -> list[dict]:
    ids = [{"type": "HARP", "number": str(int(harpnum))}]
    for ar in (noaa_ars or "").replace(";", ",").split(","):
        ar = ar.strip()
        if ar and ar != "0":
            if not ar.isdigit():
                raise ParseError(f"HARP {harpnum}: NOAA AR {ar!r} in noaa_ars={noaa_ars!r} "
                                 "is not a number")
            ids.append({"type": "NOAA", "number": str(int(ar))})
    return ids


def _lifetime_label(mean_lifetime_h: float | None, curve: dict | None) -> str | None:
    if mean_lifetime_h is None or curve is None:
        return None
    time_h, survival = curve["time_h"], curve["survival_probability"]
    return lifetime_label(mean_lifetime_h, survival.last, tmax_h=time_h.last)


class _Numbers(list):
    """The published numbers of one survival grid or curve: a list of floats that also
    carries the array it came from (``array``, ``last``: the unrounded last value) and its
    JSON text as `_encode` writes it at ``level`` (``text``), both made for a whole batch at
    once (`_curves`). Only documents this module builds and encodes at once use the text and
    the array; `build_scoreboard_document` hands out plain lists."""

    __slots__ = ("array", "last", "level", "problems", "text")


#: Nesting level of a curve's lists in a document: doc 0, forecast_submission 1,
#: region_forecasts 2, a region 3, survival_curve 4, time_h 5.
_CURVE_LEVEL = 5


def _numbers_text(items: list[str], level: int) -> str:
    inner = "\n" + " " * (level + 1)
    return "[" + inner + ("," + inner).join(items) + "\n" + " " * level + "]"


@functools.lru_cache(maxsize=1)
def _four_decimals() -> np.ndarray:
    """``repr(k / 10000)`` for k = 0 .. 10000: the text of every published S(t) value."""
    return np.array([float.__repr__(k / 10000) for k in range(10001)], dtype=object)


def _published_survival(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_clipped` of every value (``round(min(1, max(0, s)), 4)``) and its ``repr``, exact.

    ``rint(10^4 s)`` is Python's correctly rounded ``round(s, 4)`` wherever ``10^4 s`` is not
    within 1e-6 of a half (the product's error is ~1e-12); those few values, and ``-0.0``
    (kept as ``-0.0`` by `_clipped`), go through `_clipped` itself."""
    x = np.clip(values, 0.0, 1.0)
    y = x * 10000.0
    k = np.rint(y)
    slow = np.flatnonzero((np.abs(y - np.floor(y) - 0.5) < 1e-6)
                          | ((values == 0.0) & np.signbit(values)))
    k = k.astype(np.int64)
    out = k / 10000.0
    text = _four_decimals()[k]
    for i in slow.tolist():
        v = _clipped(float(values[i]))
        out[i] = v
        text[i] = float.__repr__(v)
    return out, text


def _curves(df: pl.DataFrame) -> list[dict[str, _Numbers] | None]:
    """The ``survival_curve`` entry of every row of conformed rows (None: no curve), built
    for the whole frame at once: ``time_h`` the grid, ``survival_probability`` S(t) as
    `_clipped` publishes it; each distinct grid and curve is made once (a batch repeats a few
    grids, and the headline rows the survival model's curves). The checks of
    `_semantic_problems` on them run here, over the whole batch (``problems`` of the
    ``survival_probability`` entry)."""
    has = df["survival_curve"].is_not_null().to_numpy()
    out: list[dict[str, _Numbers] | None] = [None] * df.height
    if not has.any():
        return out
    # conformed: a row with a curve has a grid of the same non-zero length, finite values
    curves = df["survival_curve"].filter(has)
    lengths = curves.list.len().to_numpy().astype(np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    grid = df["survival_grid_h"].filter(has).explode().to_numpy()
    raw = curves.explode().to_numpy()
    surv, surv_text = _published_survival(raw)
    problems = _curve_problems(grid, surv, starts, ends)
    grids: dict[bytes, _Numbers] = {}
    made: dict[tuple[bytes, bytes], dict[str, _Numbers]] = {}
    for row, start, end, bad in zip(np.flatnonzero(has).tolist(), starts.tolist(),
                                    ends.tolist(), problems, strict=True):
        g = grid[start:end]
        key = (g.tobytes(), raw[start:end].tobytes())
        curve = made.get(key)
        if curve is None:
            time_h = grids.get(key[0])
            if time_h is None:
                time_h = grids[key[0]] = _numbers(g, list(map(float.__repr__, g.tolist())),
                                                  g[-1])
            sv = _numbers(surv[start:end], surv_text[start:end].tolist(), raw[end - 1])
            sv.problems = bad
            curve = made[key] = {"time_h": time_h, "survival_probability": sv}
        out[row] = dict(curve)
    return out


def _curve_problems(t: np.ndarray, sv: np.ndarray, starts: np.ndarray,
                    ends: np.ndarray) -> list[tuple[str, ...]]:
    """`_semantic_problems`' curve checks of every curve (``t[start:end]``,
    ``sv[start:end]``), vectorised: the problems of each, in that function's order."""
    n = len(starts)
    row_of = np.repeat(np.arange(n), ends - starts)
    within = np.ones(len(t), dtype=bool)  # positions i with i and i + 1 in one curve
    within[ends - 1] = False
    within = within[:-1]

    def rows(mask: np.ndarray, pairs: bool = False) -> set[int]:
        idx = np.flatnonzero(mask & within if pairs else mask)
        return set(row_of[idx].tolist())

    finite = np.isfinite(t) & np.isfinite(sv)
    checks = (("non-finite values", rows(~finite)),
              ("negative time_h", rows(t < 0)),
              ("survival probability outside [0, 1]", rows((sv < 0) | (sv > 1))),
              ("time_h not increasing", rows(np.diff(t) <= 0, pairs=True)),
              ("S(t) increases", rows(np.diff(sv) > 1e-6, pairs=True)))
    bad_rows = set().union(*(r for _, r in checks))
    out: list[tuple[str, ...]] = [()] * n
    for i in bad_rows:
        if i in checks[0][1]:
            out[i] = (checks[0][0],)  # as `_semantic_problems`: nothing more is checked
        else:
            out[i] = tuple(what for what, r in checks[1:] if i in r)
    return out


def _numbers(values: np.ndarray, items: list[str], last: float) -> _Numbers:
    out = _Numbers(values.tolist())
    out.array, out.last, out.level = values, float(last), _CURVE_LEVEL
    out.text = _numbers_text(items, _CURVE_LEVEL)
    return out


def build_scoreboard_document(forecasts: pl.DataFrame, *, mode: str = "forecast",
                              horizon_h: float = 24.0,
                              failed: pl.DataFrame | None = None) -> dict[str, Any]:
    """The scoreboard document of one issue time of one model.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`) sharing one
        issue_time, model and model_version; one row per region.
    mode : str, optional
        "forecast" for real-time runs, "historical" for backfills (see `MODES`).
    horizon_h : float, optional
        Prediction window length in hours (default 24, the horizon of p_c24/p_m24/p_x24).
        The window is (issue_time, issue_time + horizon_h] for every region and the full
        disk (module docstring).
    failed : pl.DataFrame, optional
        Regions left out (`flare_core.publish.forecast_store.FAILED_SCHEMA`); those of this
        issue time and model version become ``failed_regions``.

    Returns
    -------
    dict
        A document valid against `SCOREBOARD_SCHEMA` (regions sorted by HARP number).

    Raises
    ------
    ParseError
        If the rows span several issue times or models, or fail `conform_forecasts`.
    """
    doc = _document(conform_forecasts(forecasts), mode=mode, horizon_h=horizon_h,
                    failed=conform_failed(failed))
    for region in doc["forecast_submission"]["region_forecasts"]:
        if region["survival_curve"] is not None:  # plain lists, as json.loads gives them
            region["survival_curve"] = {k: list(v) for k, v in region["survival_curve"].items()}
    return doc


def _document(df: pl.DataFrame, *, mode: str, horizon_h: float,
              failed: pl.DataFrame) -> dict[str, Any]:
    """`build_scoreboard_document` of rows and failed regions already conformed."""
    check_positive("horizon_h", horizon_h)
    if mode not in MODES:
        raise ParseError(f"scoreboard mode must be one of {MODES}, got {mode!r}")
    groups = df.select("issue_time", "model", "model_version").unique()
    if groups.height != 1:
        raise ParseError("a scoreboard document holds one issue time of one model; got "
                         f"{groups.height} (issue_time, model, model_version) groups")
    return next(_documents(df, mode=mode, horizon_h=horizon_h, failed=failed))


_GROUP_KEYS = ["issue_time", "model", "model_version"]


def _documents(df: pl.DataFrame, *, mode: str, horizon_h: float,
               failed: pl.DataFrame) -> Iterator[dict[str, Any]]:
    """The validated document of every (issue_time, model, model_version) of conformed rows,
    in that order.

    One pass over the batch: the full-disk probabilities of all groups in one aggregation,
    the rows turned into dicts once and the failed regions indexed by (issue time, model
    version), instead of filtering the frame per document (a year's backfill writes ~60 k
    documents).
    """
    check_positive("horizon_h", horizon_h)
    if mode not in MODES:
        raise ParseError(f"scoreboard mode must be one of {MODES}, got {mode!r}")
    horizon = timedelta(hours=horizon_h)
    ordered = df.sort(_GROUP_KEYS)
    full_disk = full_disk_probabilities(ordered).iter_rows(named=True)
    bad: dict[tuple[datetime, str], list[dict[str, Any]]] = {}
    for h, r, it, v in failed.sort("harpnum").select(
            "harpnum", "reason", "issue_time", "model_version").iter_rows():
        bad.setdefault((it, v), []).append({"harpnum": int(h), "reason": r})
    by_region = ordered.sort([*_GROUP_KEYS, "harpnum"])
    memo: dict[str, dict] = {}
    curves = iter(_curves(by_region))
    rows = by_region.drop("survival_grid_h", "survival_curve").iter_rows(named=True)
    row = next(rows, None)
    for fd in full_disk:
        key = (fd["issue_time"], fd["model"], fd["model_version"])
        part = []
        while row is not None and (row["issue_time"], row["model"],
                                   row["model_version"]) == key:
            row["survival_curve"] = next(curves)
            part.append(row)
            row = next(rows, None)
        yield _build(part, fd, mode=mode, horizon=horizon,
                     failed=[dict(f) for f in bad.get((key[0], key[2]), [])], memo=memo)


def _build(part: list[dict[str, Any]], full_disk: dict[str, Any], *, mode: str,
           horizon: timedelta, failed: list[dict[str, Any]],
           memo: dict[str, dict] | None = None) -> dict[str, Any]:
    """One document from the rows of one group (sorted by HARP number).

    ``memo`` keeps what the documents of a batch repeat (data times, region ids, absences)
    across calls; a document never holds the same region twice, so no object appears twice
    in one document."""
    memo = {} if memo is None else memo
    data_times = memo.setdefault("data_time", {})
    region_ids = memo.setdefault("region_ids", {})
    absences = memo.setdefault("absent", {})
    issue_time, model, version = part[0]["issue_time"], part[0]["model"], part[0]["model_version"]
    window = {"start_time": _format_time(issue_time),
              "end_time": _format_time(issue_time + horizon)}
    series = sorted({r["series"] for r in part if r["series"] is not None})
    if len(series) > 1:
        raise ParseError(f"forecast rows of {issue_time} mix SHARP series {series}")
    methods = sorted({r["method"] for r in part if r["method"] is not None})
    regions = []
    for row in part:
        curve = row["survival_curve"]  # `_curves`
        t_rec, ids_of, absent_of = row["t_rec"], (row["harpnum"], row["noaa_ars"]), (
            model, *(row[col] is None for col in PROBABILITY_COLUMNS))
        data_time = data_times.get(t_rec)
        if data_time is None and t_rec is not None:
            data_time = data_times[t_rec] = _format_time(t_rec)
        ids = region_ids.get(ids_of)
        if ids is None:
            ids = region_ids[ids_of] = _region_ids(*ids_of)
        absent = absences.get(absent_of)
        if absent is None:
            absent = absences[absent_of] = {
                label: absent_class_reason(model, col)
                for col, label in FLARE_CLASS_LABELS.items() if row[col] is None}
        regions.append({
            "region_ids": ids,
            "data_time": data_time,
            "prediction_window": dict(window),
            "flare_probabilities": [{"class": label, "probability": round(row[col], _DECIMALS)}
                                    for col, label in _CLASS_PAIRS if row[col] is not None],
            "absent": dict(absent),
            "mean_lifetime_h": (None if row["mean_lifetime_h"] is None
                                else round(row["mean_lifetime_h"], 2)),
            "lifetime_label": _lifetime_label(row["mean_lifetime_h"], curve),
            "warning_class": row["warning_class"],
            "survival_curve": curve,
        })
    doc = {
        "forecast_submission": {
            "model": {"short_name": model, "version": version,
                      "spase_id": f"spase://CCMC/SimulationModel/flareflow_{model}/{version}"},
            "issue_time": _format_time(issue_time),
            "mode": mode,
            "series": series[0] if series else None,
            "prediction_window_rule": PREDICTION_WINDOW_RULE,
            **({"method": "; ".join(methods)} if methods else {}),
            "failed_regions": failed,
            "full_disk_forecasts": [{
                "prediction_window": dict(window),
                "flare_probabilities": _probabilities_of(full_disk),
                "number_of_regions": int(full_disk["n_regions"]),
            }],
            "region_forecasts": regions,
        }
    }
    validate_scoreboard_document(doc)
    return doc


def _method_of(df: pl.DataFrame) -> str | None:
    methods = df["method"].drop_nulls().unique().sort().to_list()
    return "; ".join(methods) if methods else None


def validate_scoreboard_document(doc: Any) -> None:
    """Raise `ParseError` listing every way ``doc`` breaks `SCOREBOARD_SCHEMA`.

    Beyond the JSON Schema it checks what a schema cannot: windows end after they start and
    lie within the full-disk window, survival grids and curves have equal lengths, the grid
    strictly increases and S(t) does not, and no HARP appears twice.
    """
    problems = [] if _surely_valid(doc) else [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))]
    if not problems:
        problems = _semantic_problems(doc["forecast_submission"])
    if problems:
        raise ParseError("invalid scoreboard document: " + "; ".join(problems[:10])
                         + (f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""))


# -- fast schema check -------------------------------------------------------------------------
# jsonschema walks ~600 nodes per document (about 10 ms): most of a year's backfill once.
# `_surely_valid` checks the same schema in plain Python, but more strictly (exact types; an
# unusual yet valid value answers False): True only for documents the schema accepts, and
# anything else goes to the jsonschema validator, which gives the messages.

_TIME_RE = re.compile(_TIME_PATTERN)
_NUMBER_RE = re.compile(r"^\d+$")
_CLASSES = frozenset(FLARE_CLASS_LABELS.values())
_SUB_REQUIRED = frozenset(("model", "issue_time", "mode", "full_disk_forecasts",
                           "region_forecasts"))
_SUB_ALLOWED = _SUB_REQUIRED | {"series", "prediction_window_rule", "method", "failed_regions"}
_REGION_REQUIRED = frozenset(("region_ids", "prediction_window", "flare_probabilities",
                              "data_time", "mean_lifetime_h", "warning_class",
                              "survival_curve"))
_REGION_ALLOWED = _REGION_REQUIRED | {"lifetime_label", "absent"}
_WINDOW_KEYS = frozenset(("start_time", "end_time"))
_PROB_KEYS = frozenset(("class", "probability"))
_ID_KEYS = frozenset(("type", "number"))
_FAILED_KEYS = frozenset(("harpnum", "reason"))
_FULL_DISK_KEYS = frozenset(("prediction_window", "flare_probabilities", "number_of_regions"))
_CURVE_KEYS = frozenset(("time_h", "survival_probability"))
_LISTS = (list, _Numbers)  # _Numbers: a list of floats (`_curves`)


def _is_time(v: Any) -> bool:
    return type(v) is str and _TIME_RE.search(v) is not None


def _is_str(v: Any, min_length: int = 0) -> bool:
    return type(v) is str and len(v) >= min_length


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_window(w: Any) -> bool:
    return (type(w) is dict and w.keys() == _WINDOW_KEYS and _is_time(w["start_time"])
            and _is_time(w["end_time"]))


def _are_probabilities(ps: Any) -> bool:
    if type(ps) is not list:
        return False
    for p in ps:
        if type(p) is not dict or p.keys() != _PROB_KEYS or p["class"] not in _CLASSES:
            return False
        v = p["probability"]
        if type(v) not in (float, int) or not 0 <= v <= 1:
            return False
    return True


def _is_region(r: Any) -> bool:
    if type(r) is not dict or not _REGION_REQUIRED <= r.keys() <= _REGION_ALLOWED:
        return False
    ids = r["region_ids"]
    if type(ids) is not list or not ids:
        return False
    for x in ids:
        if (type(x) is not dict or x.keys() != _ID_KEYS or x["type"] not in ("HARP", "NOAA")
                or type(x["type"]) is not str or type(x["number"]) is not str
                or _NUMBER_RE.search(x["number"]) is None):
            return False
    if not any(x["type"] == "HARP" for x in ids):
        return False
    life = r["mean_lifetime_h"]
    if not (life is None or (type(life) in (float, int) and life >= 0)):
        return False
    if not (r["data_time"] is None or _is_time(r["data_time"])):
        return False
    if not (_is_window(r["prediction_window"]) and _are_probabilities(r["flare_probabilities"])):
        return False
    for key in ("lifetime_label", "warning_class"):
        if not (r.get(key) is None or type(r[key]) is str):
            return False
    absent = r.get("absent", {})
    if type(absent) is not dict or not all(type(k) is str and k in _CLASSES and type(v) is str
                                           for k, v in absent.items()):
        return False
    curve = r["survival_curve"]
    return curve is None or (type(curve) is dict and curve.keys() == _CURVE_KEYS
                             and type(curve["time_h"]) in _LISTS and len(curve["time_h"]) >= 1
                             and type(curve["survival_probability"]) in _LISTS
                             and len(curve["survival_probability"]) >= 1)


def _surely_valid(doc: Any) -> bool:
    """Whether ``doc`` certainly satisfies `SCOREBOARD_SCHEMA` (False: ask jsonschema)."""
    if type(doc) is not dict or doc.keys() != {"forecast_submission"}:
        return False
    sub = doc["forecast_submission"]
    if type(sub) is not dict or not _SUB_REQUIRED <= sub.keys() <= _SUB_ALLOWED:
        return False
    model = sub["model"]
    if (type(model) is not dict or not {"short_name", "version"} <= model.keys()
            <= {"short_name", "version", "spase_id"} or not _is_str(model["short_name"], 1)
            or not _is_str(model["version"], 1)
            or not ("spase_id" not in model or _is_str(model["spase_id"]))):
        return False
    if not _is_time(sub["issue_time"]) or type(sub["mode"]) is not str or sub["mode"] not in MODES:
        return False
    if not (sub.get("series") is None or type(sub["series"]) is str):
        return False
    for key in ("prediction_window_rule", "method"):
        if key in sub and type(sub[key]) is not str:
            return False
    failed = sub.get("failed_regions", [])
    if type(failed) is not list or not all(
            type(f) is dict and f.keys() == _FAILED_KEYS and _is_count(f["harpnum"])
            and _is_str(f["reason"], 1) for f in failed):
        return False
    disk = sub["full_disk_forecasts"]
    if type(disk) is not list or len(disk) > 1 or not all(
            type(f) is dict and f.keys() == _FULL_DISK_KEYS
            and _is_window(f["prediction_window"])
            and _are_probabilities(f["flare_probabilities"])
            and _is_count(f["number_of_regions"]) for f in disk):
        return False
    regions = sub["region_forecasts"]
    return type(regions) is list and all(_is_region(r) for r in regions)


def _semantic_problems(sub: dict) -> list[str]:
    problems = []
    windows = [("full_disk_forecasts", i, f["prediction_window"])
               for i, f in enumerate(sub["full_disk_forecasts"])]
    windows += [("region_forecasts", i, r["prediction_window"])
                for i, r in enumerate(sub["region_forecasts"])]
    for where, i, w in windows:
        if _parse_time(w["end_time"]) <= _parse_time(w["start_time"]):
            problems.append(f"{where}/{i}/prediction_window: end_time is not after start_time")
    for full in sub["full_disk_forecasts"]:
        lo = _parse_time(full["prediction_window"]["start_time"])
        hi = _parse_time(full["prediction_window"]["end_time"])
        for i, r in enumerate(sub["region_forecasts"]):
            w = r["prediction_window"]
            if _parse_time(w["start_time"]) < lo or _parse_time(w["end_time"]) > hi:
                problems.append(f"region_forecasts/{i}/prediction_window: outside the "
                                "full-disk prediction window")
    harps = []
    for i, r in enumerate(sub["region_forecasts"]):
        harps += [x["number"] for x in r["region_ids"] if x["type"] == "HARP"]
        curve = r["survival_curve"]
        if curve is None:
            continue
        where = f"region_forecasts/{i}/survival_curve"
        if type(curve["time_h"]) is _Numbers and type(curve["survival_probability"]) is _Numbers:
            # built by `_curves` from float arrays of equal lengths, and checked there
            problems += [f"{where}: {what}" for what in curve["survival_probability"].problems]
            continue
        try:
            t = np.asarray(curve["time_h"], dtype=np.float64)
            sv = np.asarray(curve["survival_probability"], dtype=np.float64)
        except (TypeError, ValueError):
            problems.append(f"{where}: times and probabilities must be numbers")
            continue
        if t.ndim != 1 or sv.ndim != 1 or bool in {*map(type, curve["time_h"]),
                                                    *map(type, curve["survival_probability"])}:
            problems.append(f"{where}: times and probabilities must be numbers")
            continue
        if not (np.isfinite(t).all() and np.isfinite(sv).all()):
            problems.append(f"{where}: non-finite values")
            continue
        if t.size != sv.size:
            problems.append(f"{where}: {t.size} times but {sv.size} probabilities")
        if (t < 0).any():
            problems.append(f"{where}: negative time_h")
        if ((sv < 0) | (sv > 1)).any():
            problems.append(f"{where}: survival probability outside [0, 1]")
        if (np.diff(t) <= 0).any():
            problems.append(f"{where}: time_h not increasing")
        if (np.diff(sv) > 1e-6).any():
            problems.append(f"{where}: S(t) increases")
    if len(harps) != len(set(harps)):
        problems.append("a HARP number appears in more than one region forecast")
    return problems


def scoreboard_filename(doc: dict[str, Any]) -> str:
    """``<model>_<version>.<window start>.<issue time>.json`` (times as YYYYMMDDTHHMM UTC).

    This follows the CCMC suggestion ``<ModelShortName>.<PredictionWindowStartTime>.
    <IssueTime>.json``.
    """
    sub = doc["forecast_submission"]
    start = _parse_time(sub["full_disk_forecasts"][0]["prediction_window"]["start_time"]
                        if sub["full_disk_forecasts"] else sub["issue_time"])
    issue = _parse_time(sub["issue_time"])
    safe = "".join(c if c.isalnum() or c in "-_" else "-"
                   for c in f"{sub['model']['short_name']}_{sub['model']['version']}")
    return f"{safe}.{start:%Y%m%dT%H%M}.{issue:%Y%m%dT%H%M}.json"


def write_scoreboard_json(forecasts: pl.DataFrame, out_dir: str | Path, *,
                          mode: str = "forecast", horizon_h: float = 24.0,
                          failed: pl.DataFrame | None = None) -> list[Path]:
    """Write one validated scoreboard document per (issue_time, model, model_version).

    Each file is written atomically (temporary file, then rename), so a reader never sees a
    half-written document and a re-run replaces the file. The files are written by a
    background thread while the next documents are built (file creation waits on the disk;
    it releases the GIL); the call returns once all are written, and raises the first error
    in document order (a document that fails to build stops the batch after the documents
    before it are written, as a sequential loop would; after a failed write, documents built
    meanwhile may be written too).

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows, any number of issue times and models.
    out_dir : str or Path
        Folder for the files (created if absent).
    mode, horizon_h, failed
        As in `build_scoreboard_document` (each document gets the failed regions of its
        issue time and model version).

    Returns
    -------
    list of Path
        The files written, ordered by issue time then model.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    cache: dict = {}
    writes: list[Future] = []
    checked = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoreboard-json") as pool:
        for doc in _documents(conform_forecasts(forecasts), mode=mode, horizon_h=horizon_h,
                              failed=conform_failed(failed)):
            path = out / scoreboard_filename(doc)
            # rebuilt from the forecast store at will: atomic, not flushed (a backfill writes
            # one per issue time and model; an fsync of each measured ~0.5 ms more per
            # document)
            writes.append(pool.submit(atomic_write, path, _dumps_built(doc, cache) + "\n",
                                      fsync=False))
            paths.append(path)
            while checked < len(writes) and writes[checked].done():
                writes[checked].result()  # a failed write stops the batch early
                checked += 1
    for w in writes[checked:]:
        w.result()
    logger.info("wrote %d scoreboard document(s) to %s", len(paths), out)
    return paths


def dumps_document(doc: dict[str, Any]) -> str:
    """``json.dumps(doc, indent=1, allow_nan=False)``, byte for byte, in a fraction of its time.

    The standard library's C encoder does not indent; with ``indent`` it falls back to pure
    Python, a generator step per value (~3 ms for a document of 20 survival curves). This
    writes the same text from lists of strings, joining the lists of numbers (the curves) in
    one call. Anything it does not know exactly (a non-string key, a non-finite float, a
    type other than dict, list, str, int, float, bool, None) goes to `json.dumps`, which
    then gives its usual result or error.
    """
    return _dumps(doc)


def _dumps(doc: Any) -> str:
    out: list[str] = []
    try:
        _encode(doc, 0, out)
    except _NotPlain:
        return json.dumps(doc, indent=1, allow_nan=False)
    return "".join(out)


class _NotPlain(Exception):
    """A value `_encode` leaves to `json.dumps`."""


def _scalar(o: Any) -> str | None:
    """The JSON text of a str, None, bool, int or finite float (None: not one of those)."""
    # the order of the checks is json.encoder's (True and False before int)
    if isinstance(o, str):
        return _json_str(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        if not math.isfinite(o):
            raise _NotPlain
        return float.__repr__(o)
    return None


def _encode(o: Any, level: int, out: list[str]) -> None:
    text = _scalar(o)
    if text is not None:
        out.append(text)
    elif isinstance(o, (list, tuple)):
        if type(o) is _Numbers and o.level == level:  # its text is made (`_curves`)
            out.append(o.text)
            return
        if not o:
            out.append("[]")
            return
        inner = "\n" + " " * (level + 1)
        if set(map(type, o)) == {float}:  # a curve: one join
            if not all(map(math.isfinite, o)):
                raise _NotPlain
            out.append("[" + inner + ("," + inner).join(map(float.__repr__, o))
                       + "\n" + " " * level + "]")
            return
        out.append("[")
        for i, v in enumerate(o):
            out.append(inner if i == 0 else "," + inner)
            _encode_value(v, level + 1, out)
        out.append("\n" + " " * level + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + " " * (level + 1)
        out.append("{")
        for i, (k, v) in enumerate(o.items()):
            if not isinstance(k, str):
                raise _NotPlain
            out.append((inner if i == 0 else "," + inner) + _json_str(k) + ": ")
            _encode_value(v, level + 1, out)
        out.append("\n" + " " * level + "}")
    elif type(o) is _Raw:
        out.append(o.text)
    else:
        raise _NotPlain


def _encode_value(v: Any, level: int, out: list[str]) -> None:
    """An element of a list or dict: a scalar's text, or `_encode` of a container."""
    text = _scalar(v)
    if text is None:
        _encode(v, level, out)
    else:
        out.append(text)


# -- the regions of a built document, encoded faster -------------------------------------------
# `_build` makes every region with the same keys, in the same order, of a few shapes: lists of
# two-key dicts of scalars (ids, probabilities), small dicts of strings (window, absent) and the
# curve (`_Numbers`). `_region_text` writes those shapes without the generic recursion (and
# the windows, absences and ids, which repeat, once each); anything else goes to `_encode`.

_REGION_ORDER = ("region_ids", "data_time", "prediction_window", "flare_probabilities",
                 "absent", "mean_lifetime_h", "lifetime_label", "warning_class",
                 "survival_curve")
_REGION_KEYS = tuple(("{" if i == 0 else ",") + "\n    " + _json_str(k) + ": "
                     for i, k in enumerate(_REGION_ORDER))
_PAIR_LISTS = frozenset(("region_ids", "flare_probabilities"))
_STR_DICTS = frozenset(("prediction_window", "absent"))


def _pairs_text(items: Any) -> str | None:
    """`_encode` of a list (level 4) of dicts of two scalars, or None if it is not one."""
    if type(items) is not list:
        return None
    if not items:
        return "[]"
    parts = []
    for d in items:
        if type(d) is not dict or len(d) != 2:
            return None
        (k1, v1), (k2, v2) = d.items()
        if type(k1) is not str or type(k2) is not str:
            return None
        t1, t2 = _scalar(v1), _scalar(v2)
        if t1 is None or t2 is None:
            return None
        parts.append("{\n      " + _json_str(k1) + ": " + t1 + ",\n      " + _json_str(k2)
                     + ": " + t2 + "\n     }")
    return "[\n     " + ",\n     ".join(parts) + "\n    ]"


def _str_dict_text(d: Any, cache: dict) -> str | None:
    """`_encode` of a dict (level 4) of str -> str, or None if it is not one."""
    if type(d) is not dict:
        return None
    key = tuple(d.items())
    try:
        text = cache.get(key)
    except TypeError:  # an unhashable value: not a string
        return None
    if text is None:
        if not all(type(k) is str and type(v) is str for k, v in key):
            return None
        text = ("{}" if not d else "{\n     " + ",\n     ".join(
            _json_str(k) + ": " + _json_str(v) for k, v in key) + "\n    }")
        cache[key] = text
    return text


def _curve_text(c: Any) -> str | None:
    if (type(c) is dict and len(c) == 2 and type(c.get("time_h")) is _Numbers
            and type(c.get("survival_probability")) is _Numbers
            and next(iter(c)) == "time_h"):
        t, s = c["time_h"], c["survival_probability"]
        if t.level == s.level == _CURVE_LEVEL:
            return ("{\n     \"time_h\": " + t.text + ",\n     \"survival_probability\": "
                    + s.text + "\n    }")
    return None


def _region_text(r: Any, cache: dict) -> str | None:
    """`_encode` of a region (level 3) as `_build` makes it, or None if it is not one."""
    if type(r) is not dict or tuple(r) != _REGION_ORDER:
        return None
    parts = []
    for head, (k, v) in zip(_REGION_KEYS, r.items(), strict=True):
        text = _scalar(v)
        if text is None:
            if k in _PAIR_LISTS:
                text = _pairs_text(v)
            elif k in _STR_DICTS:
                text = _str_dict_text(v, cache)
            elif k == "survival_curve":
                text = _curve_text(v)
            if text is None:
                return None
        parts.append(head + text)
    parts.append("\n   }")
    return "".join(parts)


class _Raw:
    """JSON text `_encode` writes as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _dumps_built(doc: dict[str, Any], cache: dict) -> str:
    """`dumps_document` of a document `_build` made, its regions through `_region_text`
    (``cache``: texts of the repeated parts, shared by the documents of a batch)."""
    sub = doc.get("forecast_submission")
    if type(sub) is dict and len(doc) == 1 and next(reversed(sub)) == "region_forecasts":
        regions = sub["region_forecasts"]
        try:
            texts = [_region_text(r, cache) for r in regions] if type(regions) is list else [None]
        except _NotPlain:
            texts = [None]
        if texts and None not in texts:
            head = {**sub, "region_forecasts": _Raw("[\n   " + ",\n   ".join(texts) + "\n  ]")}
            return _dumps({"forecast_submission": head})
    return _dumps(doc)


def read_scoreboard_json(path: str | Path) -> dict[str, Any]:
    """Load and validate a scoreboard document; `ParseError` names the file if it is bad."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_scoreboard_document(doc)
    except (json.JSONDecodeError, ParseError) as e:
        raise ParseError(f"{path}: {e}") from e
    return doc

