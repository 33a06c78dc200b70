"""Survival verification by horizon on real labels (bundled sun2022 fold slice)."""

from __future__ import annotations

import numpy as np
import pytest

from flare_core.errors import ConfigError
from flare_core.survival_eval import kaplan_meier_curve, verify_survival


@pytest.fixture(scope="module")
def labels(data_dir):
    from flare_core.config import TrainConfig
    from flare_core.dataset import build_model_dataset, read_inputs

    sharp, flares = read_inputs(
        [data_dir / "sharp" / "sun2022_sharp_m24h_fold0.csv.gz"],
        [data_dir / "flares" / "ncei_goes_flares_2010-01-01_2025-11-15.csv.gz"])
    ds = build_model_dataset(sharp, flares, TrainConfig()).select(
        "harpnum", "event", "time_to_event_h")
    odd = ds["harpnum"] % 2 == 1
    return ds.filter(odd), ds.filter(~odd)


def test_km_climatology_has_no_skill_and_the_truth_has_all(labels):
    train, test = labels
    grid = np.arange(0.0, 145.0)
    km_t, km_s = kaplan_meier_curve(train["event"].to_numpy(), train["time_to_event_h"].to_numpy())
    j = np.searchsorted(km_t, grid, side="right") - 1
    km_grid = np.where(j >= 0, km_s[np.maximum(j, 0)], 1.0)
    v = verify_survival(train, test, grid, np.tile(km_grid, (test.height, 1)))
    np.testing.assert_allclose(v.table["bss"].to_numpy(), 0.0, atol=1e-12)
    assert abs(v.ibss) < 1e-12 and v.table["horizon_h"].to_list() == [6, 12, 24, 48, 72]
    # the observed outcome as a (censoring-blind) step curve ranks perfectly
    t, e = test["time_to_event_h"].to_numpy(), test["event"].to_numpy() == 1
    truth = np.where(e[:, None] & (grid[None, :] >= t[:, None]), 0.0, 1.0)
    good = verify_survival(train, test, grid, truth)
    assert (good.table["auc"] > 0.999).all() and (good.table["bss"] > 0.9).all()
    assert good.reliability.height == 5 * 10 and good.ibs < v.ibs


def test_shape_is_checked(labels):
    train, test = labels
    with pytest.raises(ConfigError, match="shape"):
        verify_survival(train, test, np.arange(3.0), np.ones((2, 3)))
