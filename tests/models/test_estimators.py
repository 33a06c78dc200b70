"""Every flareflow model is a scikit-learn estimator: clone, get_params, check_is_fitted.

Also: the sklearn call forms (``fit(X, y)`` with sksurv ``Surv`` targets, optional validation
data) give the same fits as the project's older call forms, bit for bit.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from sksurv.util import Surv

from flare_core.errors import ConfigError, ModelError
from flare_core.models.baselines import (
    ClimatologyForecaster,
    ExtraTreesBaseline,
    KNNBaseline,
    LogisticRegressionBaseline,
    PersistenceForecaster,
    SVMBaseline,
)
from flare_core.models.cox_time import CoxTimeConfig, CoxTimeModel, SurvivalArrays
from flare_core.models.defn import DeepFlareNet, DeFNConfig
from flare_core.models.flare_class import (
    FlareClassForest,
    FlareClassForestConfig,
    out_of_fold_bands,
)
from flare_core.models.lstm import LSTMConfig, LSTMForecaster
from flare_core.models.warning import WarningSVM, WarningSVMConfig

#: One unfitted instance of every estimator class, with non-default settings.
ESTIMATORS = [
    FlareClassForest(FlareClassForestConfig(n_estimators=7, n_folds=3)),
    CoxTimeModel(CoxTimeConfig(epochs=2, n_hidden=2, hidden_nodes=8)),
    WarningSVM(WarningSVMConfig(lead_h=12.0)),
    DeepFlareNet("C", config=DeFNConfig(hidden=16, max_epochs=2), features=["a", "b"]),
    LSTMForecaster("M", config=LSTMConfig(hidden=8, max_epochs=2), features=("a",)),
    ClimatologyForecaster(),
    PersistenceForecaster("history__m_count_24h", calibrated=True),
    LogisticRegressionBaseline(C=0.5, class_weight=None, features=["a"]),
    SVMBaseline(C=2.0, gamma=0.1, cv=4, random_state=3),
    KNNBaseline(n_neighbors=5, weights="distance"),
    ExtraTreesBaseline(n_estimators=11, min_samples_leaf=2, random_state=1, n_jobs=1),
]
#: The attribute `fit` sets (what `check_is_fitted` looks for).
FITTED_ATTRIBUTE = {
    FlareClassForest: "forest_", CoxTimeModel: "net_", WarningSVM: "pipeline_",
    DeepFlareNet: "network_", LSTMForecaster: "network_",
    ClimatologyForecaster: "event_rate_", PersistenceForecaster: "rate_if_flared_",
}
IDS = [type(e).__name__ for e in ESTIMATORS]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_clone_and_get_params_round_trip(estimator):
    params = estimator.get_params()
    twin = clone(estimator)
    assert type(twin) is type(estimator) and twin is not estimator
    assert twin.get_params() == params
    # the constructor rebuilds the same settings from get_params
    assert type(estimator)(**params).get_params() == params
    # settings objects are copied, not shared
    for name, value in params.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            assert getattr(twin, name) is not value, name


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_unfitted_raises_sklearn_not_fitted_and_model_error(estimator):
    attribute = FITTED_ATTRIBUTE.get(type(estimator), "pipeline_")
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator, attribute)
    with pytest.raises(NotFittedError) as e:
        if isinstance(estimator, CoxTimeModel):
            estimator.predict_survival(np.zeros((2, 3)))
        elif isinstance(estimator, WarningSVM | FlareClassForest):
            estimator.predict(np.zeros((2, 2)))
        else:
            estimator.predict_proba(np.zeros((2, 2)))
    assert isinstance(e.value, ModelError) and "not fitted" in str(e.value)


def test_parameters_are_validated_in_fit():
    x, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    with pytest.raises(ConfigError, match="C"):
        LogisticRegressionBaseline(C=-1.0).fit(x, y)
    with pytest.raises(ConfigError, match="weights"):
        KNNBaseline(weights="closest").fit(x, y)
    with pytest.raises(ConfigError, match="config"):
        FlareClassForest(config={"n_estimators": 3}).fit(x, y)
    with pytest.raises(ConfigError, match="target"):
        DeepFlareNet("X").fit(x, y)


def test_clone_of_a_fitted_estimator_is_unfitted():
    x = np.random.default_rng(1).normal(size=(60, 3))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegressionBaseline().fit(x, y)
    check_is_fitted(model, "pipeline_")
    with pytest.raises(NotFittedError):
        check_is_fitted(clone(model), "pipeline_")


def test_out_of_fold_bands_equal_the_hand_written_group_folds():
    """cross_val_predict over GroupKFold = each fold's forest trained on the other regions."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    g = rng.integers(0, 30, size=300)
    x = rng.normal(size=(300, 4))
    y = np.digitize(x[:, 0] + rng.normal(scale=0.3, size=300), [0.3, 1.2, 2.0])
    cfg = FlareClassForestConfig(n_estimators=10, n_folds=3)
    expected = np.empty(y.size, dtype=np.int64)
    for tr, te in GroupKFold(n_splits=3).split(x, y, g):
        expected[te] = FlareClassForest(cfg).fit(x[tr], y[tr]).predict(x[te])
    oof = out_of_fold_bands(x, y, g, cfg)
    assert oof.dtype == np.int64
    np.testing.assert_array_equal(oof, expected)


