"""A static, self-contained HTML page of one issue time's forecast.

The page shows the issue time, how fresh the data behind it is, the full-disk
probabilities, and per model a table of regions ranked by risk (P(M+), then P(C+)), with
each region's plots. It loads nothing from elsewhere: the CSS is inline and there is no
JavaScript; plots are linked relative to the page or, with ``embed_images=True``, inlined
as ``data:`` URIs so the single file can be mailed or archived.

`render_forecast_page` draws a page from a forecast frame and plot paths;
`publish_latest_page` does the whole job from a `ForecastStore` (plots included).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import polars as pl

from ..config import check_positive
from ..errors import DataGapError, ParseError
from ..timeutil import to_utc
from . import plots
from .forecast_store import ForecastStore, conform_forecasts
from .full_disk import full_disk_probabilities
from .summary import rank_regions

__all__ = ["render_forecast_page", "publish_latest_page"]

logger = logging.getLogger(__name__)

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
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
.meta td { text-align: left; }
.risk-high { background: #f8c9c4; } .risk-mid { background: #fde5bf; }
.risk-low { background: #eef5e6; }
.stale { color: #a00; font-weight: bold; }
.plots img { max-width: 48%; min-width: 18em; margin: 0.2em; border: 1px solid #ddd; }
.fulldisk img { max-width: 100%; }
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
<tr><th class="text">Page generated</th><td>{{ generated_at }}</td></tr>
<tr><th class="text">Regions</th><td>{{ n_regions }}</td></tr>
</table>

<h2>Full-disk probability</h2>
<table>
<tr><th class="text">model</th><th>C+</th><th>M+</th><th>X+</th><th>regions</th></tr>
{% for fd in full_disk %}
<tr><td class="text">{{ fd.model }} {{ fd.model_version }}</td><td>{{ fd.p_c24 }}</td>
<td>{{ fd.p_m24 }}</td><td>{{ fd.p_x24 }}</td><td>{{ fd.n_regions }}</td></tr>
{% endfor %}
</table>
{% if full_disk_plot %}
<p class="fulldisk"><img src="{{ full_disk_plot }}" alt="full-disk probability time series"></p>
{% endif %}

{% for m in models %}
<h2>Regions by risk &mdash; {{ m.model }} {{ m.model_version }}</h2>
<table>
<tr><th>#</th><th>HARP</th><th class="text">NOAA AR</th><th>P(C+)</th><th>P(M+)</th>
<th>P(X+)</th><th>mean lifetime (h)</th><th class="text">warning</th>
<th class="text">data time</th><th class="text">plots</th></tr>
{% for r in m.regions %}
<tr data-harpnum="{{ r.harpnum }}"><td>{{ loop.index }}</td><td>{{ r.harpnum }}</td>
<td class="text">{{ r.noaa_ars }}</td><td class="{{ r.c_class }}">{{ r.p_c24 }}</td>
<td class="{{ r.m_class }}">{{ r.p_m24 }}</td><td class="{{ r.x_class }}">{{ r.p_x24 }}</td>
<td>{{ r.mean_lifetime_h }}</td><td class="text">{{ r.warning_class }}</td>
<td class="text">{{ r.t_rec }}</td>
<td class="text">{% for p in r.plots %}<a href="#plots-{{ r.harpnum }}">{{ p.label }}</a>
{% endfor %}</td></tr>
{% endfor %}
</table>
{% endfor %}

{% if region_plots %}
<h2>Region plots{% if plot_model %} &mdash; {{ plot_model }} model{% endif %}</h2>
{% for harpnum, items in region_plots %}
<div class="plots" id="plots-{{ harpnum }}">
<h3>HARP {{ harpnum }}</h3>
{% for p in items %}<img src="{{ p.src }}" alt="{{ p.label }}, HARP {{ harpnum }}">
{% endfor %}
</div>
{% endfor %}
{% endif %}
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


def render_forecast_page(forecasts: pl.DataFrame, out_path: str | Path, *,
                         region_plots: Mapping[int, Sequence[str | Path]] | None = None,
                         full_disk_plot: str | Path | None = None,
                         generated_at: datetime | None = None, horizon_h: float = 24.0,
                         stale_after_h: float = 3.0, embed_images: bool = False,
                         plot_model: str | None = None) -> Path:
    """Write the HTML page of one issue time.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Forecast rows (`flare_core.publish.forecast_store.FORECAST_SCHEMA`) of ONE issue
        time, any number of models.
    out_path : str or Path
        The HTML file (parent folders are created).
    region_plots : mapping harpnum -> sequence of PNG paths, optional
        Plots shown for each region (labels come from the file names).
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
        The model whose forecasts the region plots show: its table comes first and the
        plots section names it.

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
    models = []
    tables = rank_regions(df).partition_by(["model", "model_version"], maintain_order=True)
    tables.sort(key=lambda t: t["model"][0] != plot_model)  # stable: the plotted model first
    for ranked in tables:
        part = ranked
        models.append({
            "model": part["model"][0], "model_version": part["model_version"][0],
            "regions": [{
                "harpnum": r["harpnum"], "noaa_ars": r["noaa_ars"] or "—",
                "p_c24": _fmt_p(r["p_c24"]), "p_m24": _fmt_p(r["p_m24"]),
                "p_x24": _fmt_p(r["p_x24"]),
                "c_class": _risk(r["p_c24"], 0.8, 0.5), "m_class": _risk(r["p_m24"], 0.5, 0.2),
                "x_class": _risk(r["p_x24"], 0.2, 0.05),
                "mean_lifetime_h": ("—" if r["mean_lifetime_h"] is None
                                    else f"{r['mean_lifetime_h']:.1f}"),
                "warning_class": r["warning_class"] or "—", "t_rec": _fmt_time(r["t_rec"]),
                "plots": [{"label": Path(p).stem.split("_", 1)[-1]}
                          for p in (region_plots or {}).get(r["harpnum"], [])],
            } for r in ranked.iter_rows(named=True)],
        })
    full_disk = [{**fd, "p_c24": _fmt_p(fd["p_c24"]), "p_m24": _fmt_p(fd["p_m24"]),
                  "p_x24": _fmt_p(fd["p_x24"])}
                 for fd in full_disk_probabilities(df).iter_rows(named=True)]
    shown = sorted(int(h) for h in df["harpnum"].unique())
    plot_items = [(h, [{"src": _img_src(Path(p), out.parent, embed_images),
                        "label": Path(p).stem.split("_", 1)[-1]}
                       for p in (region_plots or {}).get(h, [])]) for h in shown]
    html = _TEMPLATE.render(
        issue_time=_fmt_time(issue_time),
        window_end=_fmt_time(issue_time + timedelta(hours=horizon_h)),
        horizon_h=f"{horizon_h:g}", newest_data=_fmt_time(newest),
        data_age_h=None if age_h is None else f"{age_h:.1f}",
        stale=age_h is not None and age_h > stale_after_h, stale_after_h=f"{stale_after_h:g}",
        generated_at=_fmt_time(generated_at or datetime.now(UTC)),
        n_regions=len(shown), full_disk=full_disk,
        full_disk_plot=(None if full_disk_plot is None
                        else _img_src(Path(full_disk_plot), out.parent, embed_images)),
        models=models, region_plots=[(h, items) for h, items in plot_items if items],
        plot_model=plot_model,
    )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    logger.info("wrote forecast page %s (%d regions, issue time %s)", out, len(shown),
                _fmt_time(issue_time))
    return out


