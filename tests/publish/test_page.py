"""The HTML page: every region listed by risk, self-contained, images resolvable."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from forecast_factory import T0, make_forecasts

from flare_core.errors import DataGapError, ParseError
from flare_core.publish.forecast_store import ForecastStore
from flare_core.publish.page import publish_latest_page, render_forecast_page


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])
        elif tag in ("script", "link", "iframe"):
            self.scripts += 1
        if tag not in ("img", "meta", "br", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (self.open[-5:], tag)
        self.open.pop()


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    assert c.open == []  # every tag closed, properly nested
    return c


def _assert_self_contained(html: str, c: _Collector) -> None:
    assert c.scripts == 0
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def test_page_lists_every_region_ranked_by_risk(tmp_path):
    fc = make_forecasts([T0], harpnums=(4698, 4676, 4685, 4700))
    page = render_forecast_page(fc, tmp_path / "site" / "index.html",
                                generated_at=datetime(2014, 10, 22, 0, 5, tzinfo=UTC))
    html = page.read_text()
    c = _parse(html)
    _assert_self_contained(html, c)
    assert "2014-10-22 00:00 UTC" in html and "2014-10-23 00:00 UTC" in html
    assert "2014-10-21 23:48 UTC (0.2 h before issue)" in html
    assert 'class="stale"' not in html
    rows = re.findall(r'<tr data-harpnum="(\d+)">', html)
    assert sorted(map(int, rows)) == sorted(fc["harpnum"].to_list())
    expected = fc.sort("p_m24", descending=True)["harpnum"].to_list()
    assert list(map(int, rows)) == expected
    for ar in fc["noaa_ars"]:
        assert f">{ar}<" in html
    top = fc.sort("p_m24", descending=True).row(0, named=True)
    assert f"{top['p_m24']:.1%}" in html


def test_page_with_plots_links_and_embeds(tmp_path):
    store = ForecastStore(tmp_path / "f.duckdb")
    times = [T0 + timedelta(hours=h) for h in range(8)]
    store.upsert(make_forecasts(times))
    store.upsert(make_forecasts(times[-1:], model="defn", version="2", with_curves=False))
    page = publish_latest_page(store, tmp_path / "site", history_h=24)
    html = page.read_text()
    c = _parse(html)
    _assert_self_contained(html, c)
    # survival + lifetime per region (cox_ph), lifetime per region (the factory's defn rows
    # carry lifetimes, no curves), a probability history per model, full disk; no flare list
    # next to this bare forecast store: no verification figure, and the page says so
    assert len(c.imgs) == 3 * 2 + 3 + 2 + 1
    assert "Not verified: no flare list" in html and "No data store next to" in html
    for src in c.imgs:
        assert not src.startswith(("/", "data:"))
        assert (page.parent / src).is_file()
    for anchor in c.links:
        assert anchor.startswith("#plots-") and f'id="{anchor[1:]}"' in html
    assert html.count("Regions by risk") == 2  # one table per model
    # each model's table links to that model's own plots only
    tables = re.split(r"<h2 id=\"table-", html)[1:]
    for table in tables:
        model = table.split('"', 1)[0]
        body = table.split("</table>", 1)[0]
        links = re.findall(r'href="#plots-([A-Za-z0-9_-]+?)(?:-\d+)?"', body)
        assert links and set(links) == {model}, (model, set(links))
    assert "defn_regions.png" in html and "cox_ph_4698_survival.png" in html
    # the headline model (default: the first alphabetically, cox_ph) is listed first
    assert "Plots &mdash; cox_ph model" in html
    assert html.index("Regions by risk &mdash; cox_ph") < html.index("Regions by risk &mdash; defn")
    defn_first = publish_latest_page(store, tmp_path / "defn", model="defn").read_text()
    assert (defn_first.index("Regions by risk &mdash; defn")
            < defn_first.index("Regions by risk &mdash; cox_ph"))
    embedded = publish_latest_page(store, tmp_path / "single", history_h=24, embed_images=True)
    c2 = _parse(embedded.read_text())
    assert len(c2.imgs) == 12 and all(s.startswith("data:image/png;base64,") for s in c2.imgs)


def test_survival_plots_with_curves_on_different_grids(tmp_path):
    """Forecasts re-based from their record time to the issue time each have their own grid;
    every region still gets its survival plot."""
    store = ForecastStore(tmp_path / "f.duckdb")
    times = [T0 + timedelta(hours=h) for h in range(6)]
    fc = make_forecasts(times).with_columns(  # grid shifted by the hours since the record
        pl.col("survival_grid_h").list.eval(pl.element() + 0.25).alias("survival_grid_h"))
    fc = fc.with_columns(
        pl.when(pl.col("issue_time") == times[-1])
        .then(pl.col("survival_grid_h").list.slice(1)).otherwise(pl.col("survival_grid_h"))
        .alias("survival_grid_h"),
        pl.when(pl.col("issue_time") == times[-1])
        .then(pl.col("survival_curve").list.slice(1)).otherwise(pl.col("survival_curve"))
        .alias("survival_curve"))
    assert fc["survival_grid_h"].list.len().n_unique() == 2
    page = publish_latest_page(store_with(store, fc), tmp_path / "site", history_h=24)
    html = page.read_text()
    for h in fc["harpnum"].unique():
        assert (page.parent / f"cox_ph_{h}_survival.png").is_file()
        assert f'src="cox_ph_{h}_survival.png"' in html


def store_with(store: ForecastStore, fc: pl.DataFrame) -> ForecastStore:
    store.upsert(fc)
    return store


def test_stale_data_is_flagged(tmp_path):
    fc = make_forecasts([T0]).with_columns(t_rec=pl.lit(T0 - timedelta(hours=7)))
    html = render_forecast_page(fc, tmp_path / "p.html").read_text()
    assert 'class="stale"' in html and "7.0 h before issue" in html


def test_page_refuses_several_issue_times_and_empty_store(tmp_path):
    with pytest.raises(ParseError, match="one issue time"):
        render_forecast_page(make_forecasts([T0, T0 + timedelta(hours=1)]), tmp_path / "p.html")
    with pytest.raises(DataGapError, match="no forecast"):
        publish_latest_page(ForecastStore(tmp_path / "none.duckdb"), tmp_path / "site")
    assert not Path(tmp_path / "p.html").exists()


def _headline(fc: pl.DataFrame, rule: str = "M+: cox_ph (best validation TSS 0.700)"
              ) -> pl.DataFrame:
    return fc.with_columns(model=pl.lit("headline"), method=pl.lit(rule))


def test_headline_table_comes_first_with_its_rule(tmp_path):
    """The ``headline`` rows are the page's first table, marked as the headline with the
    rule of their ``method`` column; the models follow, each under its own name."""
    fc = make_forecasts([T0], harpnums=(4698, 4676, 4685))
    other = make_forecasts([T0], harpnums=(4698, 4676, 4685), model="logistic", seed=3)
    rows = pl.concat([other, fc, _headline(fc)])
    html = render_forecast_page(rows, tmp_path / "p.html").read_text()
    _parse(html)
    titles = re.findall(r'<h2 id="table-([^"]+)"', html)
    assert titles == ["headline", "cox_ph", "logistic"]  # plot_model default: no preference
    head = html[html.index('id="table-headline"'):html.index('id="table-cox_ph"')]
    assert "Headline forecast" in head and 'class="headline"' in head
    assert "M+: cox_ph (best validation TSS 0.700)" in head and 'id="headline-rule"' in head
    assert html.index('id="models-note"') < html.index('id="table-cox_ph"')
    assert "Regions by risk &mdash; logistic v1" in html
    # without headline rows: no headline marking
    plain = render_forecast_page(pl.concat([other, fc]), tmp_path / "q.html").read_text()
    assert "Headline forecast" not in plain and 'id="models-note"' not in plain


def test_headline_links_its_curve_models_plots(tmp_path):
    """The headline's survival curves and lifetimes are its curve model's: those region
    plots are drawn once, named after that model, and both tables link them. A headline
    whose data differs gets its own plots."""
    times = [T0 + timedelta(hours=h) for h in range(4)]
    fc = make_forecasts(times, harpnums=(4698, 4676))
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(pl.concat([fc, _headline(fc)]))
    html = publish_latest_page(store, tmp_path / "site", history_h=24).read_text()
    drawn = sorted(p.name for p in (tmp_path / "site").glob("*.png"))
    assert [n for n in drawn if n.startswith("headline_")] == ["headline_regions.png"]
    for h in (4698, 4676):
        shown = html[html.index(f'id="plots-headline-{h}"'):]  # the headline's plots of h
        shown = shown[:shown.index("</div>")]
        for kind in ("survival", "lifetime"):
            assert f"cox_ph_{h}_{kind}.png" in drawn
            assert f'src="cox_ph_{h}_{kind}.png"' in shown
    own = _headline(fc).with_columns(pl.col("mean_lifetime_h") * 0.5)
    store.upsert(pl.concat([fc, own]))
    publish_latest_page(store, tmp_path / "own", history_h=24)
    mine = sorted(p.name for p in (tmp_path / "own").glob("headline_*.png"))
    assert mine == ["headline_4676_lifetime.png", "headline_4698_lifetime.png",
                    "headline_regions.png"]


def test_plots_of_regions_no_longer_shown_are_removed(tmp_path):
    """The page directory holds the current page: a region's plots go when the region is
    no longer forecast; files the page did not draw stay."""
    times = [T0 + timedelta(hours=h) for h in range(3)]
    store = ForecastStore(tmp_path / "f.duckdb")
    store.upsert(make_forecasts(times, harpnums=(4698, 4676)))
    site = tmp_path / "site"
    publish_latest_page(store, site, history_h=24)
    assert (site / "cox_ph_4676_survival.png").is_file()
    (site / "notes.png").write_bytes(b"not a plot of the page")
    store.upsert(make_forecasts([T0 + timedelta(hours=3)], harpnums=(4698,)))
    html = publish_latest_page(store, site, history_h=24).read_text()
    left = sorted(p.name for p in site.glob("*.png"))
    assert not [n for n in left if "4676" in n]
    assert {"cox_ph_4698_survival.png", "cox_ph_4698_lifetime.png", "notes.png"} <= set(left)
    assert all(f'src="{n}"' in html for n in left if n != "notes.png")


def test_failed_regions_of_the_issue_time_are_listed(tmp_path):
    """The regions left out of the page's issue time (the store's failed_regions) are listed
    with their reasons; an earlier issue time's failures are not."""
    from flare_core.publish.forecast_store import FAILED_SCHEMA

    store = ForecastStore(tmp_path / "f.duckdb")
    t1 = T0 + timedelta(hours=1)

    def failed(t, harps_reasons):
        return pl.DataFrame([{"issue_time": t, "harpnum": h, "model_version": "v1",
                              "series": "hmi.sharp_cea_720s", "reason": why}
                             for h, why in harps_reasons], schema=FAILED_SCHEMA)

    fc0, fc1 = make_forecasts([T0]), make_forecasts([t1])
    store.upsert(pl.concat([fc0, _headline(fc0)]), failed=failed(T0, [(7777, "old reason")]))
    store.upsert(pl.concat([fc1, _headline(fc1)]), failed=failed(t1, [
        (9334, "invalid input: usflux = 1e+308 beyond float32"),
        (9335, "fetch: SourceUnavailable: JSOC timed out")]))
    page = publish_latest_page(store, tmp_path / "site")
    html = page.read_text()
    _parse(html)
    block = html[html.index('id="failed-regions"'):]
    block = block[:block.index("</div>")]
    assert "2 regions could not be" in block
    assert "HARP 9334: invalid input: usflux = 1e+308 beyond float32" in block
    assert "HARP 9335: fetch: SourceUnavailable: JSOC timed out" in block
    assert "7777" not in html
    assert re.findall(r'<h2 id="table-([^"]+)"', html)[0] == "headline"
    # an issue time without failures shows no block
    clean = ForecastStore(tmp_path / "g.duckdb")
    clean.upsert(fc1)
    assert 'id="failed-regions"' not in publish_latest_page(clean, tmp_path / "s2").read_text()


