"""Tests for flare_core.sampling.kde_resample, on a real sun2022 fold and synthetic classes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from flare_core.errors import ConfigError
from flare_core.goes import classes_to_flux
from flare_core.sampling import NON_FLARE, flare_class_of, kde_resample, thin_records


@pytest.fixture(scope="module")
def fold(data_dir) -> pl.DataFrame:
    """A real training fold; flux = the strongest flare of the source's 24-h label window."""
    df = pl.read_csv(
        data_dir / "sharp/sun2022_sharp_m24h_fold0.csv.gz", columns=["arpnum", "t_end", "flares"]
    )
    strongest = [
        float(classes_to_flux(s.split("|")).max()) if s else None for s in df["flares"].to_list()
    ]
    return df.select(pl.col("arpnum").alias("harpnum"), "t_end").with_columns(
        pl.Series("peak_flux_wm2", strongest, dtype=pl.Float64)
    )


def _classes(frame: pl.DataFrame, **kw) -> np.ndarray:
    return frame.select(flare_class_of(pl.col("peak_flux_wm2"), **kw)).to_series().to_numpy()


def test_flare_class_of():
    f = pl.DataFrame({"x": [None, float("nan"), 3e-8, 2e-7, 9.99e-6, 1e-5, 1e-4, 2.2e-3]})
    got = f.select(flare_class_of(pl.col("x"))).to_series().to_list()
    assert got == [NON_FLARE, NON_FLARE, "A", "B", "C", "M", "X", "X"]
    got = f.select(flare_class_of(pl.col("x"), min_flux_wm2=1e-5)).to_series().to_list()
    assert got == [NON_FLARE] * 5 + ["M", "X", "X"]


def test_kde_resample_real_fold_counts(fold):
    before = _classes(fold)
    out, rep = kde_resample(fold, flux_col="peak_flux_wm2", seed=0)
    flaring = [c for c in rep.counts_before if c != NON_FLARE]
    # the source lists a window's flares only when one is >= M: classes are M and X
    assert set(flaring) == {"M", "X"} and rep.counts_before["X"] < rep.counts_before["M"]
    target = max(rep.counts_before[c] for c in flaring)
    assert rep.target_count == target
    # every flaring class is brought to the majority flaring count, non-flares down to it
    assert all(rep.counts_after[c] == target for c in flaring)
    assert rep.counts_after[NON_FLARE] == min(target, rep.counts_before[NON_FLARE])
    assert rep.counts_before == {c: int((before == c).sum()) for c in set(before.tolist())}
    # no rows invented: the output is exactly frame[indices], and classes are kept
    assert out.height == rep.indices.size == sum(rep.counts_after.values())
    assert out.equals(fold[rep.indices])
    np.testing.assert_array_equal(_classes(out), before[rep.indices])
    # minority classes keep all their original rows (duplicates added on top)
    for c in flaring:
        rows = np.flatnonzero(before == c)
        assert np.isin(rows, rep.indices).all()
    assert rep.regions_after["X"] == rep.regions_before["X"]


def test_kde_resample_is_seeded(fold):
    a = kde_resample(fold, flux_col="peak_flux_wm2", seed=3)[1]
    b = kde_resample(fold, flux_col="peak_flux_wm2", seed=3)[1]
    c = kde_resample(fold, flux_col="peak_flux_wm2", seed=4)[1]
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_duplicates_follow_the_class_magnitude_distribution():
    rng = np.random.default_rng(0)
    # 2000 M flares, 60 X flares with a power-law-like spread of log10 flux in [-4, -3)
    m = 10 ** rng.uniform(-5, -4, 2000)
    x = 10 ** (-4 + rng.exponential(0.25, 400))
    x = x[x < 1e-3][:60]
    frame = pl.DataFrame(
        {
            "harpnum": np.arange(2060 + 500) // 5,
            "peak_flux_wm2": np.concatenate([m, x, np.full(500, np.nan)]),
        }
    ).with_columns(pl.col("peak_flux_wm2").fill_nan(None))
    out, rep = kde_resample(frame, flux_col="peak_flux_wm2", seed=1)
    assert rep.counts_after == {"M": 2000, "X": 2000, NON_FLARE: 500}
    dup_x = np.log10(out.filter(pl.col("peak_flux_wm2") >= 1e-4)["peak_flux_wm2"].to_numpy())
    # the duplicated X records follow the original X magnitude distribution ...
    assert ks_2samp(dup_x, np.log10(x)).pvalue > 0.01
    # ... and spread over many distinct records, not a few repeated ones
    assert np.unique(dup_x).size > 0.8 * len(x)


