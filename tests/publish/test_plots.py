"""Every plot writes a real, non-blank PNG; bad inputs raise ConfigError."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from forecast_factory import GRID_H, T0, make_forecasts
from matplotlib.image import imread

from flare_core.errors import ConfigError
from flare_core.publish import plots
from flare_core.publish.full_disk import full_disk_probabilities

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Three real flares of AR 12192 / HARP 4698 (NOAA GOES event list, peak times UTC).
FLARES = pl.DataFrame(
    {"peak_time": [datetime(2014, 10, 22, 1, 59, tzinfo=UTC),
                   datetime(2014, 10, 22, 14, 28, tzinfo=UTC),
                   datetime(2014, 10, 24, 21, 41, tzinfo=UTC)],
     "goes_class": ["M8.7", "X1.6", "X3.1"]})


def assert_png_drawn(path: Path, *, min_colours: int = 20) -> np.ndarray:
    """A PNG (magic bytes, non-trivial size) whose pixels are not blank."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    rgb = imread(path)[..., :3]
    assert rgb.shape[0] >= 300 and rgb.shape[1] >= 300
    inked = (rgb < 0.9).any(axis=-1).mean()  # share of pixels that are not (near) white
    assert 0.01 < inked < 0.9
    colours = np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours
    return rgb


@pytest.fixture(scope="module")
def outcomes():
    rng = np.random.default_rng(42)
    y = rng.random(400) < 0.2
    good = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, y.size), 0, 1)
    poor = np.clip(0.2 + 0.1 * y + rng.normal(0, 0.3, y.size), 0, 1)
    return y.astype(int), good, poor


def test_survival_curves_coloured_by_lead_time(tmp_path):
    times = [T0 + timedelta(hours=h) for h in range(0, 14, 2)]
    fc = make_forecasts(times, harpnums=(4698,))
    curves = np.array(fc["survival_curve"].to_list())
    path = plots.plot_survival_curves(GRID_H, curves, times, tmp_path / "s.png",
                                      flare_time=FLARES["peak_time"][1], title="HARP 4698")
    assert path == tmp_path / "s.png"
    rgb = assert_png_drawn(path, min_colours=100)  # a colour map, not one colour
    no_flare = assert_png_drawn(plots.plot_survival_curves(GRID_H, curves, fc["issue_time"],
                                                           tmp_path / "s2.png"))
    assert rgb.shape == no_flare.shape and not np.array_equal(rgb, no_flare)


def test_survival_curves_on_their_own_grids(tmp_path):
    times = [T0 + timedelta(hours=h) for h in range(4)]
    grids = [np.asarray(GRID_H[k % 2:]) + 0.4 * k for k in range(4)]  # 7 or 6 points
    curves = [np.exp(-0.02 * g) for g in grids]
    path = plots.plot_survival_curves(grids, curves, times, tmp_path / "ragged.png",
                                      flare_time=T0 + timedelta(hours=30))
    assert_png_drawn(path)
    with pytest.raises(ConfigError, match="3 grids for 4 curves"):
        plots.plot_survival_curves(grids[:3], curves, times, tmp_path / "x.png")
    with pytest.raises(ConfigError, match="columns but grid_h"):
        plots.plot_survival_curves(grids[::-1], curves, times, tmp_path / "x.png")


def test_lines_break_at_gaps_of_several_cadences():
    hourly = [T0 + timedelta(hours=h) for h in range(5)]
    later = [T0 + timedelta(days=2, hours=h) for h in range(3)]
    when, (life,) = plots._break_at_gaps(later + hourly, np.arange(8.0), max_gap_cadences=3)
    assert len(when) == 9 and np.isnan(life).sum() == 1  # one break, inside the gap
    k = int(np.flatnonzero(np.isnan(life))[0])
    assert when[k - 1] == hourly[-1] < when[k] < later[0] == when[k + 1]
    assert list(life[~np.isnan(life)]) == [3, 4, 5, 6, 7, 0, 1, 2]  # sorted by time
    _, (same,) = plots._break_at_gaps(hourly, np.ones(5), max_gap_cadences=3)
    assert not np.isnan(same).any()


