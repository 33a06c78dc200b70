"""PNG figures of forecasts and of their evaluation (matplotlib, Agg canvas, no pyplot).

Every function takes arrays or frames and an output path, writes one PNG, and returns the
path. Figures are built on `matplotlib.figure.Figure` with an Agg canvas, so nothing here
touches pyplot's global state or backend or needs a display, and calls are safe from
worker threads.

The page's figures (survival curves with labels, lifetime tracks, region tracks) are drawn
dozens per page, so they skip what costs most in matplotlib: no constrained layout (fixed
margins), one figure per kind and size reused per thread, fixed time ticks, and two layers
(`_draw_layered`: axes, ticks, labels and legends drawn once and copied, the data drawn
over them); PNGs are written by `_png_bytes`. A PNG depends only on the call's arguments,
not on what was drawn before it.

Forecast figures
    `plot_survival_curves` (S(t) of one region, coloured by issue/record time or lead time),
    `plot_mean_lifetime_track` (mean lifetime vs time with the observed flares, as in the
    survival-analysis flare papers' lifetime tracks), `plot_full_disk_probability`
    (full-disk C+/M+/X+ probability time series, observed flares and data gaps marked),
    `plot_region_probability_tracks` (one model's probabilities, one panel per region).
Evaluation figures
    `plot_verification` (reliability + ROC of several models, from
    `flare_core.publish.verification`), `plot_roc_curves`, `plot_reliability_diagram`, `plot_auc_vs_time` (cumulative/dynamic
    AUC(t)), `plot_tss_vs_threshold`.

Several models can share one evaluation figure: pass a mapping ``{name: values}``; a bare
array is drawn as one unnamed curve. Times are tz-aware UTC datetimes (naive ones are taken
as UTC); durations are hours.
"""

from __future__ import annotations

import io
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedFormatter, FixedLocator

from ..config import check_positive
from ..errors import ConfigError
from ..metrics import reliability_bins
from ..timeutil import to_utc
from .forecast_store import PROBABILITY_COLUMNS

__all__ = [
    "plot_survival_curves",
    "plot_mean_lifetime_track",
    "plot_full_disk_probability",
    "plot_region_probability_tracks",
    "plot_verification",
    "plot_roc_curves",
    "plot_reliability_diagram",
    "plot_auc_vs_time",
    "plot_tss_vs_threshold",
]

logger = logging.getLogger(__name__)

_DPI = 110
_CLASS_STYLE = {"p_c24": ("C+", "tab:olive"), "p_m24": ("M+", "tab:orange"),
                "p_x24": ("X+", "tab:red")}


# -- helpers ---------------------------------------------------------------------------------

def _figure(width: float = 7.0, height: float = 4.2, *,
            layout: str | None = "constrained") -> Figure:
    """A new figure, by default with constrained layout (the evaluation figures)."""
    fig = Figure(figsize=(width, height), dpi=_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


#: Figures reused by the page's figures, per thread: (kind, size, panels) -> (fig, axes).
_REUSED = threading.local()
_REUSED_MAX = 8


def _page_figure(kind: str, width: float, height: float, nrows: int = 1, *,
                 static_legends: bool = True) -> tuple[Figure, list[Any]]:
    """A figure of ``nrows`` panels (sharing the x axis) without layout engine, reused from
    the previous figure of that kind and size in this thread once its artists are removed;
    its panels have a grid.

    Page figures are drawn dozens at a time: building the axes and their ticks again for
    each costs more than drawing the data. A reused figure is emptied back to the state of
    a new one (no artists, no legends, data limits and colour cycle reset), so a PNG does
    not depend on what was drawn before it. The margins are set by `_margins`. The figure
    is drawn in layers (`_draw_layered`), its legends in the static layer unless
    ``static_legends`` is false (legends that differ from one plot to the next).
    """
    cache = getattr(_REUSED, "figures", None)
    if cache is None:
        cache = _REUSED.figures = {}
    key = (kind, width, height, nrows)
    entry = cache.pop(key, None)
    if entry is None:
        fig = Figure(figsize=(width, height), dpi=_DPI)
        FigureCanvasAgg(fig)
        axes = list(fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0])
        for ax in axes:
            ax.grid(alpha=0.3)  # every page figure's grid, kept across plots
        _STATIC[fig] = _Layers(static_legends=static_legends)
    else:
        fig, axes = entry
        _empty(fig, axes)
    cache[key] = (fig, axes)
    while len(cache) > _REUSED_MAX:
        cache.pop(next(iter(cache)))
    return fig, axes


def _empty(fig: Figure, axes: Sequence[Any]) -> None:
    """Remove what a page figure drew (artists, legends, labels) and reset its axes' data
    limits, autoscaling and colour cycle, leaving the axes, their ticks and styles."""
    for legend in list(fig.legends):
        legend.remove()
    _STATIC[fig].pending.clear()
    for text in list(fig.texts):
        text.remove()
    for ax in axes:
        for artist in [*ax.lines, *ax.patches, *ax.texts, *ax.collections, *ax.images]:
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_prop_cycle(None)
        ax.relim()
        ax.set_autoscale_on(True)
        ax.set(title="", xlabel="", ylabel="")


def _margins(fig: Figure, *, left: float, right: float, top: float, bottom: float,
             hspace: float = 0.0) -> None:
    """Fixed margins around the axes, in inches (what constrained layout would find for
    the page figures' labels, at a fraction of its cost)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, hspace=hspace)


def _bottom_legend(fig: Figure, handles: list[Any], labels: list[str], *, ncols: int,
                   axes_bottom: float, height: float) -> None:
    """A legend centred under the axes, the bottom margin grown to its rows: the axes end
    ``axes_bottom`` inches above the legend's top."""
    rows = -(-len(labels) // max(ncols, 1))
    legend_h = 0.08 + 0.19 * rows  # fontsize 8: one row of handles ~0.19 in, plus padding
    fig.subplots_adjust(bottom=(legend_h + axes_bottom) / height)
    _legend(fig, handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.02 / height),
            fontsize=8, ncols=ncols)