def test_undersample_only_and_min_flux(fold):
    out, rep = kde_resample(fold, flux_col="peak_flux_wm2", min_flux_wm2=1e-5, seed=0)
    assert set(rep.counts_after) == {NON_FLARE, "M", "X"}
    assert rep.counts_after[NON_FLARE] == rep.target_count == rep.counts_before["M"]
    out2, rep2 = kde_resample(fold, flux_col="peak_flux_wm2", undersample=False, seed=0)
    assert rep2.counts_after[NON_FLARE] == rep2.counts_before[NON_FLARE]


def test_kde_resample_errors(fold):
    with pytest.raises(ConfigError, match="lacks column"):
        kde_resample(fold)  # default flux column is the labels module's, absent here
    with pytest.raises(ConfigError, match="no flaring"):
        kde_resample(fold.with_columns(pl.lit(None, dtype=pl.Float64).alias("peak_flux_wm2")),
                     flux_col="peak_flux_wm2")
    with pytest.raises(ConfigError, match="> 0"):
        kde_resample(pl.DataFrame({"harpnum": [1, 2], "f": [1e-5, -1.0]}), flux_col="f")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(1e-6, 5e-3)), min_size=1, max_size=120).filter(
        lambda v: any(x is not None for x in v)
    ),
    st.integers(0, 2**31 - 1),
)
def test_kde_resample_invariants(values, seed):
    frame = pl.DataFrame(
        {"harpnum": np.arange(len(values)) % 7, "f": pl.Series(values, dtype=pl.Float64)}
    )
    out, rep = kde_resample(frame, flux_col="f", seed=seed)
    flaring = [c for c in rep.counts_before if c != NON_FLARE]
    assert all(rep.counts_after[c] == rep.target_count for c in flaring)
    assert rep.counts_after.get(NON_FLARE, 0) == min(
        rep.counts_before.get(NON_FLARE, 0), rep.target_count
    )
    assert np.all(np.diff(rep.indices) >= 0) and rep.indices.max() < frame.height
    cls = frame.select(flare_class_of(pl.col("f"))).to_series().to_numpy()
    out_cls = out.select(flare_class_of(pl.col("f"))).to_series().to_numpy()
    np.testing.assert_array_equal(out_cls, cls[rep.indices])


def test_thin_records_keeps_one_real_nrt_record_per_region_hour(data_dir) -> None:
    """On the real 12-min NRT stream: one record per region and hour, the first of each
    hour, in input order; a step below the cadence keeps everything."""
    import gzip
    from datetime import datetime

    path = data_dir / "sharp_nrt" / "hmi_sharp_720s_nrt_2023-06_2023-12-17.csv.gz"
    with gzip.open(path, "rt") as f:
        lines = [next(f) for _ in range(3001)]
    raw = pl.read_csv("".join(lines).encode())
    frame = raw.select(
        pl.col("HARPNUM").alias("harpnum"),
        pl.col("T_REC").str.strptime(pl.Datetime("us"), "%Y.%m.%d_%H:%M:%S_TAI").alias("t_rec"),
    ).with_row_index("i")
    hourly = thin_records(frame, 1.0)
    hours = frame.with_columns(pl.col("t_rec").dt.truncate("1h").alias("h"))
    assert hourly.height == hours.select(["harpnum", "h"]).n_unique() < frame.height / 4
    first = hours.sort("t_rec").group_by(["harpnum", "h"]).first()["i"].sort()
    assert hourly["i"].to_list() == first.to_list()  # the first of each hour, input order
    assert thin_records(frame, 0.1).height == frame.height
    assert thin_records(frame.reverse(), 1.0)["i"].sort().to_list() == first.to_list()
    assert isinstance(hourly["t_rec"][0], datetime)
    with pytest.raises(ConfigError, match="step_h"):
        thin_records(frame, 0)
    with pytest.raises(ConfigError, match="lacks"):
        thin_records(frame.drop("harpnum"), 1.0)