def _survival_records(n=300, seed=0):
    """SYNTHETIC survival records (not real data): hazard rises with x0 and the category."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x_cat = rng.integers(0, 3, size=(n, 1))
    d = rng.exponential(60.0 / np.exp(x[:, 0] + 0.3 * x_cat[:, 0]))
    ev = (d <= 144).astype(int)
    return x, x_cat, np.minimum(d, 144.0), ev


def test_cox_time_fit_with_surv_target_equals_survival_arrays():
    x, xc, d, ev = _survival_records()
    cfg = CoxTimeConfig(epochs=2, n_hidden=2, hidden_nodes=8, batch_size=64, mu0_sample=50,
                        device="cpu", grid_step_h=12.0)
    tr, va = slice(0, 220), slice(220, None)
    old = CoxTimeModel(cfg).fit(SurvivalArrays(x[tr], d[tr], ev[tr], xc[tr]),
                                validation=SurvivalArrays(x[va], d[va], ev[va], xc[va]))
    y = Surv.from_arrays(event=ev.astype(bool), time=d)
    new = clone(CoxTimeModel(cfg)).fit(x[tr], y[tr], X_cat=xc[tr],
                                       validation=(x[va], y[va], xc[va]))
    np.testing.assert_array_equal(new.predict_survival(x, xc)[1], old.predict_survival(x, xc)[1])
    assert new.history_ == old.history_
    with pytest.raises(ConfigError, match="Surv"):
        CoxTimeModel(cfg).fit(x, d)


def _windows(n, seed):
    """SYNTHETIC windows: falling lifetime and low mean before flares."""
    rng = np.random.default_rng(seed)
    tte = np.minimum(rng.uniform(0, 200, size=n), 144.0)
    ev = (tte < 144).astype(int)
    mean = np.where(ev == 1, tte * 0.6, 120.0) + rng.normal(scale=8, size=n)
    slope = np.where(ev == 1, -1.0, 0.0) + rng.normal(scale=0.3, size=n)
    return pl.DataFrame({"slope_h_per_h": slope, "mean_h": mean, "time_to_event_h": tte,
                         "event": ev})


def test_warning_svm_fit_with_surv_target_equals_frame_labels():
    w = _windows(300, 0)
    old = WarningSVM().fit(w)
    y = Surv.from_arrays(event=w["event"].to_numpy().astype(bool),
                         time=w["time_to_event_h"].to_numpy())
    x = w.select("slope_h_per_h", "mean_h").to_numpy()
    new = clone(old).fit(x, y)
    np.testing.assert_array_equal(new.predict(x), old.predict(w))
    assert new.n_train_ == old.n_train_


def test_torch_classifiers_train_without_validation_like_a_last_epoch_refit():
    """No X_val: max_epochs epochs, the last kept, exactly as epoch_score="last" with the
    one-record stand-in that a refit used to pass."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 1.0).astype(int)
    last = DeFNConfig(hidden=16, max_epochs=3, epoch_score="last", seed=2)
    stand_in = DeepFlareNet("M", config=last).fit(x, y, X_val=x[:1], y_val=y[:1])
    plain = DeepFlareNet("M", config=DeFNConfig(hidden=16, max_epochs=3, seed=2)).fit(x, y)
    np.testing.assert_array_equal(plain.predict_proba(x), stand_in.predict_proba(x))
    assert plain.best_epoch_ == 3 and np.isnan(plain.best_val_tss_)
    assert plain.config.epoch_score == "tss_at_threshold"  # the setting is left as given
    with pytest.raises(ModelError, match="both"):
        DeepFlareNet("M", config=last).fit(x, y, X_val=x[:5])


def test_lstm_trains_without_validation():
    t = pl.datetime_range(pl.datetime(2014, 1, 1, time_zone="UTC"),
                          pl.datetime(2014, 1, 2, 23, time_zone="UTC"), "1h", eager=True)
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"harpnum": np.repeat([1, 2], t.len()), "t_rec": pl.concat([t, t]),
                          "a": rng.normal(size=2 * t.len())})
    y = (frame["a"].to_numpy() > 0.5).astype(int)
    cfg = LSTMConfig(hidden=8, max_epochs=2, n_steps=3, seed=1)
    stand_in = LSTMForecaster("M", config=LSTMConfig(
        hidden=8, max_epochs=2, n_steps=3, seed=1, epoch_score="last")).fit(
        frame, y, X_val=frame.head(1), y_val=y[:1])
    plain = LSTMForecaster("M", config=cfg).fit(frame, y)
    np.testing.assert_array_equal(plain.predict_proba(frame), stand_in.predict_proba(frame))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_models_hold_no_file_io_and_declare_a_state_layout(estimator):
    """Saving and loading live in flare_core.models.persistence only."""
    from flare_core.models.persistence import PersistentModel, StateLayout

    cls = type(estimator)
    assert not hasattr(cls, "save") and not hasattr(cls, "load")
    assert isinstance(cls.state_layout, StateLayout) and isinstance(estimator, PersistentModel)
