"""A static, self-contained HTML page of one issue time's forecast.

The page shows the issue time, how fresh the data behind it is, the regions that could not
be forecast (with their reasons), the full-disk probabilities, the headline forecast (the
``headline`` rows, with the rule that made them) and then per model a table of regions
ranked by risk (P(M+), then P(C+)), with each region's plots. It loads nothing from elsewhere: the CSS is inline and there is no
JavaScript; plots are linked relative to the page or, with ``embed_images=True``, inlined
as ``data:`` URIs so the single file can be mailed or archived.

`render_forecast_page` draws a page from a forecast frame and plot paths;
`publish_latest_page` does the whole job from a `ForecastStore` (plots included).
"""

from __future__ import annotations

import atexit
import base64
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from ..config import check_positive
from ..errors import ConfigError, DataGapError, FlareflowError, ParseError
from ..io import atomic_write
from ..models.lifetime import lifetime_label
from ..store import Store
from ..timeutil import to_utc
from . import plots, verification
from .forecast_store import RECORD_WINDOW_MODELS, ForecastStore, conform_forecasts
from .full_disk import data_gaps, disk_coverage, full_disk_probabilities
from .summary import rank_regions

__all__ = ["render_forecast_page", "publish_latest_page"]

logger = logging.getLogger(__name__)

#: The ``model`` of the headline rows (`flare_core.forecasting.forecast_many`, ``headline``).
HEADLINE_MODEL = "headline"

_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True).from_string("""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flareflow forecast {{ issue_time }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 75em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.0em; margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
.meta td { text-align: left; }
.risk-high { background: #f8c9c4; } .risk-mid { background: #fde5bf; }
.risk-low { background: #eef5e6; }
.legend span { display: inline-block; padding: 0.15em 0.6em; margin-right: 0.4em;
               border: 1px solid #ddd; }
.stale, .warn { color: #a00; font-weight: bold; }
h2.headline { border-bottom: 2px solid #444; }
.failed { border-left: 4px solid #a00; padding: 0.1em 0.8em; margin: 0.6em 0;
          background: #fbeeee; }
.note { color: #555; font-size: 0.9em; margin: 0.2em 0 0.6em; }
ul.gaps { margin: 0.3em 0; }
.plots img { max-width: 48%; min-width: 18em; margin: 0.2em; border: 1px solid #ddd;
             vertical-align: top; }
.wide img { max-width: 100%; border: 1px solid #ddd; }
footer { margin-top: 2em; font-size: 0.85em; color: #666; }
</style>
</head>
<body>
<h1>Solar flare forecast &mdash; issued {{ issue_time }}</h1>
<table class="meta">
<tr><th class="text">Prediction window</th><td>{{ issue_time }} &ndash; {{ window_end }}
 (flare peak in the {{ horizon_h }} h after issue)</td></tr>
<tr><th class="text">Newest SHARP data</th><td{% if stale %} class="stale"{% endif %}>
{{ newest_data }}{% if data_age_h is not none %} ({{ data_age_h }} h before issue{% if stale %},
 older than {{ stale_after_h }} h: stale{% endif %}){% endif %}</td></tr>
<tr><th class="text">Coverage</th><td id="coverage"{% if coverage_warn %} class="warn"{% endif %}>
{{ coverage }}</td></tr>
<tr><th class="text">Data gaps</th><td id="gaps"{% if gaps %} class="warn"{% endif %}>
{% if gaps %}{{ gaps | length }} in the period shown ({{ period }}): see below{% else %}
none in the period shown ({{ period }}){% endif %}</td></tr>
<tr><th class="text">Observed flares, last 24 h</th><td id="recent-flares">{{ recent_flares }}</td></tr>
<tr><th class="text">Page generated</th><td>{{ generated_at }}</td></tr>
</table>
{% if gaps %}
<ul class="gaps">
{% for g in gaps %}<li>{{ g }}</li>
{% endfor %}
</ul>
{% endif %}
{% if failed %}
<div class="failed" id="failed-regions">
<p class="warn">{{ failed | length }} region{{ "s" if failed | length != 1 }} could not be
 forecast at this issue time (left out; the other regions are published):</p>
<ul>
{% for f in failed %}<li data-harpnum="{{ f.harpnum }}">HARP {{ f.harpnum }}: {{ f.reason }}</li>
{% endfor %}
</ul>
</div>
{% endif %}
{% for n in notes %}<p class="note">{{ n }}</p>
{% endfor %}
<p class="legend" id="risk-legend">Risk colours:
<span class="risk-high">high: P(C+) &ge; 80 %, P(M+) &ge; 50 %, P(X+) &ge; 20 %</span>
<span class="risk-mid">elevated: P(C+) &ge; 50 %, P(M+) &ge; 20 %, P(X+) &ge; 5 %</span>
<span class="risk-low">low: below those</span>
&mdash; = not forecast by that model.</p>

<h2>Full-disk probability</h2>
<table>
<tr><th class="text">model</th><th>C+</th><th>M+</th><th>X+</th><th>regions</th></tr>
{% for fd in full_disk %}
<tr><td class="text">{{ fd.model }} {{ fd.model_version }}</td>
<td class="{{ fd.c_class }}">{{ fd.p_c24 }}</td><td class="{{ fd.m_class }}">{{ fd.p_m24 }}</td>
<td class="{{ fd.x_class }}">{{ fd.p_x24 }}</td><td>{{ fd.n_regions }}</td></tr>
{% endfor %}
</table>
<p class="note">Full disk = 1 &minus; &prod;(1 &minus; p<sub>region</sub>) over the
{{ n_regions }} region{{ "s" if n_regions != 1 }} forecast at this issue time{{ disk_note }}:
flares from other regions (behind the limb, unnumbered, without fresh data) are not counted,
so it is a lower bound.</p>
{% if full_disk_plot %}
<div class="wide" id="full-disk-history"><img src="{{ full_disk_plot }}"
 alt="full-disk probability over the period shown, observed flares marked"></div>
{% endif %}

{% for m in models %}
{% if m.headline %}
<h2 id="table-{{ m.anchor }}" class="headline">Headline forecast &mdash; regions by risk
 ({{ m.model_version }})</h2>
<p class="note" id="headline-rule">The headline combines the models below by a rule fixed
 at training: {{ m.rule }}.</p>
{% else %}
{% if m.first_of_models %}<p class="note" id="models-note">The models, each on its own:</p>
{% endif %}
<h2 id="table-{{ m.anchor }}">Regions by risk &mdash; {{ m.model }} {{ m.model_version }}</h2>
{% endif %}
{% if m.note %}<p class="note">{{ m.note }}</p>{% endif %}
<table>
<tr><th>#</th><th>HARP</th><th class="text">NOAA AR</th><th>P(C+)</th><th>P(M+)</th>
<th>P(X+)</th><th>mean time to &ge;M flare (h, capped at {{ cap_h }})</th>
<th class="text">warning</th><th class="text">data time</th><th class="text">plots</th></tr>
{% for r in m.regions %}
<tr data-harpnum="{{ r.harpnum }}"><td>{{ loop.index }}</td><td>{{ r.harpnum }}</td>
<td class="text">{{ r.noaa_ars }}</td><td class="{{ r.c_class }}">{{ r.p_c24 }}</td>
<td class="{{ r.m_class }}">{{ r.p_m24 }}</td><td class="{{ r.x_class }}">{{ r.p_x24 }}</td>
<td title="{{ r.lifetime_text }}">{{ r.mean_lifetime_h }}</td>
<td class="text">{{ r.warning_class }}</td>
<td class="text">{{ r.t_rec }}</td>
<td class="text">{% for p in r.plots %}<a href="#{{ p.anchor }}">{{ p.label }}</a>
{% endfor %}</td></tr>
{% endfor %}
</table>
{% endfor %}

<h2 id="verification">Verification: the last {{ verification_days }} days</h2>
<p class="note">{{ verification_note }}</p>
{% if verification %}
<table>
<tr><th class="text">model</th><th>forecasts</th><th>&ge;M events</th><th>Brier score</th>
<th>BSS</th><th>ROC AUC</th><th>TSS (P(M+) &ge; {{ threshold }})</th><th>TSS (warning)</th></tr>
{% for v in verification %}
<tr><td class="text">{{ v.model }}</td><td>{{ v.n }}</td><td>{{ v.events }}</td>
<td>{{ v.brier }}</td><td>{{ v.bss }}</td><td>{{ v.roc_auc }}</td><td>{{ v.tss }}</td>
<td>{{ v.tss_warning }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if verification_plot %}
<div class="wide"><img src="{{ verification_plot }}"
 alt="reliability diagram and ROC curves of every model"></div>
{% endif %}

{% for m in plot_sections %}
<h2 id="plots-{{ m.anchor }}">Plots &mdash; {{ m.model }} model</h2>
{% for p in m.overview %}<div class="wide"><img src="{{ p.src }}" alt="{{ p.label }}, {{ m.model }}"></div>
{% endfor %}
{% for harpnum, items in m.regions %}
<div class="plots" id="plots-{{ m.anchor }}-{{ harpnum }}">
<h3>HARP {{ harpnum }} &mdash; {{ m.model }}</h3>
{% for p in items %}<img src="{{ p.src }}" alt="{{ p.label }}, HARP {{ harpnum }}, {{ m.model }}">
{% endfor %}
</div>
{% endfor %}
{% endfor %}
<footer>flareflow &middot; probabilities are for a flare of the class or above peaking in
the window; full disk = 1 &minus; &prod;(1 &minus; p<sub>region</sub>) over the forecast
regions. Times are UTC.</footer>
</body>
</html>
""")