def test_plots_drawn_by_worker_processes_are_the_same(tmp_path, monkeypatch):
    """A page of many plots drawn over worker processes equals the one drawn in-process,
    PNG for PNG and in its HTML."""
    from flare_core.publish import page as page_module

    store = ForecastStore(tmp_path / "f.duckdb")
    times = [T0 + timedelta(hours=h) for h in range(6)]
    harps = (4698, 4676, 4685, 4700, 4701, 4702, 4703)
    store.upsert(make_forecasts(times, harpnums=harps))
    store.upsert(make_forecasts(times[-1:], harpnums=harps, model="defn", version="2",
                                with_curves=False))
    when = datetime(2014, 10, 22, 6, 5, tzinfo=UTC)
    html = {}
    for workers in ("1", "2"):
        monkeypatch.setenv(page_module.PLOT_WORKERS_ENV, workers)
        out = publish_latest_page(store, tmp_path / workers, history_h=24, generated_at=when)
        html[workers] = out.read_text()
    assert html["1"] == html["2"]
    pngs = sorted(p.name for p in (tmp_path / "1").glob("*.png"))
    assert len(pngs) >= page_module._PARALLEL_MIN_PLOTS
    assert pngs == sorted(p.name for p in (tmp_path / "2").glob("*.png"))
    for name in pngs:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()
    assert page_module._pool is not None  # the second page really used the workers