def _legend(fig: Figure, handles: list[Any], labels: list[str], **kwargs: Any) -> None:
    """``fig.legend(handles, labels, **kwargs)``; for a page figure whose legends are in
    its static layer, made only when that layer is drawn (`_draw_layered`): a copied layer
    already shows it."""
    state = _STATIC.get(fig)
    if state is None or not state.static_legends:
        fig.legend(handles, labels, **kwargs)
    else:
        state.pending.append((list(handles), list(labels), kwargs))


def _save(fig: Figure, out_path: str | Path) -> Path:
    """Draw ``fig`` (at its dpi, `_DPI`) and write it as a PNG (`_png_bytes`)."""
    path = Path(out_path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"plot output must be a .png path, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig in _STATIC:
        _draw_layered(fig)
    else:
        fig.canvas.draw()
    path.write_bytes(_png_bytes(np.asarray(fig.canvas.buffer_rgba()), dpi=fig.dpi))
    logger.debug("wrote %s", path)
    return path


@dataclass
class _Layers:
    """The static layers of one reused page figure (`_draw_layered`)."""

    static_legends: bool
    layers: dict[tuple, Any] = field(default_factory=dict)  # `_static_key` -> pixels
    pending: list[tuple[list, list, dict]] = field(default_factory=list)  # `_legend` calls


#: Each reused page figure's static layers.
_STATIC: weakref.WeakKeyDictionary[Figure, _Layers] = weakref.WeakKeyDictionary()
#: Static layers kept per figure (a page's figures of one kind share one or a few).
_LAYERS_MAX = 2
#: Spines are drawn above the data lines (zorder 2) and below higher ones, as `Axes.draw`.
_SPINE_ZORDER = 2.5


def _static_key(fig: Figure, *, legends: bool) -> tuple:
    """Everything the static layer of a page figure depends on: size, margins, per axes
    the limits, scales, ticks (locator, fixed positions and labels), tick styles and axis
    labels, and the legends (texts and handle styles)."""
    sp = fig.subplotpars
    key: list[Any] = [tuple(fig.get_size_inches()), fig.dpi,
                      (sp.left, sp.right, sp.bottom, sp.top, sp.wspace, sp.hspace)]
    for ax in fig.axes:
        key.append((ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(),
                    *(_axis_key(axis) for axis in (ax.xaxis, ax.yaxis))))
    if legends:
        key.extend(_legend_key(*spec) for spec in _STATIC[fig].pending)
    return tuple(key)


def _legend_key(handles: list[Any], labels: list[str], kwargs: dict[str, Any]) -> tuple:
    """What a figure legend (`_legend`) shows: its options, texts and each handle's style
    (a handle of another kind than lines and patches makes the key unique: never reused)."""
    return (repr(sorted(kwargs.items())), tuple(labels),
            tuple(_handle_key(h) for h in handles))


def _handle_key(handle: Any) -> Any:
    if isinstance(handle, Line2D):
        return ("line", *map(_colour_key, (handle.get_color(), handle.get_markeredgecolor(),
                                           handle.get_markerfacecolor())),
                handle.get_linewidth(), handle.get_linestyle(), handle.get_marker(),
                handle.get_markersize(), handle.get_markeredgewidth(), handle.get_alpha(),
                handle.get_drawstyle())
    if isinstance(handle, Patch):
        return ("patch", _colour_key(handle.get_facecolor()),
                _colour_key(handle.get_edgecolor()), handle.get_hatch(), handle.get_alpha(),
                handle.get_linewidth())
    return object()


def _colour_key(colour: Any) -> Any:
    try:
        return to_rgba(colour)
    except ValueError:  # "auto", "none" and the like
        return repr(colour)


def _axis_key(axis: Any) -> tuple:
    locator, formatter = axis.get_major_locator(), axis.get_major_formatter()
    return (axis.label.get_text(), type(locator).__name__, tuple(getattr(locator, "locs", ())),
            type(formatter).__name__, tuple(getattr(formatter, "seq", ())),
            getattr(formatter, "offset_string", ""),
            tuple(sorted((k, repr(v)) for k, v in axis._major_tick_kw.items())))


def _dynamic(ax: Any) -> list[Any]:
    """The artists a page figure draws per plot: data, spans, texts (`_empty` removes them)."""
    return [*ax.lines, *ax.patches, *ax.texts, *ax.collections, *ax.images]


def _titles(ax: Any) -> list[Any]:
    """The texts drawn per plot outside the axes' artists: the titles."""
    return [ax.title, ax._left_title, ax._right_title]


def _draw_layered(fig: Figure) -> None:
    """Draw a reused page figure as two layers: the static one (axes, spines, ticks, tick
    labels, grid, axis labels and, where `_page_figure` says so, the legends), drawn once
    per `_static_key` and then copied, and over it what this plot adds (its artists in
    zorder with the spines between, titles, the other legends). A static layer is the
    same pixels whether drawn now or copied, so the PNG does not depend on what the figure
    drew before; the ticks and texts, most of a figure's drawing time, are drawn once for
    a page's figures of one kind. Page figures' legends lie outside the axes, so drawing
    them before the data changes nothing."""
    canvas = fig.canvas
    state = _STATIC[fig]
    legends = [] if state.static_legends else list(fig.legends)
    key = _static_key(fig, legends=not legends)
    layer = state.layers.pop(key, None)
    if layer is not None:
        renderer = canvas.get_renderer()
        canvas.restore_region(layer)
    else:
        for handles, labels, kwargs in state.pending:
            fig.legend(handles, labels, **kwargs)
        hidden = [a for ax in fig.axes for a in _dynamic(ax)] + legends + list(fig.texts)
        visible = [a.get_visible() for a in hidden]
        texts = [(t, t.get_text()) for ax in fig.axes for t in _titles(ax)]
        for a in hidden:
            a.set_visible(False)
        for t, _ in texts:
            t.set_text("")
        try:
            canvas.draw()
        finally:
            for a, v in zip(hidden, visible, strict=True):
                a.set_visible(v)
            for t, text in texts:
                t.set_text(text)
        renderer = canvas.get_renderer()
        layer = canvas.copy_from_bbox(fig.bbox)
    state.pending.clear()
    state.layers[key] = layer  # the newest last; the oldest dropped beyond a few
    while len(state.layers) > _LAYERS_MAX:
        state.layers.pop(next(iter(state.layers)))
    for ax in fig.axes:
        artists = sorted(_dynamic(ax), key=lambda a: a.get_zorder())
        for a in artists:
            if a.get_zorder() < _SPINE_ZORDER:
                a.draw(renderer)
        for spine in ax.spines.values():
            spine.draw(renderer)
        for a in artists:
            if a.get_zorder() >= _SPINE_ZORDER:
                a.draw(renderer)
        for t in _titles(ax):
            t.draw(renderer)
    for a in [*legends, *fig.texts]:
        a.draw(renderer)


def _png_bytes(rgba: np.ndarray, *, dpi: float, level: int = 3) -> bytes:
    """A PNG of an (h, w, 4) uint8 image through Pillow: RGB when it is opaque, zlib at
    ``level`` (``savefig``'s default 6 costs ~40 % more per page figure and keeps the alpha
    channel of an opaque figure), the resolution in its pHYs chunk."""
    from PIL import Image

    rgba = np.ascontiguousarray(rgba)
    image = Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1)
    if rgba[..., 3].min() == 255:  # opaque: Pillow drops the alpha band (in C)
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level, dpi=(dpi, dpi))
    return buffer.getvalue()