def _fmt_time(t: datetime | None) -> str:
    return "—" if t is None else f"{to_utc(t):%Y-%m-%d %H:%M} UTC"


def _fmt_p(p: float | None) -> str:
    return "—" if p is None else f"{p:.1%}" if p >= 0.001 else "<0.1%"


def _risk(p: float | None, high: float, mid: float) -> str:
    if p is None:
        return ""
    return "risk-high" if p >= high else "risk-mid" if p >= mid else "risk-low"


def _img_src(path: Path, page_dir: Path, embed: bool) -> str:
    if embed:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return Path(os.path.relpath(path, page_dir)).as_posix()


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


#: Page label of a plot, from the last ``_`` part of its file name.
_PLOT_LABELS = {"survival": "survival curves", "lifetime": "lifetime track",
                "regions": "probability history"}


def _plot_label(path: Path) -> str:
    kind = path.stem.rsplit("_", 1)[-1]
    return _PLOT_LABELS.get(kind, kind)


def _fmt_score(v: float | None, digits: int = 3) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _fmt_flare(row: Mapping[str, Any]) -> str:
    ar = f" AR {row['noaa_ar']}" if row.get("noaa_ar") is not None else ""
    return f"{row['goes_class']}{ar} {row['peak_time']:%m-%d %H:%M}"