def test_mean_lifetime_track(tmp_path):
    times = [T0 + timedelta(hours=h) for h in range(48)]
    life = np.abs(np.linspace(30, 2, 48) + np.sin(np.arange(48)))
    observed = np.array([_hours_to_next(t) for t in times])
    path = plots.plot_mean_lifetime_track(times, life, tmp_path / "sub" / "life.png",
                                          flare_times=FLARES["peak_time"],
                                          flare_classes=FLARES["goes_class"].to_list(),
                                          observed_time_to_event_h=observed,
                                          title="HARP 4698 mean lifetime")
    assert_png_drawn(path)


def _hours_to_next(t: datetime) -> float:
    later = [p for p in FLARES["peak_time"] if p > t]
    return (later[0] - t).total_seconds() / 3600 if later else np.nan


def test_full_disk_probability_series(tmp_path):
    times = [T0 + timedelta(hours=h) for h in range(72)]
    fd = pl.concat([full_disk_probabilities(make_forecasts(times)),
                    full_disk_probabilities(make_forecasts(times, model="defn", seed=4))])
    path = plots.plot_full_disk_probability(fd, tmp_path / "fd.png", flares=FLARES)
    assert_png_drawn(path)
    one_model = fd.filter(pl.col("model") == "cox_ph").drop("model", "p_x24")
    assert_png_drawn(plots.plot_full_disk_probability(one_model, tmp_path / "fd1.png"))


def test_roc_curves(tmp_path, outcomes):
    y, good, poor = outcomes
    both = assert_png_drawn(plots.plot_roc_curves(y, {"good": good, "poor": poor},
                                                  tmp_path / "roc.png"))
    single = assert_png_drawn(plots.plot_roc_curves(y, good, tmp_path / "roc1.png"))
    assert not np.array_equal(both, single)


def test_reliability_diagram(tmp_path, outcomes):
    y, good, poor = outcomes
    assert_png_drawn(plots.plot_reliability_diagram(y, {"good": good, "poor": poor},
                                                    tmp_path / "rel.png", n_bins=8))


def test_auc_vs_time(tmp_path):
    t = np.array([6, 12, 24, 48, 72, 96, 144.0])
    auc = {"cox_ph": 0.9 - 0.001 * t, "rsf": 0.85 - 0.0005 * t}
    path = plots.plot_auc_vs_time(t, auc, tmp_path / "auc.png",
                                  mean_auc={"cox_ph": 0.85, "rsf": 0.82})
    assert_png_drawn(path)


def test_tss_vs_threshold(tmp_path):
    x = np.linspace(1, 72, 30)
    tss = np.sin(x / 72 * np.pi) * 0.7
    tss[0] = np.nan  # undefined at the edge: the line breaks, the plot still draws
    path = plots.plot_tss_vs_threshold(x, {"cox_ph": tss}, tmp_path / "tss.png",
                                       chosen={"cox_ph": 36.0},
                                       xlabel="warn if mean lifetime < x (h)")
    assert_png_drawn(path)