def test_plot_jobs_batched_by_kind():
    """Worker batches hold every job once, in job order, and balance the modelled cost:
    one kind stays in one worker (which draws its static layer once) unless the load calls
    for a second, as seven 25-panel regions figures do."""
    from flare_core.publish import page as page_module

    def load(batch, jobs):
        costs = [page_module._job_cost(*jobs[i][:2]) for i in batch]
        firsts = {jobs[i][0]: c[1] for i, c in zip(batch, costs, strict=True)}
        return sum(c[0] for c in costs) + sum(firsts.values())

    regions = pl.DataFrame({"harpnum": list(range(25))})
    busy = ([("plot_region_probability_tracks", (regions,), {})] * 7
            + [("plot_survival_curves", (), {})] * 25 + [("plot_mean_lifetime_track", (), {})] * 25
            + [("plot_full_disk_probability", (), {})])
    small = [("plot_survival_curves", (), {})] * 3 + [("plot_full_disk_probability", (), {})]
    for jobs in (busy, small):
        batches = page_module._batches(jobs, 2)
        assert sorted(i for b in batches for i in b) == list(range(len(jobs)))
        assert all(b == sorted(b) for b in batches)
        loads = [load(b, jobs) for b in batches]
        biggest = max(sum(page_module._job_cost(*j[:2])) for j in jobs)
        assert max(loads) - min(loads) <= biggest
    kinds = [{busy[i][0] for i in b} for b in page_module._batches(busy, 2)]
    assert all("plot_region_probability_tracks" in k for k in kinds)  # split: it is heavy
    assert [sorted(b) for b in page_module._batches(busy, 1)] == [list(range(len(busy)))]