# ------------------------------------------------- TrainConfig.resample in train_all


@pytest.fixture(scope="module")
def labelled(data_dir) -> pl.DataFrame:
    """Records of 30 regions of sun2022 fold 0 (10 with a >=M flare), features and labels."""
    from tests.support import sun2022_regions

    return sun2022_regions(data_dir, flaring=10, quiet=20)


def test_train_all_resamples_the_fit_part_only(labelled, tmp_path):
    import json

    from flare_core.config import TrainConfig
    from flare_core.models.baselines import ClimatologyForecaster
    from flare_core.models.persistence import load_model
    from flare_core.splits import split_validation
    from flare_core.training import train_all

    cfg = TrainConfig.quick(models=("climatology",), resample="kde", seed=3)
    out = train_all(labelled, tmp_path / "a", cfg)
    meta = json.loads((out / "model.json").read_text())
    # what train_all must have done: split first, then resample the fit part alone
    fit, val = split_validation(labelled.sort("harpnum", "t_rec"), fraction=cfg.val_fraction,
                                seed=3)
    resampled, report = kde_resample(fit, seed=3)
    assert report.counts_after["N"] < report.counts_before["N"]
    rate = load_model(ClimatologyForecaster, out / "climatology").event_rate_
    assert rate == pytest.approx(resampled["m_within_24h"].cast(pl.Float64).mean())
    assert rate > 2 * fit["m_within_24h"].cast(pl.Float64).mean()  # the base rate moved
    # validation untouched: same regions, every record once
    assert meta["validation_regions"] == sorted(val["harpnum"].unique().to_list())
    assert meta["models"]["climatology"]["validation"]["n"] == val.height
    assert meta["config"]["resample"] == "kde"
    # deterministic per seed; the seed of the draws is the config's
    again = train_all(labelled, tmp_path / "b", cfg)
    assert load_model(ClimatologyForecaster, again / "climatology").event_rate_ == rate
    plain = train_all(labelled, tmp_path / "c", TrainConfig.quick(models=("climatology",),
                                                                   seed=3))
    assert load_model(ClimatologyForecaster, plain / "climatology").event_rate_ == pytest.approx(
        fit["m_within_24h"].cast(pl.Float64).mean())


def test_resample_config_checks(tmp_path):
    from flare_core.config import TrainConfig

    cfg = TrainConfig(models=("logistic",), resample="kde",
                      resample_params={"bandwidth": 0.3, "undersample": False})
    assert TrainConfig.from_mapping(cfg.to_dict()) == cfg
    toml = tmp_path / "c.toml"
    toml.write_text('models = ["defn_m"]\nresample = "kde"\n[resample_params]\n'
                    "min_flux_wm2 = 1e-5\n")
    assert TrainConfig.from_toml(toml).resample_params == {"min_flux_wm2": 1e-5}
    with pytest.raises(ConfigError, match="resample must be one of"):
        TrainConfig(resample="smote")
    with pytest.raises(ConfigError, match="unknown resample_params"):
        TrainConfig(models=("logistic",), resample="kde", resample_params={"k": 3})
    with pytest.raises(ConfigError, match="unknown resample_params"):
        TrainConfig(resample_params={"bandwidth": 0.3})  # no resampler, no settings
    with pytest.raises(ConfigError, match="LSTM"):
        TrainConfig(resample="kde")  # the default models include the LSTM
    with pytest.raises(ConfigError, match="refit"):
        TrainConfig(models=("logistic",), resample="kde", refit=True,
                    validation_start="2015-01-01")