def test_bad_inputs_raise(tmp_path, outcomes):
    y, good, _ = outcomes
    with pytest.raises(ConfigError, match="lengths differ"):
        plots.plot_roc_curves(y, good[:-1], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="both classes"):
        plots.plot_roc_curves(np.zeros(5), np.ones(5), tmp_path / "x.png")
    with pytest.raises(ConfigError, match=r"\.png"):
        plots.plot_roc_curves(y, good, tmp_path / "x.svg")
    with pytest.raises(ConfigError, match="columns but grid_h"):
        plots.plot_survival_curves(GRID_H[:3], np.ones((2, 7)), [T0, T0], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="datetimes"):
        plots.plot_mean_lifetime_track(["not a time"], [1.0], tmp_path / "x.png")
    with pytest.raises(ConfigError, match="none of"):
        plots.plot_full_disk_probability(pl.DataFrame({"issue_time": [T0]}), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_page_figures_labelled_curves_tracks_gaps(tmp_path):
    from flare_core.publish.full_disk import data_gaps, disk_coverage

    times = [T0 + timedelta(hours=h) for h in range(48) if not 20 <= h < 31]  # 11-h gap
    fc = make_forecasts(times)
    fc = fc.filter(~((pl.col("harpnum") == 4685) & (pl.col("issue_time") >= T0
                                                     + timedelta(hours=40))))
    gaps = data_gaps(disk_coverage(fc))
    assert gaps["kind"].to_list() == ["no_forecast", "fewer_regions"]
    assert gaps["n_issue_times"].to_list() == [11, 1] and gaps["harpnums"][1].to_list() == [4685]
    one = fc.filter(pl.col("harpnum") == 4698).tail(5)
    labels = [f"{t:%m-%d %H:%M}" for t in one["issue_time"]]
    assert_png_drawn(plots.plot_survival_curves(
        GRID_H, one["survival_curve"].to_list(), one["issue_time"], tmp_path / "s.png",
        labels=labels, horizon_h=24))
    with pytest.raises(ConfigError, match="2 labels for 5 curves"):
        plots.plot_survival_curves(GRID_H, one["survival_curve"].to_list(), one["issue_time"],
                                   tmp_path / "x.png", labels=labels[:2])
    track = fc.filter(pl.col("harpnum") == 4698)
    assert_png_drawn(plots.plot_mean_lifetime_track(
        track["issue_time"], track["mean_lifetime_h"], tmp_path / "l.png", cap_h=144,
        gaps=gaps, harpnum=4698, flare_times=FLARES["peak_time"],
        flare_classes=FLARES["goes_class"].to_list()))
    flares = FLARES.with_columns(harpnum=pl.lit(4698), noaa_ar=pl.lit(12192))
    assert_png_drawn(plots.plot_region_probability_tracks(fc, tmp_path / "r.png",
                                                          flares=flares, gaps=gaps))
    fd = full_disk_probabilities(fc)
    with_gaps = assert_png_drawn(plots.plot_full_disk_probability(
        fd, tmp_path / "fd.png", flares=flares, gaps=gaps, n_regions=True))
    plain = assert_png_drawn(plots.plot_full_disk_probability(fd, tmp_path / "fd0.png"))
    assert not np.array_equal(with_gaps, plain)


def _page_figures(tmp_path: Path, tag: str) -> dict[str, bytes]:
    """The page's figure kinds, with gaps and flares, one instant and two legends."""
    from flare_core.publish.full_disk import data_gaps, disk_coverage

    times = [T0 + timedelta(hours=h) for h in range(30) if not 10 <= h < 17]
    fc = make_forecasts(times)
    gaps = data_gaps(disk_coverage(fc))
    flares = FLARES.with_columns(harpnum=pl.lit(4698), noaa_ar=pl.lit(12192))
    track = fc.filter(pl.col("harpnum") == 4698)
    one = track.tail(4)
    out = tmp_path / tag
    paths = [
        plots.plot_mean_lifetime_track(track["issue_time"], track["mean_lifetime_h"],
                                       out / "life.png", cap_h=144, gaps=gaps, harpnum=4698,
                                       flare_times=FLARES["peak_time"],
                                       flare_classes=FLARES["goes_class"].to_list()),
        plots.plot_mean_lifetime_track(track["issue_time"][:1], [50.0], out / "instant.png",
                                       cap_h=144),
        plots.plot_region_probability_tracks(fc, out / "regions.png", flares=flares, gaps=gaps),
        plots.plot_region_probability_tracks(fc.drop("p_x24"), out / "regions_cm.png"),
        plots.plot_survival_curves(GRID_H, one["survival_curve"].to_list(), one["issue_time"],
                                   out / "curves.png", horizon_h=24,
                                   labels=[f"{t:%m-%d %H:%M}" for t in one["issue_time"]]),
        plots.plot_survival_curves(GRID_H, one["survival_curve"].to_list()[:2],
                                   one["issue_time"][:2], out / "curves2.png",
                                   labels=["a", "b"], title="two curves"),
    ]
    return {p.name: p.read_bytes() for p in paths}


def test_reused_page_figures_draw_what_new_ones_draw(tmp_path):
    """Page figures are reused per thread and drawn over a copied static layer: a PNG must
    not depend on what the figure drew before. Each figure drawn first in a new thread
    (new figures) equals, byte for byte, the same figure drawn after all the others, in
    any order."""
    import threading

    fresh: dict[str, bytes] = {}

    def draw_fresh():
        fresh.update(_page_figures(tmp_path, "fresh"))

    worker = threading.Thread(target=draw_fresh)
    worker.start()
    worker.join()
    first = _page_figures(tmp_path, "first")  # this thread: new figures, then reused
    again = _page_figures(tmp_path, "again")  # reused figures, cached layers
    assert first == fresh and again == fresh
    for name, png in fresh.items():
        assert_png_drawn(tmp_path / "fresh" / name)
        assert png[:8] == PNG_MAGIC
    assert fresh["regions.png"] != fresh["regions_cm.png"]


def test_reused_page_figure_redraws_other_axis_labels(tmp_path):
    """The regions' panels are labelled by HARP (in the static layer): a figure of the same
    size, limits and ticks for other regions must not show the copied labels."""
    import threading

    fc = make_forecasts([T0 + timedelta(hours=h) for h in range(12)])
    other = fc.with_columns(pl.col("harpnum") + 1000)
    plots.plot_region_probability_tracks(fc, tmp_path / "before.png")  # this thread's layer
    after = plots.plot_region_probability_tracks(other, tmp_path / "after.png").read_bytes()
    fresh: list[bytes] = []
    worker = threading.Thread(target=lambda: fresh.append(plots.plot_region_probability_tracks(
        other, tmp_path / "fresh.png").read_bytes()))
    worker.start()
    worker.join()
    assert after == fresh[0] != (tmp_path / "before.png").read_bytes()


def test_time_axis_fixed_ticks():
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    start = datetime(2014, 10, 1, 0, 30, tzinfo=UTC)
    end = start + timedelta(hours=40)
    plots._time_axis(ax, start, end)
    from matplotlib.dates import num2date

    ticks = [num2date(t, tz=UTC).replace(microsecond=0)
             for t in ax.xaxis.get_major_locator().locs]
    labels = list(ax.xaxis.get_major_formatter().seq)
    assert ticks[0] == datetime(2014, 10, 1, 4, tzinfo=UTC) and ticks[-1] <= end
    assert {b - a for a, b in zip(ticks, ticks[1:], strict=False)} == {timedelta(hours=4)}
    assert labels[:2] == ["04:00", "08:00"] and labels[ticks.index(
        datetime(2014, 10, 2, tzinfo=UTC))] == "Oct-02"
    assert ax.xaxis.get_major_formatter().get_offset() == "2014-Oct-02"
    plots._time_axis(ax, start, start + timedelta(days=20))  # every two days, at midnight
    days = [num2date(t, tz=UTC) for t in ax.xaxis.get_major_locator().locs]
    assert {b - a for a, b in zip(days, days[1:], strict=False)} == {timedelta(days=2)}
    assert days[0].hour == 0 and start < days[0] <= start + timedelta(days=2)
    assert list(ax.xaxis.get_major_formatter().seq) == [f"{d:%b-%d}" for d in days]
    assert ax.xaxis.get_major_formatter().get_offset() == "2014"
    plots._time_axis(ax, start, start + timedelta(days=800))  # years: matplotlib's ticks
    assert type(ax.xaxis.get_major_locator()).__name__ == "AutoDateLocator"


def test_png_writer_round_trips():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (31, 47, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    for image in (rgba, opaque):
        data = plots._png_bytes(image, dpi=110)
        back = (imread(io.BytesIO(data)) * 255).round().astype(np.uint8)
        assert back.shape[2] == (3 if image is opaque else 4)
        assert np.array_equal(back, image[..., :back.shape[2]])