def render_forecast_page(forecasts: pl.DataFrame, out_path: str | Path, *,
                         region_plots: Mapping[int, Sequence[str | Path]] | None = None,
                         full_disk_plot: str | Path | None = None,
                         generated_at: datetime | None = None, horizon_h: float = 24.0,
                         stale_after_h: float = 3.0, embed_images: bool = False,
                         plot_model: str | None = None,
                         model_plots: Mapping[str, Mapping[int | None, Sequence[str | Path]]]
                         | None = None,
                         coverage: Mapping[str, Any] | None = None,
                         gaps: Sequence[str] = (), period: str | None = None,
                         recent_flares: pl.DataFrame | None = None,
                         verification: pl.DataFrame | None = None,
                         verification_plot: str | Path | None = None,
                         verification_note: str | None = None,
                         verification_days: float = 30.0, threshold: float = 0.5,
                         cap_h: float = 144.0, notes: Sequence[str] = (),
                         failed_regions: pl.DataFrame | None = None) -> Path:
    """Write the HTML page of one issue time.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`) of ONE issue
        time, any number of models.
    out_path : str or Path
        The HTML file (parent folders are created).
    region_plots : mapping harpnum -> sequence of PNG paths, optional
        Plots of ``plot_model`` (or of the first model) for each region; shorthand for
        ``model_plots={plot_model: region_plots}``.
    full_disk_plot : str or Path, optional
        A PNG of the full-disk probability series.
    generated_at : datetime, optional
        Shown as the page time (default: now, UTC).
    horizon_h : float, optional
        Prediction window length, hours (default 24).
    stale_after_h : float, optional
        Data older than this many hours before the issue time are flagged stale (default 3).
    embed_images : bool, optional
        Inline the PNGs as base64 ``data:`` URIs (one portable file) instead of linking
        them relative to the page.
    plot_model : str, optional
        The headline model: its table comes first.
    model_plots : mapping model -> (mapping harpnum or None -> sequence of PNG paths)
        Each model's own plots: per region (harpnum) and model-wide (key None). A model's
        table links to its own plots only. Labels come from the file names' last ``_``
        part (``survival``, ``lifetime``, ``regions``).
    coverage : mapping, optional
        ``n_forecast`` and ``n_on_disk`` (None when unknown) and ``freshness_h``: the
        coverage line ("N regions with fresh data of M on the disk").
    gaps : sequence of str, optional
        One sentence per data gap of the period shown (`full_disk.data_gaps`).
    period : str, optional
        The period the plots show, as shown with the gaps.
    recent_flares : pl.DataFrame, optional
        Flares (peak_time, goes_class, noaa_ar) of the 24 h before the issue time, listed
        in the header (None: the flare list was not available).
    verification : pl.DataFrame, optional
        `flare_core.publish.verification.score_forecasts` of the window.
    verification_plot : str or Path, optional
        Its reliability/ROC figure.
    verification_note : str, optional
        What was verified (period, outcome) or why nothing could be.
    verification_days, threshold : float, optional
        The window length (days) and probability threshold of the TSS, as shown.
    cap_h : float, optional
        The restriction of the mean lifetime, hours (default 144), as shown.
    notes : sequence of str, optional
        Further lines shown under the header (e.g. what the page could not read).
    failed_regions : pl.DataFrame, optional
        Regions left out of this issue time (``harpnum``, ``reason``;
        `ForecastStore.read_failed`), listed under the header with their reasons.

    The ``headline`` rows (`flare_core.forecasting.forecast_many`) come first, in their own
    table marked as the headline with the rule that made them (their ``method``), then
    ``plot_model``'s table and the other models'.

    Returns
    -------
    Path

    Raises
    ------
    ParseError
        If the rows span several issue times or fail `conform_forecasts`.
    """
    check_positive("horizon_h", horizon_h)
    check_positive("stale_after_h", stale_after_h)
    df = conform_forecasts(forecasts)
    if df["issue_time"].n_unique() != 1:
        raise ParseError(f"a forecast page shows one issue time; got "
                         f"{df['issue_time'].n_unique()}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    issue_time = df["issue_time"][0]
    newest = df["t_rec"].max()
    age_h = None if newest is None else (issue_time - newest).total_seconds() / 3600
    all_plots: dict[str, dict[int | None, list[Path]]] = {
        m: {h: [Path(p) for p in ps] for h, ps in per.items()}
        for m, per in (model_plots or {}).items()}
    if region_plots:
        owner = plot_model or sorted(df["model"].unique())[0]
        all_plots.setdefault(owner, {}).update(
            {int(h): [Path(p) for p in ps] for h, ps in region_plots.items()})
    models = []
    tables = rank_regions(df).partition_by(["model", "model_version"], maintain_order=True)
    # stable: the headline rows first, then plot_model's, then the others as ranked
    tables.sort(key=lambda t: (t["model"][0] != HEADLINE_MODEL, t["model"][0] != plot_model))
    for i, ranked in enumerate(tables):
        model = ranked["model"][0]
        anchor = _anchor(model)
        own = all_plots.get(model, {})
        rules = (ranked["method"].drop_nulls().unique().sort().to_list()
                 if "method" in ranked.columns else [])
        models.append({
            "model": model, "model_version": ranked["model_version"][0], "anchor": anchor,
            "headline": model == HEADLINE_MODEL,
            "rule": "; ".join(rules) or "not recorded",
            "first_of_models": i == 1 and tables[0]["model"][0] == HEADLINE_MODEL,
            "note": (f"{model} forecasts the {horizon_h:g} h after its data time (column "
                     "'data time'), not after the issue time."
                     if model in RECORD_WINDOW_MODELS else ""),
            "regions": [{
                "harpnum": r["harpnum"], "noaa_ars": r["noaa_ars"] or "—",
                "p_c24": _fmt_p(r["p_c24"]), "p_m24": _fmt_p(r["p_m24"]),
                "p_x24": _fmt_p(r["p_x24"]),
                "c_class": _risk(r["p_c24"], 0.8, 0.5), "m_class": _risk(r["p_m24"], 0.5, 0.2),
                "x_class": _risk(r["p_x24"], 0.2, 0.05),
                "mean_lifetime_h": ("—" if r["mean_lifetime_h"] is None
                                    else f"{r['mean_lifetime_h']:.0f}"),
                "lifetime_text": lifetime_label(
                    r["mean_lifetime_h"],
                    r["survival_curve"][-1] if r["survival_curve"] else None, tmax_h=cap_h),
                "warning_class": r["warning_class"] or "—", "t_rec": _fmt_time(r["t_rec"]),
                "plots": ([{"anchor": f"plots-{anchor}-{r['harpnum']}", "label": _plot_label(p)}
                           for p in own.get(r["harpnum"], [])]
                          + [{"anchor": f"plots-{anchor}", "label": _plot_label(p)}
                             for p in own.get(None, [])]),
            } for r in ranked.iter_rows(named=True)],
        })
    full_disk = [{**fd, "p_c24": _fmt_p(fd["p_c24"]), "p_m24": _fmt_p(fd["p_m24"]),
                  "p_x24": _fmt_p(fd["p_x24"]), "c_class": _risk(fd["p_c24"], 0.8, 0.5),
                  "m_class": _risk(fd["p_m24"], 0.5, 0.2),
                  "x_class": _risk(fd["p_x24"], 0.2, 0.05)}
                 for fd in full_disk_probabilities(df).iter_rows(named=True)]
    shown = sorted(int(h) for h in df["harpnum"].unique())
    order = [m["model"] for m in models]
    plot_sections = []
    for model in sorted(all_plots, key=lambda m: order.index(m) if m in order else len(order)):
        per = all_plots[model]
        regions = [(h, [{"src": _img_src(p, out.parent, embed_images), "label": _plot_label(p)}
                        for p in per[h]]) for h in shown if per.get(h)]
        overview = [{"src": _img_src(p, out.parent, embed_images), "label": _plot_label(p)}
                    for p in per.get(None, [])]
        if regions or overview:
            plot_sections.append({"model": model, "anchor": _anchor(model),
                                  "regions": regions, "overview": overview})
    cov = dict(coverage or {})
    n_on_disk = cov.get("n_on_disk")
    fresh_h = cov.get("freshness_h", 6.0)
    if n_on_disk is None:
        coverage_text = (f"{len(shown)} region{'s' * (len(shown) != 1)} forecast; the number "
                         "on the disk is unknown (no SHARP records available to the page)")
    else:
        coverage_text = (f"{len(shown)} region{'s' * (len(shown) != 1)} with fresh data of "
                         f"{n_on_disk} on the disk (a SHARP record served in the {fresh_h:g} h "
                         "before issue)")
        if cov.get("not_forecast"):
            coverage_text += "; not forecast: " + ", ".join(
                f"HARP {h}" for h in cov["not_forecast"])
    if recent_flares is None:
        recent = "unknown (no flare list available to the page)"
    elif recent_flares.is_empty():
        recent = "none of class C or above"
    else:
        big = recent_flares.filter(pl.col("goes_class").str.slice(0, 1).is_in(["M", "X"]))
        n_c = recent_flares.height - big.height
        recent = (", ".join(_fmt_flare(r) for r in big.iter_rows(named=True)) or "no M or X")
        recent += f"; {n_c} C-class" if n_c else ""
    ver_rows = [] if verification is None else [{
        "model": v["model"], "n": v["n"], "events": v["events"],
        "brier": _fmt_score(v["brier"]), "bss": _fmt_score(v["bss"], 2),
        "roc_auc": _fmt_score(v["roc_auc"]), "tss": _fmt_score(v["tss"], 2),
        "tss_warning": _fmt_score(v["tss_warning"], 2)} for v in verification.iter_rows(named=True)]
    html = _TEMPLATE.render(
        issue_time=_fmt_time(issue_time),
        window_end=_fmt_time(issue_time + timedelta(hours=horizon_h)),
        horizon_h=f"{horizon_h:g}", newest_data=_fmt_time(newest),
        data_age_h=None if age_h is None else f"{age_h:.1f}",
        stale=age_h is not None and age_h > stale_after_h, stale_after_h=f"{stale_after_h:g}",
        generated_at=_fmt_time(generated_at or datetime.now(UTC)),
        n_regions=len(shown), full_disk=full_disk,
        disk_note=("" if n_on_disk is None else f" (of {n_on_disk} on the disk with fresh data)"),
        full_disk_plot=(None if full_disk_plot is None
                        else _img_src(Path(full_disk_plot), out.parent, embed_images)),
        models=models, plot_sections=plot_sections, cap_h=f"{cap_h:g} h",
        coverage=coverage_text,
        coverage_warn=n_on_disk is not None and n_on_disk > len(shown),
        gaps=list(gaps), period=period or _fmt_time(issue_time), recent_flares=recent,
        notes=list(notes), verification=ver_rows, failed=_failed_list(failed_regions),
        verification_plot=(None if verification_plot is None
                           else _img_src(Path(verification_plot), out.parent, embed_images)),
        verification_note=verification_note or "No verification data.",
        verification_days=f"{verification_days:g}", threshold=f"{threshold:g}",
    )
    atomic_write(out, html)
    logger.info("wrote forecast page %s (%d regions, issue time %s)", out, len(shown),
                _fmt_time(issue_time))
    return out


def _failed_list(failed: pl.DataFrame | None) -> list[dict[str, Any]]:
    """One entry per region left out (its reasons joined when model versions differ)."""
    if failed is None or failed.is_empty():
        return []
    per = (failed.group_by("harpnum").agg(pl.col("reason").unique(maintain_order=True))
           .sort("harpnum"))
    return [{"harpnum": int(h), "reason": "; ".join(r)} for h, r in per.iter_rows()]


# -- publish_latest_page: read everything the page needs, draw the plots ----------------------


def _open_data_store(store: ForecastStore, data_store: str | Path | Store | None
                     ) -> Store | None:
    """The data store given, else the one at the installation root (``<root>/published/
    forecasts.duckdb`` -> ``<root>``, `flows.layout.Layout`), else None."""
    if isinstance(data_store, Store):
        return data_store
    if data_store is not None:
        return Store(data_store)
    root = Path(store.path).resolve().parent.parent
    return Store(root) if (root / "MANIFEST.json").is_file() else None


def _read_history(store: ForecastStore, start: datetime, end: datetime, *,
                  chunk_d: float = 31.0) -> pl.DataFrame:
    """Every forecast issued in [start, end] without the survival curves, read a month
    at a time so a long published period never holds all curves in memory."""
    parts = []
    t = start
    stop = end + timedelta(microseconds=1)
    while t < stop:
        nxt = min(t + timedelta(days=chunk_d), stop)
        parts.append(store.read(start=t, end=nxt).drop("survival_grid_h", "survival_curve"))
        t = nxt
    return pl.concat(parts)


def _pick_curves(part: pl.DataFrame, latest: datetime, offsets_h: Sequence[float]
                 ) -> pl.DataFrame:
    """The latest forecast and, per offset, the one issued nearest ``latest - offset``
    (at most half the offset away); each issue time once, newest first."""
    times = part["issue_time"].to_list()
    chosen = [max(times)]
    for off in offsets_h:
        target = latest - timedelta(hours=off)
        best = min(times, key=lambda t: abs((t - target).total_seconds()))
        if abs((best - target).total_seconds()) <= off * 1800 and best not in chosen:
            chosen.append(best)
    return part.filter(pl.col("issue_time").is_in(chosen)).sort("issue_time", descending=True)


def publish_latest_page(store: ForecastStore, out_dir: str | Path, *,
                        model: str | None = None, history_h: float = 72.0,
                        period_days: float = 27.0,
                        embed_images: bool = False,
                        generated_at: datetime | None = None,
                        data_store: str | Path | Store | None = None,
                        flares: pl.DataFrame | None = None, freshness_h: float = 6.0,
                        verification_days: float = 30.0, cap_h: float = 144.0,
                        curve_offsets_h: Sequence[float] = (6.0, 24.0, 48.0, 72.0)) -> Path:
    """Plots and ``index.html`` for the newest issue time ``T`` in ``store``.

    Reads the forecast store and, for the observed flares and the regions on the disk, the
    data store (`flare_core.store.Store`; default: the installation root holding the
    forecast store, ``<root>/published/forecasts.duckdb``, when it has a ``MANIFEST.json``).
    Only flares peaking before ``T`` are used. The plots show the PERIOD: the last
    ``period_days`` before ``T`` (the whole published period when it is shorter), so an
    hourly page costs the same after a year of service as after a day. Draws, into
    ``out_dir``:

    - ``full_disk.png``: full-disk P(C+/M+/X+) of the headline model over the period,
      with the observed C/M/X flares (class, peak, NOAA region), the number of regions
      forecast and the data gaps (`full_disk.data_gaps`) shaded;
    - ``<model>_regions.png`` per model: each current region's probabilities over the
      period, its own flares marked;
    - for models with survival curves, per region ``<model>_<harpnum>_survival.png``: the
      latest curve and those issued ``curve_offsets_h`` hours earlier (within
      ``history_h``), labelled by issue time;
    - for models with mean lifetimes, per region ``<model>_<harpnum>_lifetime.png``: the
      restricted mean time to the next >=M flare (capped at ``cap_h``) over the period;
      a region's plot that would show exactly another model's data (the headline's curves
      and lifetimes are its curve model's) is drawn once, under that model's name, and
      linked from both tables;
    - ``verification.png``: reliability and ROC of every model over the forecasts issued
      in the last ``verification_days`` whose window closed by ``T``
      (`flare_core.publish.verification`), with a table of Brier score, BSS, AUC, TSS.

    The page lists the regions left out of ``T`` (`ForecastStore.read_failed`) with their
    reasons, and shows the ``headline`` rows first, marked as the headline with their rule.
    Plots of earlier pages that this one does not show (a region that left the disk) are
    deleted from ``out_dir``; files not named like the page's plots are left alone.

    Parameters
    ----------
    store : ForecastStore
    out_dir : str or Path
    model : str, optional
        The model shown first (its table first, its full-disk history drawn; default:
        ``headline`` when the latest issue time has headline rows, else ``survival``, else
        the first model alphabetically). Every model's table links to that model's own
        plots.
    history_h : float, optional
        How far back the earlier survival curves may go, hours (default 72).
    period_days : float, optional
        Days before ``T`` the plots and the data gaps cover (default 27, about one solar
        rotation: every region on the disk now appeared within it).
    embed_images : bool, optional
        Inline the PNGs in the page.
    generated_at : datetime, optional
    data_store : path or Store, optional
        The data store to read flares and SHARP records from (see above).
    flares : pl.DataFrame, optional
        Observed flares (canonical, ``harpnum`` attached) instead of the data store's.
    freshness_h : float, optional
        Hours a SHARP record stays fresh, for the coverage (default 6, the forecasting
        default).
    verification_days : float, optional
        Length of the rolling verification window, days (default 30).
    cap_h : float, optional
        The restriction of the mean lifetime, hours (default 144).
    curve_offsets_h : sequence of float, optional
        Hours before ``T`` of the earlier survival curves drawn (default 6, 24, 48, 72).

    Returns
    -------
    Path
        ``out_dir / "index.html"``.

    Raises
    ------
    DataGapError
        If the store holds no forecast (of ``model``).
    """
    check_positive("history_h", history_h)
    check_positive("period_days", period_days)
    check_positive("freshness_h", freshness_h)
    stored = store.issue_times()  # one connection for both ends when no model is asked for
    latest = (store.latest_issue_time(model=model) if model is not None
              else stored[-1] if stored else None)
    if latest is None:
        raise DataGapError(f"forecast store {store.path} holds no forecast"
                           + (f" of model {model!r}" if model else ""))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    # the curves of the last history_h hours, the current issue time's rows among them
    recent = store.read(start=latest - timedelta(hours=history_h), end=latest + timedelta(
        microseconds=1))
    current = recent.filter(pl.col("issue_time") == latest)
    model = model or _headline_model(current)
    version = current.filter(pl.col("model") == model)["model_version"].max()
    cut = latest - timedelta(days=period_days)
    first = next(t for t in stored if t >= cut)  # the period's first issue time
    # read from the rolling verification's start where that lies before the period
    v_start, _ = verification.verification_window(latest, window_d=verification_days)
    read_from = next((t for t in stored if t >= v_start), latest)
    everything = _read_history(store, min(first, read_from), latest)
    history = everything.filter(pl.col("issue_time") >= first)
    head = history.filter(pl.col("model") == model, pl.col("model_version") == version)
    period = f"{_fmt_time(first)} \u2013 {_fmt_time(latest)}"

    data = _open_data_store(store, data_store)
    records = None
    if data is not None:
        try:
            if flares is None:
                flares = data.read_flares(start=min(first, read_from), end=latest)
            records = data.read_sharp(start=first - timedelta(hours=freshness_h), end=latest)
        except (FlareflowError, OSError) as e:
            notes.append(f"The data store {data.root} could not be read ({e}): no observed "
                         "flares or coverage.")
            logger.warning("page: data store %s unreadable: %s", data.root, e)
    else:
        notes.append("No data store next to the forecast store: observed flares and the "
                     "regions on the disk are not shown.")
    if flares is not None:
        flares = flares.filter(pl.col("peak_time") < latest)

    coverage = disk_coverage(head, records, freshness_h=freshness_h)
    gaps = data_gaps(coverage)
    gap_text = _gap_sentences(gaps, records)
    now = coverage.filter(pl.col("issue_time") == latest).row(0, named=True)

    current_regions = set(current["harpnum"])
    # The plots are collected first and drawn together (`_start_drawing`: over a few worker
    # processes when there are many), then placed in the order the page lists them.
    jobs: list[tuple[str, tuple, dict]] = []
    placing: list[tuple[str, int | None, list[int], bool]] = []  # model, harpnum, jobs, track

    def job(name: str, *args: Any, **kwargs: Any) -> int:
        jobs.append((name, args, kwargs))
        return len(jobs) - 1

    # each current model's version; each (model, version, region)'s lifetimes; each
    # region's M and X flares (split once here rather than filtered per plot)
    versions = dict(current.group_by("model").agg(pl.col("model_version").max()).iter_rows())
    lives = history.filter(pl.col("mean_lifetime_h").is_not_null()).partition_by(
        ["model", "model_version", "harpnum"], as_dict=True)
    big = (None if flares is None else flares.filter(
        pl.col("goes_class").str.slice(0, 1).is_in(["M", "X"])))
    big_by_region = {} if big is None else big.partition_by("harpnum", as_dict=True)
    for (m, v), part in history.group_by(["model", "model_version"], maintain_order=True):
        if m not in versions or v != versions[m]:
            continue
        mine = part.filter(pl.col("harpnum").is_in(list(current_regions)))
        placing.append((m, None, [job(
            "plot_region_probability_tracks", mine.sort("harpnum", "issue_time"),
            out / f"{m}_regions.png", flares=flares, gaps=gaps,
            title=f"{m}: P(flare in the next 24 h) by region")], True))
    # A region's plot that shows exactly another model's data (the headline's survival
    # curves and lifetimes are its curve model's) is drawn once and linked from both
    # tables: the headline comes last, so the plot is named and titled after its source.
    shared: dict[tuple, int] = {}

    def shared_job(key: tuple, name: str, *args: Any, **kwargs: Any) -> int:
        if key not in shared:
            shared[key] = job(name, *args, **kwargs)
        return shared[key]

    groups = sorted(recent.group_by(["model", "harpnum"], maintain_order=True),
                    key=lambda g: g[0][0] == HEADLINE_MODEL)  # stable: the rest keep order
    for (m, harpnum), part in groups:
        harpnum = int(harpnum)
        # (a model with plots is a current model: the test is on the current models)
        if harpnum not in current_regions or m not in versions:
            continue
        v = versions[m]
        part = part.filter(pl.col("model_version") == v)
        ars = part["noaa_ars"].drop_nulls()
        title = f"HARP {harpnum}" + (f" (AR {ars[-1]})" if len(ars) else "") + f", {m} model"
        mine_jobs: list[int] = []
        placing.append((m, harpnum, mine_jobs, False))
        curves = part.filter(pl.col("survival_curve").list.len() > 0,
                             pl.col("survival_grid_h").list.len()
                             == pl.col("survival_curve").list.len())
        if curves.height:
            picked = _pick_curves(curves, latest, [o for o in curve_offsets_h
                                                   if o <= history_h])
            labels = [f"{t:%m-%d %H:%M}" + (" (latest)" if t == latest else
                                            f" ({(t - latest).total_seconds() / 3600:+.0f} h)")
                      for t in picked["issue_time"]]
            grids, values = picked["survival_grid_h"].to_list(), picked["survival_curve"].to_list()
            key = ("survival", harpnum, tuple(picked["issue_time"]),
                   tuple(map(tuple, grids)), tuple(map(tuple, values)))
            mine_jobs.append(shared_job(
                key, "plot_survival_curves", grids, values, picked["issue_time"],
                out / f"{m}_{harpnum}_survival.png", title=title, labels=labels,
                horizon_h=24.0))
        life = lives.get((m, v, harpnum))
        if life is not None and life.height:
            own = None if big is None else big_by_region.get((harpnum,), big.clear())
            key = ("lifetime", harpnum, tuple(life["issue_time"]),
                   tuple(life["mean_lifetime_h"]))
            mine_jobs.append(shared_job(
                key, "plot_mean_lifetime_track", life["issue_time"], life["mean_lifetime_h"],
                out / f"{m}_{harpnum}_lifetime.png", title=title, cap_h=cap_h, gaps=gaps,
                harpnum=harpnum, flare_times=None if own is None else own["peak_time"],
                flare_classes=None if own is None else own["goes_class"].to_list()))
    full_disk = full_disk_probabilities(head).join(
        coverage.select("issue_time", "n_on_disk"), on="issue_time", how="left")
    fd_job = None
    if full_disk.height and any(full_disk[c].null_count() < full_disk.height
                                for c in ("p_c24", "p_m24", "p_x24")):
        fd_job = job("plot_full_disk_probability",
                     full_disk, out / "full_disk.png", flares=flares, gaps=gaps, n_regions=True,
                     title=f"Full-disk flare probability ({model} model, regions forecast)")
    # the plots are drawn (in the workers) while this process verifies and reads the rest
    collect = _start_drawing(jobs)
    ver, ver_plot, ver_note = _verify(everything, flares, latest, out,
                                      window_d=verification_days)
    recent_flares = (None if flares is None else flares.filter(
        pl.col("peak_time") >= latest - timedelta(hours=24)).sort("peak_time"))
    failed = store.read_failed(issue_time=latest)
    drawn = collect()
    model_plots: dict[str, dict[int | None, list[Path]]] = {}
    for m, harpnum, made, track in placing:
        if track:
            result = drawn[made[0]]
            if isinstance(result, ConfigError):  # no probabilities (a lifetime-only model)
                continue
            model_plots.setdefault(m, {})[None] = [_drawn(result)]
        else:
            model_plots.setdefault(m, {}).setdefault(harpnum, []).extend(
                _drawn(drawn[k]) for k in made)
    fd_plot = None if fd_job is None else _drawn(drawn[fd_job])
    page = render_forecast_page(
        current, out / "index.html", full_disk_plot=fd_plot, embed_images=embed_images,
        failed_regions=failed,
        generated_at=generated_at, plot_model=model, model_plots=model_plots,
        coverage={"n_forecast": now["n_forecast"], "n_on_disk": now["n_on_disk"],
                  "not_forecast": now["not_forecast"], "freshness_h": freshness_h},
        gaps=gap_text, period=period, recent_flares=recent_flares, verification=ver,
        verification_plot=ver_plot, verification_note=ver_note,
        verification_days=verification_days, cap_h=cap_h, notes=notes)
    shown = {p.name for per in model_plots.values() for paths in per.values() for p in paths}
    shown |= {p.name for p in (fd_plot, ver_plot) if p is not None}
    _remove_stale_plots(out, shown)
    return page


#: The names of the plots `publish_latest_page` draws.
_PAGE_PLOT = re.compile(r"(full_disk|verification|.+_regions|.+_\d+_(survival|lifetime))\.png")


def _remove_stale_plots(out: Path, shown: set[str]) -> None:
    """Delete the page's plots of earlier issue times that this page does not show (regions
    that left the disk, models no longer published): the directory holds the current page.
    Files not named like the page's plots (`_PAGE_PLOT`) are left alone."""
    for path in out.glob("*.png"):
        if path.name not in shown and _PAGE_PLOT.fullmatch(path.name):
            path.unlink(missing_ok=True)


#: Worker processes drawing a page's plots (``FLAREFLOW_PLOT_WORKERS``; default: up to 2,
#: the CPUs; 1 draws in this process). Matplotlib holds the GIL, so threads would not help.
PLOT_WORKERS_ENV = "FLAREFLOW_PLOT_WORKERS"
#: Fewer plots than this are drawn in this process (a worker pool costs its start-up once).
_PARALLEL_MIN_PLOTS = 12
_pool: Any = None
_exit_registered = False


def _plot_workers() -> int:
    raw = os.environ.get(PLOT_WORKERS_ENV)
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ConfigError(f"{PLOT_WORKERS_ENV} must be a whole number, got {raw!r}") from None
    return max(1, min(2, os.cpu_count() or 1))


def _draw_one(name: str, args: tuple, kwargs: dict) -> Path | ConfigError:
    """One plot (`flare_core.publish.plots.<name>`); a `ConfigError` is returned, not raised
    (the page leaves that plot out where it may)."""
    try:
        return getattr(plots, name)(*args, **kwargs)
    except ConfigError as e:
        return e


def _draw_batch(jobs: list[tuple[str, tuple, dict]]) -> list[Path | ConfigError]:
    """Several plots, in order, in one worker (one task: its figures are reused)."""
    return [_draw_one(*j) for j in jobs]


#: Rough drawing cost of one plot, for `_batches`, in units of one small page plot (~25 ms
#: on the 2-core development machine): a regions figure costs per panel (region).
_PLOT_COST = {"plot_full_disk_probability": 6.0}
_PANEL_COST = 0.6
#: The extra cost of a plot kind's first plot in a worker, where it draws the static layer
#: (`plots._draw_layered`): a few small plots, or per panel for a regions figure.
_KIND_COST = 3.0
_PANEL_KIND_COST = 1.4


def _job_cost(name: str, args: tuple) -> tuple[float, float]:
    """(cost of the plot, extra cost of its kind's first plot in a worker)."""
    if name == "plot_region_probability_tracks":
        panels = args[0]["harpnum"].n_unique() if args and hasattr(args[0], "columns") else 1
        return _PANEL_COST * panels, _PANEL_KIND_COST * panels
    return _PLOT_COST.get(name, 1.0), _KIND_COST


def _batches(jobs: list[tuple[str, tuple, dict]], n: int) -> list[list[int]]:
    """Job indices in at most ``n`` batches of about equal cost (`_job_cost`). A worker
    draws a kind's static layer once and then copies it (`plots._draw_layered`), so a kind
    goes to a second worker only where the load calls for it: the plots, costliest first,
    each go to the batch where the total, with that kind's first-plot cost if the batch
    has none of the kind yet, is least. Within a batch the jobs keep their order."""
    costs = [_job_cost(name, args) for name, args, _ in jobs]
    order = sorted(range(len(jobs)), key=lambda i: (-costs[i][0], jobs[i][0], i))
    batches: list[list[int]] = [[] for _ in range(n)]
    totals = [0.0] * n
    kinds: list[set[str]] = [set() for _ in range(n)]
    for i in order:
        name = jobs[i][0]
        cost, first = costs[i]
        after = [totals[b] + cost + (0.0 if name in kinds[b] else first) for b in range(n)]
        k = after.index(min(after))
        batches[k].append(i)
        totals[k] = after[k]
        kinds[k].add(name)
    return [sorted(b) for b in batches if b]


def _drawn(result: Path | ConfigError) -> Path:
    if isinstance(result, ConfigError):
        raise result
    return result


def _close_pool() -> None:
    """Stop the plot workers while the interpreter is still whole (at exit)."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def _start_drawing(jobs: list[tuple[str, tuple, dict]]
                   ) -> Callable[[], list[Path | ConfigError]]:
    """Start drawing every plot job, in a persistent pool of worker processes when there
    are many and more than one worker is allowed (in batches by plot kind, `_batches`),
    and return the call that waits for the results, in job order. Without workers (few
    jobs, one worker, or in a daemonic process) the plots are drawn here when that call is
    made. The PNGs are the same either way: each plot is a pure function of its
    arguments."""
    import multiprocessing

    global _pool, _exit_registered
    workers = _plot_workers()
    if (len(jobs) < _PARALLEL_MIN_PLOTS or workers < 2
            or multiprocessing.current_process().daemon):
        return lambda: [_draw_one(*j) for j in jobs]
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if _pool is None or getattr(_pool, "_max_workers", workers) != workers:
        _close_pool()
        # spawn: a fresh interpreter per worker (no fork of a process running threads);
        # each imports matplotlib once, then serves every later page of this process
        _pool = ProcessPoolExecutor(max_workers=workers,
                                    mp_context=multiprocessing.get_context("spawn"))
        if not _exit_registered:
            atexit.register(_close_pool)
            _exit_registered = True
    batches = _batches(jobs, workers)

    def broken() -> list[Path | ConfigError]:  # a worker died (killed, out of memory)
        global _pool
        logger.warning("page: plot worker pool broke; drawing the plots in this process")
        _pool = None
        return [_draw_one(*j) for j in jobs]

    try:
        futures = [_pool.submit(_draw_batch, [jobs[i] for i in b]) for b in batches]
    except BrokenProcessPool:
        return broken

    def collect() -> list[Path | ConfigError]:
        results: list[Path | ConfigError] = [ConfigError("not drawn")] * len(jobs)
        try:
            for batch, future in zip(batches, futures, strict=True):
                for i, result in zip(batch, future.result(), strict=True):
                    results[i] = result
        except BrokenProcessPool:
            return broken()
        return results

    return collect


def _headline_model(current: pl.DataFrame) -> str:
    """The model shown first: ``headline`` when published, else ``survival`` (its region
    plots carry curves and lifetimes), else the first alphabetically."""
    models = set(current["model"])
    for name in (HEADLINE_MODEL, "survival"):
        if name in models:
            return name
    return sorted(models)[0]


def _gap_sentences(gaps: pl.DataFrame, records: pl.DataFrame | None) -> list[str]:
    """The page's line per gap; a region that dropped out gets its last SHARP record."""
    last = ({} if records is None else dict(
        records.group_by("harpnum").agg(pl.col("t_rec").max()).iter_rows()))
    out = []
    for g in gaps.iter_rows(named=True):
        text = g["detail"]
        if g["kind"] == "fewer_regions" and last:
            seen = [f"HARP {h} {_fmt_time(last[h])}" for h in g["harpnums"] if h in last]
            if seen:
                text += "; last SHARP record: " + ", ".join(seen)
        out.append(text)
    return out


def _verify(history: pl.DataFrame, flares: pl.DataFrame | None, latest: datetime, out: Path,
            *, window_d: float) -> tuple[pl.DataFrame | None, Path | None, str]:
    """Scores, figure and note of the rolling verification (None where it cannot be done)."""
    start, end = verification.verification_window(latest, window_d=window_d)
    if flares is None:
        return None, None, "Not verified: no flare list available to the page."
    labelled = verification.label_forecasts(history, flares, issue_time=latest,
                                            window_d=window_d).filter(
        pl.col("p_m24").is_not_null())
    if labelled.is_empty():
        return None, None, (f"Not verified yet: no forecast issued {_fmt_time(start)} \u2013 "
                            f"{_fmt_time(end)} (a forecast is verified once its 24-h window "
                            "has closed).")
    first, last = labelled["issue_time"].min(), labelled["issue_time"].max()
    scores = verification.score_forecasts(labelled)
    fig = plots.plot_verification(verification.reliability_table(labelled),
                                  verification.roc_table(labelled), out / "verification.png",
                                  scores=scores,
                                  title=f"P(M+ in 24 h), forecasts issued "
                                        f"{first:%Y-%m-%d %H:%M} \u2013 {last:%Y-%m-%d %H:%M} UTC")
    observed = verification.outcome_column("p_m24")
    events = int(labelled.filter(pl.col("model") == labelled["model"][0])[observed].sum())
    note = (f"Forecasts issued {_fmt_time(first)} \u2013 {_fmt_time(last)} (every issue time "
            f"of the last {window_d:g} days whose 24-h window closed by this issue time), "
            "scored against the >=M flares of their region peaking in (issue time, issue "
            f"time + 24 h]; {events} region-hours with a flare. BSS is against the window's "
            "own event rate; TSS counts P(M+) >= 0.5 as a yes, and the warning TSS the "
            "model's own warning.")
    return scores, fig, note