def publish_latest_page(store: ForecastStore, out_dir: str | Path, *,
                        model: str | None = None, history_h: float = 72.0,
                        embed_images: bool = False,
                        generated_at: datetime | None = None) -> Path:
    """Plots and ``index.html`` for the newest issue time in ``store``.

    Draws, into ``out_dir``, per region: the survival curves of the forecasts issued in the
    last ``history_h`` hours coloured by issue time, each on its own time grid
    (``<harpnum>_survival.png``) and the
    mean-lifetime track over the same period (``<harpnum>_lifetime.png``; the line breaks
    where the region went without forecasts for more than a few issue cadences); and the
    full-disk probability series (``full_disk.png``). Regions without curves or lifetimes
    skip that plot. With several models, the plots use ``model`` (default: the first model
    of the latest issue time, alphabetically); the tables show every model.

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
    latest = store.latest_issue_time(model=model)
    if latest is None:
        raise DataGapError(f"forecast store {store.path} holds no forecast"
                           + (f" of model {model!r}" if model else ""))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    current = store.read(issue_time=latest)
    model = model or sorted(current["model"].unique())[0]
    version = current.filter(pl.col("model") == model)["model_version"].max()
    recent = store.read(start=latest - timedelta(hours=history_h), end=latest + timedelta(
        microseconds=1), model=model).filter(pl.col("model_version") == version)
    region_plots: dict[int, list[Path]] = {}
    for (harpnum,), part in recent.group_by(["harpnum"], maintain_order=True):
        harpnum = int(harpnum)
        if harpnum not in set(current["harpnum"]):
            continue
        title = f"HARP {harpnum}" + (f" (AR {part['noaa_ars'][-1]})"
                                     if part["noaa_ars"][-1] else "") + f", {model} model"
        paths = region_plots.setdefault(harpnum, [])
        # each curve on its own grid (hours after its issue time; re-based forecasts differ)
        curves = part.filter(pl.col("survival_curve").list.len() > 0,
                             pl.col("survival_grid_h").list.len()
                             == pl.col("survival_curve").list.len())
        if curves.height:
            paths.append(plots.plot_survival_curves(
                curves["survival_grid_h"].to_list(), curves["survival_curve"].to_list(),
                curves["issue_time"], out / f"{harpnum}_survival.png", title=title))
        life = part.filter(pl.col("mean_lifetime_h").is_not_null())
        if life.height:
            paths.append(plots.plot_mean_lifetime_track(
                life["issue_time"], life["mean_lifetime_h"], out / f"{harpnum}_lifetime.png",
                title=title))
    full_disk = full_disk_probabilities(recent)
    fd_plot = None
    if full_disk.height and any(full_disk[c].null_count() < full_disk.height
                                for c in ("p_c24", "p_m24", "p_x24")):
        fd_plot = plots.plot_full_disk_probability(
            full_disk, out / "full_disk.png",
            title=f"Full-disk flare probability, {model} {version}")
    return render_forecast_page(current, out / "index.html", region_plots=region_plots,
                                full_disk_plot=fd_plot, embed_images=embed_images,
                                generated_at=generated_at, plot_model=model)
