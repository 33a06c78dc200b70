"""The forecast page of the real demo week, as a duty forecaster opens it: content, and a
real headless Chromium that loads every image (issue 11, point 3).

The page is published from a real installation (`demo_week`: bundled data, trained models,
``forecast_many``), the way ``tasks.forecasting.publish_page`` does it. The screenshot is
kept as a test artefact under ``out/test-artifacts/`` (git-ignored); its path is printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from demo_week import END, demo_week_root

from flare_core.publish.forecast_store import ForecastStore
from flare_core.publish.page import publish_latest_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> Path:
    root = demo_week_root(tmp_path_factory.getbasetemp())
    store = ForecastStore(root / "published" / "forecasts.duckdb")
    assert store.latest_issue_time() == END
    return publish_latest_page(store, root / "published" / "page", model="survival",
                               generated_at=END + timedelta(minutes=5))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_demo_week_page_says_what_a_forecaster_needs(demo_page):
    html = demo_page.read_text()
    text = _text(html)
    # coverage, from the data store next to the forecast store
    assert "3 regions with fresh data of 3 on the disk" in text
    # the 11-hour SHARP gap of Oct 24 and the regions that dropped out, as text
    assert ("no forecast issued 2014-10-24 05:00 UTC \u2013 2014-10-24 17:00 UTC "
            "(13 issue times)") in text
    assert "4 \u2192 3 regions forecast (HARP 4678 no longer forecast)" in text
    assert "last SHARP record: HARP 4678 2014-10-22 17:35 UTC" in text
    assert "2014-10-20 00:00 UTC \u2013 2014-10-26 23:00 UTC" in text  # the whole period
    # a legend for the risk colours, and the flares of the last 24 h (before issue only)
    assert 'id="risk-legend"' in html and "high: P(C+)" in text
    assert "X2.0 AR 12192 10-26 10:56" in text
    # every model's table links to its own plots; every anchor exists
    for model in ("survival", "logistic", "persistence", "climatology"):
        body = html.split(f'<h2 id="table-{model}">', 1)[1].split("</table>", 1)[0]
        targets = set(re.findall(r'href="#(plots-[^"]+)"', body))
        assert targets and all(t.startswith(f"plots-{model}") for t in targets), model
        assert all(f'id="{t}"' in html for t in targets)
    # the full-disk history covers the whole week, with the observed flares
    assert 'id="full-disk-history"' in html and (demo_page.parent / "full_disk.png").is_file()
    # rolling verification of every model
    ver = html.split('<h2 id="verification">', 1)[1].split("</table>", 1)[0]
    assert all(f">{m}<" in ver for m in ("survival", "logistic", "persistence", "climatology"))
    assert "Forecasts issued 2014-10-20 00:00 UTC \u2013 2014-10-25 23:00 UTC" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                    "(apt-get install -y chromium); the browser check needs it")
def test_page_renders_in_headless_chromium(demo_page, tmp_path):
    # a copy with a tiny script that writes the images' load state into the title (the
    # published page itself has no JavaScript)
    probe = demo_page.with_name("browser_probe.html")
    probe.write_text(demo_page.read_text().replace("</body>", """<script>
window.addEventListener('load', function () {
  var bad = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    if (!im.complete || im.naturalWidth === 0) { bad.push(im.getAttribute('src')); }
  }
  document.title = 'IMAGES ' + document.images.length + ' BROKEN ' + bad.length + ' ' +
    bad.join(' ');
});
</script>
</body>"""))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    n_imgs = demo_page.read_text().count("<img ")
    assert n_imgs >= 10
    assert title.strip() == f"IMAGES {n_imgs} BROKEN 0", title

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "page_demo_week.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,2400",
                    demo_page.as_uri()], capture_output=True, timeout=120, check=True)
    from matplotlib.image import imread

    rgb = imread(shot)[..., :3]
    assert rgb.shape[:2] == (2400, 1400)
    inked = (rgb < 0.9).any(axis=-1).mean()
    assert 0.03 < inked < 0.8  # text, tables and plots, not a blank or error page
    assert len(np.unique((rgb[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200
    print(f"\nscreenshot of the demo-week page: {shot}")
    probe.unlink()


def test_page_uses_only_flares_before_its_issue_time(demo_page, tmp_path_factory):
    """Publishing at an earlier issue time (a store holding only forecasts up to it) shows
    no flare that peaked at or after that time."""
    from flare_core.publish.forecast_store import ForecastStore as FS
    from flare_core.store import Store

    root = demo_week_root(tmp_path_factory.getbasetemp())
    cut = datetime(2014, 10, 22, 14, tzinfo=UTC)  # the X1.6 peaked at 14:28
    early = FS(tmp_path_factory.mktemp("early") / "forecasts.duckdb")
    early.upsert(ForecastStore(root / "published" / "forecasts.duckdb").read(
        end=cut + timedelta(microseconds=1)).drop("written_at"))
    flares = Store(root).read_flares()
    page = publish_latest_page(early, early.path.parent / "page", model="survival",
                               flares=flares, data_store=root)
    text = _text(page.read_text())
    assert "issued 2014-10-22 14:00 UTC" in text
    assert "X1.6" not in text and "M8.7 AR 12192 10-22 01:59" in text
    x16 = flares.filter(pl.col("goes_class") == "X1.6",
                        pl.col("peak_time").is_between(cut, cut + timedelta(hours=1)))
    assert x16.height == 1  # the flare is in the store, the page just does not know it yet


def test_page_plots_the_last_period_days_and_verifies_its_own_window(demo_page, tmp_path):
    """The plots and gaps cover the last ``period_days`` (an hourly page costs the same
    after a year of service as after a week); the rolling verification keeps its own
    window, which here reaches further back."""
    store = ForecastStore(demo_page.parent.parent / "forecasts.duckdb")
    page = publish_latest_page(store, tmp_path / "page", model="survival", period_days=2,
                               generated_at=END + timedelta(minutes=5))
    text = _text(page.read_text())
    shown = f"{END - timedelta(days=2):%Y-%m-%d %H:%M} UTC \u2013 {END:%Y-%m-%d %H:%M} UTC"
    assert f"in the period shown ({shown})" in text
    assert "2014-10-24 05:00 UTC \u2013 2014-10-24 17:00 UTC" not in text  # before the period
    assert "Forecasts issued 2014-10-20 00:00 UTC \u2013 2014-10-25 23:00 UTC" in text
    full = _text(demo_page.read_text())
    assert "in the period shown (2014-10-20 00:00 UTC \u2013 2014-10-26 23:00 UTC)" in full