def _times(values: Any, name: str) -> list[datetime]:
    if isinstance(values, pl.Series):
        values = values.to_list()
    try:
        return [to_utc(v) for v in values]
    except Exception as e:
        raise ConfigError(f"{name} must be datetimes: {e}") from e


def _array(values: Any, name: str, *, ndim: int = 1) -> np.ndarray:
    a = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values,
                   dtype=np.float64)
    if a.ndim != ndim:
        raise ConfigError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a


def _same_length(**arrays: Sized) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError(f"lengths differ: {lengths}")
    if not next(iter(lengths.values())):
        raise ConfigError(f"nothing to plot: {', '.join(lengths)} are empty")


def _named(values: Any, name: str) -> dict[str, Any]:
    if isinstance(values, Mapping):
        if not values:
            raise ConfigError(f"{name} is an empty mapping")
        return dict(values)
    return {"": values}


def _time_xlim(ax: Any, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Limit the time axis to [start, end], or to the hour either side of a single instant
    (never left to autoscaling: a reused figure must not depend on earlier ones); returns
    the limits."""
    if end <= start:
        start, end = start - timedelta(hours=1), start + timedelta(hours=1)
    ax.set_xlim(start, end)
    return start, end


#: Tick steps of `_time_axis`, hours: the first giving at most ``max_ticks`` ticks is used.
_TICK_STEPS_H = (0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24, 48, 96, 168, 336, 672)


def _time_axis(ax: Any, start: datetime | None = None, end: datetime | None = None, *,
               max_ticks: int = 10) -> None:
    """UTC time ticks. Given the axis span [start, end] (up to ~2 years), fixed ticks every
    whole 15 min, hours or days, labelled ``HH:MM`` (``Mon-DD`` at midnight; ``Mon-DD`` for
    day steps) with the date of the last tick as the offset, like matplotlib's
    ``ConciseDateFormatter``, but computed once instead of at every draw. Otherwise (a
    single instant, longer spans) ``AutoDateLocator`` with ``ConciseDateFormatter``."""
    ax.set_xlabel("time (UTC)")
    span_h = None if start is None or end is None else _hours(to_utc(end), to_utc(start))
    step = (None if span_h is None or span_h <= 0 else
            next((s for s in _TICK_STEPS_H if span_h / s <= max_ticks), None))
    if step is None:
        locator = mdates.AutoDateLocator(tz="UTC")
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
        return
    start, end = to_utc(start), to_utc(end)
    step_s = int(step * 3600)
    first = -(-int(start.timestamp()) // step_s) * step_s  # multiples of the step since 1970
    ticks = [datetime.fromtimestamp(t, UTC)
             for t in range(first, int(end.timestamp()) + 1, step_s)]
    if step >= 24:
        labels = [f"{t:%b-%d}" for t in ticks]
        offset = f"{ticks[-1]:%Y}" if ticks else ""
    else:
        labels = [f"{t:%b-%d}" if t.hour == t.minute == 0 else f"{t:%H:%M}" for t in ticks]
        offset = f"{ticks[-1]:%Y-%b-%d}" if ticks else ""
    ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(ticks)))
    formatter = FixedFormatter(labels)
    formatter.set_offset_string(offset)
    ax.xaxis.set_major_formatter(formatter)


def _hours(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds() / 3600.0


def _break_at_gaps(when: list[datetime], *values: np.ndarray, max_gap_cadences: float
                   ) -> tuple[list[datetime], list[np.ndarray]]:
    """Sort by time and insert a NaN point inside every gap longer than
    ``max_gap_cadences`` times the typical spacing (the median step), so lines break there
    instead of joining points days apart."""
    order = np.argsort(np.array([t.timestamp() for t in when]), kind="stable")
    when = [when[i] for i in order]
    values = [np.asarray(v, dtype=np.float64)[order] for v in values]
    steps = np.diff([t.timestamp() for t in when])
    positive = steps[steps > 0]
    if positive.size == 0:
        return when, values
    limit = max_gap_cadences * float(np.median(positive))
    out_t: list[datetime] = []
    out_v: list[list[float]] = [[] for _ in values]
    for i, t in enumerate(when):
        if i and steps[i - 1] > limit:
            out_t.append(when[i - 1] + (t - when[i - 1]) / 2)
            for col in out_v:
                col.append(np.nan)
        out_t.append(t)
        for col, v in zip(out_v, values, strict=True):
            col.append(float(v[i]))
    return out_t, [np.asarray(col) for col in out_v]


def _curves(grid_h: Any, curves: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(grids, curves) as one 1-D array per curve; ``grid_h`` is shared (1-D) or per curve."""
    rows = curves.to_list() if isinstance(curves, pl.Series) else list(curves)
    s = [_array(c, f"curves[{k}]") for k, c in enumerate(rows)]
    grid_h = grid_h.to_list() if isinstance(grid_h, pl.Series) else grid_h
    if _is_nested(grid_h):
        grids = [_array(g, f"grid_h[{k}]") for k, g in enumerate(grid_h)]
        if len(grids) != len(s):
            raise ConfigError(f"{len(grids)} grids for {len(s)} curves")
    else:
        grids = [_array(grid_h, "grid_h")] * len(s)
    for k, (g, c) in enumerate(zip(grids, s, strict=True)):
        if g.size != c.size:
            raise ConfigError(f"curve {k} has {c.size} columns but grid_h has {g.size} values")
        if g.size == 0:
            raise ConfigError(f"curve {k} is empty")
    return grids, s


def _is_nested(values: Any) -> bool:
    return len(values) > 0 and isinstance(values[0], (Sequence, np.ndarray, pl.Series))


#: How `_shade_gaps` draws each kind of `flare_core.publish.full_disk.data_gaps` band.
_GAP_STYLE = {
    "no_forecast": {"color": "0.55", "alpha": 0.35, "label": "no forecast (no fresh data)"},
    "fewer_regions": {"color": "tab:purple", "alpha": 0.25,
                      "label": "a region dropped out"},
    "not_forecast": {"color": "tab:purple", "alpha": 0.12, "hatch": "//",
                     "label": "region with data not forecast"},
}


def _shade_gaps(ax: Any, gaps: pl.DataFrame | None, *, harpnum: int | None = None) -> None:
    """Shade the bands of a `data_gaps` frame (start, end, kind); one legend entry per kind.
    With ``harpnum``, only the gaps without any forecast and those of that region."""
    if gaps is None or gaps.is_empty():
        return
    if harpnum is not None:
        gaps = gaps.filter((pl.col("kind") == "no_forecast")
                           | pl.col("harpnums").list.contains(harpnum))
    seen: set[str] = set()
    for start, end, kind in gaps.select("start", "end", "kind").iter_rows():
        style = dict(_GAP_STYLE.get(kind, _GAP_STYLE["no_forecast"]))
        label = style.pop("label")
        ax.axvspan(start, end, lw=0, zorder=0, label=None if kind in seen else label, **style)
        seen.add(kind)


def _flare_class_letter(goes_class: pl.Expr) -> pl.Expr:
    return goes_class.str.to_uppercase().str.slice(0, 1)


def _mark_flares(ax: Any, flares: pl.DataFrame | None, start: datetime, end: datetime, *,
                 label_region: bool = True, c_rug: bool = True) -> None:
    """Observed flares peaking in [start, end]: M and X as vertical lines labelled with
    class (and NOAA region), C as short ticks along the bottom."""
    if flares is None or flares.is_empty():
        return
    inside = flares.filter(pl.col("peak_time").is_between(start, end))
    letter = _flare_class_letter(pl.col("goes_class"))
    big = inside.filter(letter.is_in(["M", "X"])).sort("peak_time")
    has_ar = "noaa_ar" in big.columns
    for row in big.iter_rows(named=True):
        x_class = row["goes_class"].upper().startswith("X")
        colour = "tab:red" if x_class else "tab:orange"
        ax.axvline(row["peak_time"], color=colour, lw=1.0 if x_class else 0.7, alpha=0.6,
                   zorder=1)
        text = row["goes_class"]
        if label_region and has_ar and row["noaa_ar"] is not None:
            text += f" AR{row['noaa_ar']}"
        ax.text(row["peak_time"], 0.99, text + " ", color=colour, fontsize=6.5, rotation=90,
                va="top", ha="right", transform=ax.get_xaxis_transform(),
                fontweight="bold" if x_class else "normal")
    if big.height:
        ax.plot([], [], color="tab:red", lw=1.0, label="observed X flare (peak)")
        ax.plot([], [], color="tab:orange", lw=0.7, label="observed M flare (peak)")
    small = inside.filter(letter == "C")
    if c_rug and small.height:
        ax.plot(small["peak_time"].to_list(), np.full(small.height, 0.012), "|",
                color="tab:olive", ms=7, mew=1.0, transform=ax.get_xaxis_transform(),
                label="observed C flare (peak)")

# -- forecast figures ------------------------------------------------------------------------


def plot_survival_curves(grid_h: Any, curves: Any, times: Any, out_path: str | Path, *,
                         flare_time: datetime | None = None, title: str | None = None,
                         cmap: str = "viridis", labels: Sequence[str] | None = None,
                         horizon_h: float | None = None) -> Path:
    """Survival curves S(t) of one region, one line per forecast, coloured by time.

    Parameters
    ----------
    grid_h : array-like of shape (m,), or a sequence of n such arrays
        Hours after each forecast's issue time at which S is given: one grid shared by all
        curves, or one grid per curve (forecasts re-based from their record time to their
        issue time have different grids; each curve is drawn on its own).
    curves : array-like of shape (n, m), or a sequence of n 1-D arrays
        S(t) for n forecasts of the same region (on the matching grid).
    times : sequence of n datetimes
        Issue (or record) time of each curve, UTC.
    out_path : str or Path
        PNG file to write.
    flare_time : datetime, optional
        Peak time of the flare that ended the track. If given, colours show the lead time
        ``flare_time - time`` in hours and a marker shows where each curve stood at that
        moment; otherwise colours show hours since the first curve.
    title : str, optional
        Figure title (e.g. ``"HARP 4698 (AR 12192)"``).
    labels : sequence of n str, optional
        One legend label per curve (e.g. its issue time). With labels, a few curves are
        drawn as distinct lines with a legend instead of a colour bar; the newest (latest
        time) is drawn thickest, in black.
    horizon_h : float, optional
        Mark the forecast window (e.g. 24 h) with a dotted vertical line.

    Returns
    -------
    Path
    """
    grids, s = _curves(grid_h, curves)
    when = _times(times, "times")
    _same_length(curves=s, times=when)
    if labels is not None:
        return _plot_labelled_curves(grids, s, when, list(labels), out_path, title=title,
                                     horizon_h=horizon_h)
    if flare_time is not None:
        flare = to_utc(flare_time)
        colour_value = np.array([_hours(flare, t) for t in when])
        label = "lead time before the flare (h)"
    else:
        colour_value = np.array([_hours(t, when[0]) for t in when])
        label = f"hours after {when[0]:%Y-%m-%d %H:%M} UTC"
    norm = Normalize(vmin=float(colour_value.min()),
                     vmax=float(max(colour_value.max(), colour_value.min() + 1e-9)))
    colours = colormaps[cmap]
    fig = _figure()
    ax = fig.add_subplot()
    for k in np.argsort(colour_value)[::-1]:
        grid = grids[k]
        ax.plot(grid, s[k], color=colours(norm(colour_value[k])), lw=1.3, alpha=0.9)
        if flare_time is not None and grid[0] <= colour_value[k] <= grid[-1]:
            ax.plot(colour_value[k], np.interp(colour_value[k], grid, s[k]), "o", ms=3.5,
                    color=colours(norm(colour_value[k])), mec="k", mew=0.4)
    x0 = min(0.0, min(float(g[0]) for g in grids))
    ax.set(xlim=(x0, max(float(g[-1]) for g in grids)), ylim=(0, 1.02),
           xlabel="hours after issue time",
           ylabel="S(t) = P(no flare by t)", title=title or "Survival curves")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    if horizon_h is not None:
        ax.axvline(horizon_h, color="0.4", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=ax, label=label)
    return _save(fig, out_path)


def _plot_labelled_curves(grids: list[np.ndarray], s: list[np.ndarray], when: list[datetime],
                          labels: list[str], out_path: str | Path, *, title: str | None,
                          horizon_h: float | None) -> Path:
    if len(labels) != len(s):
        raise ConfigError(f"{len(labels)} labels for {len(s)} curves")
    order = np.argsort([t.timestamp() for t in when], kind="stable")
    shades = colormaps["Blues"](np.linspace(0.35, 0.8, max(len(s) - 1, 1)))
    fig, (ax,) = _page_figure("survival", 8.0, 4.2)
    _margins(fig, left=0.62, right=2.05, top=0.3, bottom=0.5)
    for rank, k in enumerate(order):
        newest = rank == len(order) - 1
        ax.step(grids[k], s[k], where="post", lw=2.4 if newest else 1.3,
                color="black" if newest else shades[rank], label=labels[k], zorder=3 + rank)
    if horizon_h is not None:
        ax.axvline(horizon_h, color="tab:red", lw=0.9, ls="--",
                   label=f"end of the {horizon_h:g}-h window")
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set(xlim=(0, max(float(g[-1]) for g in grids)), ylim=(0, 1.02),
           xlabel="hours after the forecast's issue time",
           ylabel="S(t) = P(no \u2265M flare by t)", title=title or "Survival curves")
    # in the right margin, its top at the axes' top
    _legend(fig, *ax.get_legend_handles_labels(), loc="upper left",
            bbox_to_anchor=(1 - 1.98 / 8.0, 1 - 0.02 / 4.2), fontsize=8,
               title="issued (UTC)", title_fontsize=8)
    return _save(fig, out_path)


def plot_mean_lifetime_track(times: Any, mean_lifetime_h: Any, out_path: str | Path, *,
                             flare_times: Any = None, flare_classes: Sequence[str] | None = None,
                             observed_time_to_event_h: Any = None,
                             title: str | None = None,
                             max_gap_cadences: float = 3.0, cap_h: float | None = None,
                             gaps: pl.DataFrame | None = None,
                             harpnum: int | None = None) -> Path:
    """Predicted mean lifetime (expected hours to the next flare) of one region vs time.

    Parameters
    ----------
    times : sequence of n datetimes
        Issue (or record) times, UTC.
    mean_lifetime_h : array-like of shape (n,)
        Predicted mean time to the next flare, hours (NaN: no forecast; the line breaks).
    out_path : str or Path
        PNG file to write.
    flare_times : sequence of datetimes, optional
        Peak times of observed flares of the region, drawn as vertical lines.
    flare_classes : sequence of str, optional
        Their GOES classes, written next to the lines.
    observed_time_to_event_h : array-like of shape (n,), optional
        The true hours from each time to the next flare (NaN when censored), drawn for
        comparison: a good track follows it down to each flare.
    title : str, optional
    max_gap_cadences : float, optional
        The line breaks where consecutive times are more than this many typical spacings
        (the median step) apart, so a region's days without forecasts stay visible
        (default 3).
    cap_h : float, optional
        The restriction of the mean (e.g. 144 h: ``integral_0^cap S(t) dt``): drawn as a
        dotted line and named on the axis.
    gaps : pl.DataFrame, optional
        Bands to shade (`flare_core.publish.full_disk.data_gaps`).
    harpnum : int, optional
        The region shown: only its own gaps (and those without any forecast) are shaded.

    Returns
    -------
    Path
        The time axis spans ``times``; flares outside it are not drawn.
    """
    check_positive("max_gap_cadences", max_gap_cadences)
    if cap_h is not None:
        check_positive("cap_h", cap_h)
    when = _times(times, "times")
    life = _array(mean_lifetime_h, "mean_lifetime_h")
    _same_length(times=when, mean_lifetime_h=life)
    obs = None
    if observed_time_to_event_h is not None:
        obs = _array(observed_time_to_event_h, "observed_time_to_event_h")
        _same_length(times=when, observed_time_to_event_h=obs)
    when, (life, *rest) = _break_at_gaps(when, life, *([] if obs is None else [obs]),
                                         max_gap_cadences=max_gap_cadences)
    fig, (ax,) = _page_figure("lifetime", 7.0, 4.2)
    _margins(fig, left=0.95, right=0.32, top=0.3, bottom=0.0)
    _shade_gaps(ax, gaps, harpnum=harpnum)
    ax.plot(when, life, color="tab:blue", lw=1.6, marker=".", ms=3,
            label="predicted mean lifetime")
    if obs is not None:
        ax.plot(when, rest[0], color="0.3", lw=1.0, ls="--", label="observed time to next flare")
    if flare_times is not None:
        peaks = _times(flare_times, "flare_times")
        classes = list(flare_classes) if flare_classes is not None else [""] * len(peaks)
        if len(classes) != len(peaks):
            raise ConfigError(f"{len(classes)} flare_classes for {len(peaks)} flare_times")
        lo, hi = min(when), max(when)
        inside = [(t, c) for t, c in zip(peaks, classes, strict=True) if lo <= t <= hi]
        for i, (t, c) in enumerate(inside):
            ax.axvline(t, color="tab:red", lw=1.0, alpha=0.6,
                       label="observed flare peak" if i == 0 else None)
            if c:
                ax.text(t, 0.99, f"{c} ", color="tab:red", fontsize=6.5, rotation=90,
                        va="top", ha="right", transform=ax.get_xaxis_transform())
    ylabel = ("restricted mean time to next \u2265M flare, h"
              + (f"\n(capped at {cap_h:g} h)" if cap_h is not None else ""))
    ax.set(ylabel=ylabel, title=title or "Mean lifetime track")
    shown = np.concatenate([life, *rest])
    top = float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0
    if cap_h is not None:
        ax.axhline(cap_h, color="0.4", lw=0.8, ls=":", label=f"cap ({cap_h:g} h)")
        top = max(top, cap_h)
    ax.set_ylim(0, max(top, 1.0) * 1.08)
    _time_axis(ax, *_time_xlim(ax, min(when), max(when)))
    _bottom_legend(fig, *ax.get_legend_handles_labels(), ncols=3, axes_bottom=0.56,
                   height=4.2)
    return _save(fig, out_path)


def plot_full_disk_probability(full_disk: pl.DataFrame, out_path: str | Path, *,
                               flares: pl.DataFrame | None = None,
                               title: str | None = None,
                               max_gap_cadences: float = 3.0,
                               gaps: pl.DataFrame | None = None,
                               n_regions: bool = False) -> Path:
    """Full-disk probability of a C+, M+ and X+ flare in the next 24 h vs issue time.

    Parameters
    ----------
    full_disk : pl.DataFrame
        As returned by `flare_core.publish.full_disk.full_disk_probabilities`: issue_time
        and any of p_c24, p_m24, p_x24; with a ``model`` column, each model gets its own
        line style.
    out_path : str or Path
        PNG file to write.
    flares : pl.DataFrame, optional
        Observed flares (canonical flare frame: peak_time, goes_class, optional noaa_ar)
        peaking inside the plotted period: M and X as labelled vertical lines (class and
        NOAA region), C as ticks along the bottom.
    title : str, optional
    max_gap_cadences : float, optional
        Lines break where consecutive issue times are more than this many typical spacings
        apart (default 3).
    gaps : pl.DataFrame, optional
        Bands to shade (`flare_core.publish.full_disk.data_gaps`).
    n_regions : bool, optional
        Also draw the number of regions forecast (``n_regions`` column; first model) as a
        step line on a right-hand axis.

    Returns
    -------
    Path
        Classes without any probability (all null, e.g. a model that forecasts M+ only)
        are left out of the figure and its legend.
    """
    check_positive("max_gap_cadences", max_gap_cadences)
    if "issue_time" not in full_disk.columns or full_disk.is_empty():
        raise ConfigError("full_disk needs rows and an issue_time column")
    present = [c for c in PROBABILITY_COLUMNS if c in full_disk.columns]
    if not present:
        raise ConfigError(f"full_disk has none of {PROBABILITY_COLUMNS}")
    present = [c for c in present if full_disk[c].null_count() < full_disk.height] or present
    models = (full_disk["model"].unique(maintain_order=True).to_list()
              if "model" in full_disk.columns else [None])
    styles = ["-", "--", ":", "-."]
    fig = _figure(10.0, 4.6, layout=None)  # one per page, with a twin axis: not reused
    ax = fig.add_subplot()
    _margins(fig, left=0.75, right=0.7 if n_regions and "n_regions" in full_disk.columns
             else 0.32, top=0.3, bottom=0.0)
    _shade_gaps(ax, gaps)
    for m_i, model in enumerate(models):
        part = full_disk if model is None else full_disk.filter(pl.col("model") == model)
        part = part.sort("issue_time")
        when, series = _break_at_gaps(
            _times(part["issue_time"], "issue_time"),
            *(part[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in present),
            max_gap_cadences=max_gap_cadences)
        for col, p in zip(present, series, strict=True):
            name, colour = _CLASS_STYLE[col]
            label = name if model is None or len(models) == 1 else f"{name} {model}"
            ax.plot(when, p, color=colour, ls=styles[m_i % len(styles)], lw=1.4, label=label)
    start, end = full_disk["issue_time"].min(), full_disk["issue_time"].max()
    _mark_flares(ax, flares, start, end)
    xlim = _time_xlim(ax, start, end)
    ax.set(ylim=(0, 1.03), ylabel="P(flare in next 24 h), full disk",
           title=title or "Full-disk flare probability")
    if n_regions and "n_regions" in full_disk.columns:
        first = full_disk if models == [None] else full_disk.filter(
            pl.col("model") == models[0])
        first = first.sort("issue_time")
        right = ax.twinx()
        right.step(first["issue_time"].to_list(), first["n_regions"].to_numpy(), where="mid",
                   color="0.35", lw=0.9, ls="-", alpha=0.8, label="regions forecast (right)")
        right.set(ylim=(0, max(float(first["n_regions"].max() or 1), 1.0) * 2.2),
                  ylabel="regions forecast")
        right.yaxis.get_major_locator().set_params(integer=True)
    _time_axis(ax, *xlim)
    ax.grid(alpha=0.3)
    handles, labels = [], []
    for a in fig.axes:
        h, lab = a.get_legend_handles_labels()
        handles += h
        labels += lab
    _bottom_legend(fig, handles, labels, ncols=min(len(labels), 5), axes_bottom=0.56,
                   height=4.6)
    return _save(fig, out_path)


def plot_region_probability_tracks(forecasts: pl.DataFrame, out_path: str | Path, *,
                                   flares: pl.DataFrame | None = None,
                                   gaps: pl.DataFrame | None = None,
                                   title: str | None = None,
                                   max_gap_cadences: float = 3.0) -> Path:
    """One model's P(C+), P(M+), P(X+) in the next 24 h vs issue time, one panel per region.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows of ONE model (issue_time, harpnum, noaa_ars and any of p_c24, p_m24,
        p_x24); panels in ``harpnum`` order of first appearance.
    out_path : str or Path
    flares : pl.DataFrame, optional
        Observed flares with ``harpnum``: each panel marks its region's flares (M and X as
        labelled lines, C as ticks).
    gaps : pl.DataFrame, optional
        Bands to shade in every panel (`flare_core.publish.full_disk.data_gaps`).
    title : str, optional
    max_gap_cadences : float, optional
        Lines break at gaps of more than this many typical spacings (default 3).

    Returns
    -------
    Path
    """
    if forecasts.is_empty() or "issue_time" not in forecasts.columns:
        raise ConfigError("forecasts needs rows and an issue_time column")
    present = [c for c in PROBABILITY_COLUMNS if c in forecasts.columns
               and forecasts[c].null_count() < forecasts.height]
    if not present:
        raise ConfigError(f"forecasts have no values in any of {PROBABILITY_COLUMNS}")
    regions = forecasts["harpnum"].unique(maintain_order=True).to_list()
    start, end = forecasts["issue_time"].min(), forecasts["issue_time"].max()
    height = 1.1 + 1.9 * len(regions)
    # the legend differs between models (the classes each forecasts): not in the static layer
    fig, axes = _page_figure("regions", 10.0, height, len(regions), static_legends=False)
    _margins(fig, left=0.95, right=0.32, top=0.3, bottom=0.0, hspace=0.1)
    parts = forecasts.partition_by("harpnum", as_dict=True, maintain_order=True)
    own_flares = (flares.partition_by("harpnum", as_dict=True)
                  if flares is not None and "harpnum" in flares.columns else {})
    # the limits first: a panel's spans and lines then never autoscale the shared time
    # axis (each autoscale of one panel would set the limits of all the others)
    xlim = _time_xlim(axes[0], start, end)  # shared by every panel
    for ax, harpnum in zip(axes, regions, strict=True):
        part = parts[(harpnum,)].sort("issue_time")
        ax.set_ylim(0, 1.03)
        _shade_gaps(ax, gaps, harpnum=harpnum)
        when, series = _break_at_gaps(
            _times(part["issue_time"], "issue_time"),
            *(part[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in present),
            max_gap_cadences=max_gap_cadences)
        for col, p in zip(present, series, strict=True):
            name, colour = _CLASS_STYLE[col]
            ax.plot(when, p, color=colour, lw=1.3, label=name)
        _mark_flares(ax, own_flares.get((harpnum,)), start, end, label_region=False)
        ars = part["noaa_ars"].drop_nulls()
        ax.set_ylabel(f"HARP {harpnum}" + (f"\nAR {ars[-1]}" if len(ars) else ""))
    axes[0].set_title(title or "Probability of a flare in the next 24 h, by region")
    _time_axis(axes[-1], *xlim)
    handles, labels = {}, {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels.setdefault(lab, lab)
    _bottom_legend(fig, list(handles.values()), list(labels), ncols=min(len(labels), 6),
                   axes_bottom=0.56, height=height)
    return _save(fig, out_path)


# -- evaluation figures ----------------------------------------------------------------------


def plot_verification(reliability: pl.DataFrame, roc: pl.DataFrame, out_path: str | Path, *,
                      scores: pl.DataFrame | None = None,
                      title: str | None = None) -> Path:
    """Reliability diagram and ROC curves of several models side by side.

    Parameters
    ----------
    reliability : pl.DataFrame
        `flare_core.publish.verification.reliability_table`: model, mean_prob,
        event_rate, n.
    roc : pl.DataFrame
        `flare_core.publish.verification.roc_table`: model, fpr, tpr (may be empty when
        no window held both outcomes).
    out_path : str or Path
    scores : pl.DataFrame, optional
        `flare_core.publish.verification.score_forecasts`: the legend then gives each
        model's Brier score and ROC AUC, and the reliability panel the event rate.
    title : str, optional

    Returns
    -------
    Path
        Left: observed frequency vs forecast probability (marker area ~ forecasts per
        bin), with the diagonal; right: probability of detection vs false detection.
    """
    if reliability.is_empty():
        raise ConfigError("nothing to plot: the reliability table is empty")
    models = reliability["model"].unique(maintain_order=True).to_list()
    by_model = ({r["model"]: r for r in scores.iter_rows(named=True)}
                if scores is not None else {})
    fig = _figure(10.0, 4.8, layout=None)  # a page figure: fixed margins, legends inside
    rel_ax, roc_ax = fig.subplots(1, 2)
    _margins(fig, left=0.7, right=0.2, top=0.62 if title else 0.35, bottom=0.6)
    fig.subplots_adjust(wspace=0.22)
    colours = colormaps["tab10"]
    biggest = float(reliability["n"].max() or 1)
    for k, model in enumerate(models):
        colour = colours(k % 10)
        part = reliability.filter(pl.col("model") == model).sort("mean_prob")
        sc = by_model.get(model, {})
        label = model
        if sc.get("brier") is not None:
            label += f"  BS {sc['brier']:.3f}"
        rel_ax.plot(part["mean_prob"], part["event_rate"], color=colour, lw=1.2, label=label)
        rel_ax.scatter(part["mean_prob"], part["event_rate"], color=colour, zorder=3,
                       s=12 + 120 * part["n"].to_numpy() / biggest, alpha=0.8)
        curve = roc.filter(pl.col("model") == model) if roc.height else roc
        if curve.height:
            auc = sc.get("roc_auc")
            roc_ax.plot(curve["fpr"], curve["tpr"], color=colour, lw=1.5,
                        label=model + (f"  AUC {auc:.3f}" if auc is not None else ""))
    rel_ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect reliability")
    rates = {round(r["event_rate"], 6) for r in by_model.values()
             if r.get("event_rate") is not None}
    if len(rates) == 1:
        rel_ax.axhline(rates.pop(), color="0.7", ls="--", lw=1, label="observed event rate")
    rel_ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="forecast probability",
               ylabel="observed frequency", title="Reliability (marker size: forecasts)")
    rel_ax.grid(alpha=0.3)
    rel_ax.legend(loc="upper left", fontsize=7)
    roc_ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="no skill")
    roc_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="probability of false detection (FPR)",
               ylabel="probability of detection (TPR)", title="ROC")
    if not roc.height:
        roc_ax.text(0.5, 0.5, "no ROC: the window holds one outcome only", ha="center",
                    va="center", fontsize=9, color="0.3")
    roc_ax.grid(alpha=0.3)
    roc_ax.legend(loc="lower right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, out_path)


def plot_roc_curves(y_true: Any, scores: Any, out_path: str | Path, *,
                    title: str | None = None) -> Path:
    """ROC curves (probability of detection vs probability of false detection).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes (e.g. an M+ flare in the next 24 h).
    scores : array-like of shape (n,) or mapping name -> array-like of shape (n,)
        Forecast probabilities or any score, higher = more likely.
    out_path : str or Path
    title : str, optional

    Returns
    -------
    Path
        The legend gives each curve's area (scikit-learn ``roc_auc_score``).
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = _array(y_true, "y_true")
    if not (np.isin(y, (0, 1)).all() and 0 < y.sum() < y.size):
        raise ConfigError("y_true must be 0/1 and hold both classes for a ROC curve")
    fig = _figure(5.2, 4.8)
    ax = fig.add_subplot()
    for name, values in _named(scores, "scores").items():
        s = _array(values, f"scores[{name!r}]")
        _same_length(y_true=y, scores=s)
        fpr, tpr, _ = roc_curve(y, s)
        label = f"{name + ' ' if name else ''}AUC = {roc_auc_score(y, s):.3f}"
        ax.plot(fpr, tpr, lw=1.6, label=label)
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="no skill")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal",
           xlabel="probability of false detection (FPR)",
           ylabel="probability of detection (TPR)", title=title or "ROC curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out_path)


def plot_reliability_diagram(y_true: Any, probabilities: Any, out_path: str | Path, *,
                             n_bins: int = 10, title: str | None = None) -> Path:
    """Reliability diagram: observed event frequency vs forecast probability, with counts.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes.
    probabilities : array-like of shape (n,) or mapping name -> array-like
        Forecast probabilities in [0, 1].
    out_path : str or Path
    n_bins : int, optional
        Equal-width bins on [0, 1] (`flare_core.metrics.reliability_bins`); empty bins are
        not drawn.
    title : str, optional

    Returns
    -------
    Path
        Upper panel: the diagram with the diagonal (perfect reliability) and the
        climatological frequency; lower panel: forecasts per bin (log scale).
    """
    y = _array(y_true, "y_true")
    fig = _figure(5.4, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    width = 1.0 / n_bins
    named = _named(probabilities, "probabilities")
    for k, (name, values) in enumerate(named.items()):
        p = _array(values, f"probabilities[{name!r}]")
        _same_length(y_true=y, probabilities=p)
        bins = reliability_bins(y.astype(np.int64), p, n_bins=n_bins).filter(pl.col("n") > 0)
        line = top.plot(bins["mean_prob"], bins["event_rate"], marker="o", ms=4, lw=1.4,
                        label=name or "forecast")[0]
        offset = (k - (len(named) - 1) / 2) * width / max(len(named), 1)
        bottom.bar(bins["bin_lower"] + width / 2 + offset, bins["n"],
                   width=width / max(len(named), 1) * 0.9, color=line.get_color(), alpha=0.7)
    top.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect reliability")
    top.axhline(float(y.mean()), color="0.7", ls="--", lw=1, label="climatology")
    top.set(xlim=(0, 1), ylim=(0, 1.01), ylabel="observed frequency",
            title=title or "Reliability diagram")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.set(yscale="log", xlabel="forecast probability", ylabel="forecasts")
    bottom.grid(alpha=0.3)
    return _save(fig, out_path)


def plot_auc_vs_time(times_h: Any, auc: Any, out_path: str | Path, *,
                     mean_auc: Mapping[str, float] | float | None = None,
                     title: str | None = None) -> Path:
    """Time-dependent AUC(t) vs horizon t (cumulative cases / dynamic controls).

    Parameters
    ----------
    times_h : array-like of shape (m,)
        Horizons in hours.
    auc : array-like of shape (m,) or mapping name -> array-like
        AUC(t), e.g. from `flare_core.metrics.cumulative_dynamic_auc_at`.
    out_path : str or Path
    mean_auc : float or mapping name -> float, optional
        The weighted mean AUC of each curve, shown in the legend.
    title : str, optional

    Returns
    -------
    Path
    """
    t = _array(times_h, "times_h")
    means = _named(mean_auc, "mean_auc") if mean_auc is not None else {}
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    for name, values in _named(auc, "auc").items():
        a = _array(values, f"auc[{name!r}]")
        _same_length(times_h=t, auc=a)
        label = name or "AUC(t)"
        if name in means and means[name] is not None:
            label += f" (mean {float(means[name]):.3f})"
        ax.plot(t, a, marker="o", ms=3, lw=1.5, label=label)
    ax.axhline(0.5, color="0.6", ls=":", lw=1, label="no skill")
    ax.set(ylim=(0.4, 1.0), xlabel="horizon t (hours after record time)", ylabel="AUC(t)",
           title=title or "Cumulative/dynamic AUC(t)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out_path)


def plot_tss_vs_threshold(thresholds: Any, tss: Any, out_path: str | Path, *,
                          chosen: Mapping[str, float] | float | None = None,
                          xlabel: str = "warning threshold x",
                          title: str | None = None) -> Path:
    """True skill statistic as a function of the warning threshold.

    Parameters
    ----------
    thresholds : array-like of shape (m,)
        Threshold values x (e.g. hours for "warn if the mean lifetime is below x", or a
        probability).
    tss : array-like of shape (m,) or mapping name -> array-like
        TSS at each threshold (NaN where undefined; the line breaks).
    out_path : str or Path
    chosen : float or mapping name -> float, optional
        The operating threshold of each curve, chosen beforehand on validation data (never
        on the data plotted); drawn as a dashed vertical line.
    xlabel : str, optional
    title : str, optional

    Returns
    -------
    Path
    """
    x = _array(thresholds, "thresholds")
    picks = _named(chosen, "chosen") if chosen is not None else {}
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    lowest = 0.0
    for name, values in _named(tss, "tss").items():
        v = _array(values, f"tss[{name!r}]")
        _same_length(thresholds=x, tss=v)
        lowest = min(lowest, float(np.nanmin(v)) if np.isfinite(v).any() else 0.0)
        line = ax.plot(x, v, marker=".", ms=4, lw=1.5, label=name or "TSS")[0]
        if name in picks and picks[name] is not None:
            ax.axvline(float(picks[name]), color=line.get_color(), ls="--", lw=1,
                       label=f"chosen x = {float(picks[name]):g}")
    ax.axhline(0.0, color="0.6", ls=":", lw=1)
    ax.set(ylim=(lowest - 0.05, 1.0), xlabel=xlabel,
           ylabel="TSS", title=title or "TSS vs warning threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, out_path)
