"""The survival chain as one scikit-learn estimator: clone, fit -> self, predict -> frame,
save/load round trip, and stage outputs consistent with each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from flare_core.features import feature_columns
from flare_core.models.persistence import load_stages, save_stages
from flare_core.models.survival_chain import SurvivalChain, survival_target
from flare_core.splits import split_validation
from tests.support import sun2022_regions


@pytest.fixture(scope="module")
def parts(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(fit, validation) records of 30 regions of sun2022 fold 0 (10 with a >=M flare)."""
    ds = sun2022_regions(data_dir, flaring=10, quiet=20).sort("harpnum", "t_rec")
    return split_validation(ds, fraction=0.3, seed=0)


def _chain(features: list[str], **kw) -> SurvivalChain:
    return SurvivalChain(features, forest_params={"n_estimators": 10, "n_folds": 3},
                         cox_params={"epochs": 3, "patience": 2, "hidden_nodes": 16},
                         **kw)


def test_clone_and_params_round_trip(parts) -> None:
    fit, _ = parts
    chain = _chain(feature_columns(fit), seed=3)
    twin = clone(chain)
    assert twin is not chain and twin.get_params() == chain.get_params()
    with pytest.raises(NotFittedError):
        twin.predict(fit)


def test_fit_returns_self_and_predict_returns_one_frame(parts, tmp_path: Path) -> None:
    fit, val = parts
    chain = _chain(feature_columns(fit))
    assert chain.fit(fit, survival_target(fit), X_val=val) is chain
    assert chain.members_ == ("flare_class_forest", "cox_time", "warning_svm")
    out = chain.predict(val)
    assert isinstance(out, pl.DataFrame) and out.height == val.height
    assert {"p_m24_survival", "mean_lifetime_h", "survival_curve", "survival_grid_h",
            "flare_band_code", "p_x_given_m_forest", "p_x24_survival", "warning_24h",
            "warning_class_code"} == set(out.columns)
    p = out["p_m24_survival"].to_numpy()
    assert ((0 <= p) & (p <= 1)).all()
    # the published X+ share is the forest's P(X | >=M) times the chain's P(>=M)
    np.testing.assert_allclose(out["p_x24_survival"].to_numpy(),
                               p * out["p_x_given_m_forest"].to_numpy())
    # P(>=M within 24 h) is 1 - S(24 h) of the curve itself
    grid = np.asarray(out["survival_grid_h"][0].to_list())
    j = int(np.searchsorted(grid, 24.0))
    s24 = np.array([c[j] for c in out["survival_curve"].to_list()])
    np.testing.assert_allclose(p, 1.0 - s24, atol=1e-12)
    # the SVM was fitted on the validation records' windows
    assert chain.train_windows_.height > 0
    assert set(chain.train_windows_["harpnum"].unique()) <= set(val["harpnum"].unique())
    # save / load: the same answers
    dirs = {m: tmp_path / m for m in chain.members_}
    save_stages(chain, dirs)
    again = load_stages(SurvivalChain, dirs).predict(val)
    for col in ("p_m24_survival", "mean_lifetime_h", "p_x24_survival"):
        np.testing.assert_allclose(again[col].to_numpy(), out[col].to_numpy(), rtol=1e-6)
    assert again["warning_24h"].equals(out["warning_24h"])


def test_cox_time_alone(parts) -> None:
    fit, val = parts
    chain = _chain(feature_columns(fit), forest=False, warning=False).fit(fit, X_val=val)
    assert chain.members_ == ("cox_time",) and chain.lookback_h == 0.0
    out = chain.predict(val)
    assert "p_x24_survival" not in out.columns and "warning_24h" not in out.columns
