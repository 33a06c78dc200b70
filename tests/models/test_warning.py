"""Warning SVM: windows of the lifetime track, labels, TSS, lead-time sweep, persistence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from flare_core.errors import ConfigError, ModelError
from flare_core.models.persistence import load_model, save_model
from flare_core.models.warning import (
    WarningSVM,
    WarningSVMConfig,
    lifetime_windows,
    sweep_lead_time,
    warning_labels,
)


def test_windows_are_linear_fits():
    t0 = datetime(2014, 1, 1, tzinfo=UTC)
    ts = [t0 + timedelta(hours=1) * i for i in range(10)]
    tr = pl.DataFrame({"harpnum": [1] * 10, "t_rec": ts,
                       "mean_lifetime_smooth_h": 100.0 - 2.0 * np.arange(10),
                       "time_to_event_h": 50.0 - np.arange(10), "event": [1] * 10})
    w = lifetime_windows(tr)
    # windows start every 3 h at 0, 3, 6, 9 h; each covers 4 h inclusive
    assert w["t_start"].to_list() == [ts[0], ts[3], ts[6], ts[9]][: w.height]
    np.testing.assert_allclose(w["slope_h_per_h"].to_numpy()[:3], -2.0)
    assert w["t_issue"][0] == ts[4] and w["n_records"][0] == 5
    assert w["mean_h"][0] == pytest.approx(96.0) and w["time_to_event_h"][0] == 46.0


def test_labels():
    codes, known = warning_labels(np.array([5, 30, 144, 60, 200.0]), np.array([1, 1, 0, 0, 1]),
                                  lead_h=24.0)
    np.testing.assert_array_equal(codes[known], [0, 1, 2, 2])
    np.testing.assert_array_equal(known, [True, True, True, False, True])
    with pytest.raises(ConfigError):
        WarningSVMConfig(lead_h=200.0)


def _windows(n, seed):
    """SYNTHETIC windows: falling lifetime and low mean before flares."""
    rng = np.random.default_rng(seed)
    tte = rng.uniform(0, 200, size=n)
    ev = (tte <= 144).astype(int)
    tte = np.minimum(tte, 144.0)
    mean = np.where(ev == 1, tte * 0.6, 120.0) + rng.normal(scale=8, size=n)
    slope = np.where(ev == 1, -1.0, 0.0) + rng.normal(scale=0.3, size=n)
    return pl.DataFrame({"slope_h_per_h": slope, "mean_h": mean, "time_to_event_h": tte,
                         "event": ev})


def test_svm_tss_sweep_and_persistence(tmp_path):
    train, test = _windows(400, 0), _windows(300, 1)
    model = WarningSVM(WarningSVMConfig(lead_h=24.0)).fit(train)
    s = model.score(test)
    assert set(s) == {"within", "after", "none", "micro"} and s["micro"] > 0.5
    table = sweep_lead_time(train, test, leads_h=[8, 24, 60])
    assert table["lead_h"].to_list() == [8.0, 24.0, 60.0]
    assert table.columns == ["lead_h", "tss_within", "tss_after", "tss_none", "tss_micro",
                             "n_train", "n_test"]
    assert (table["tss_micro"] > 0).all()
    save_model(model, tmp_path / "svm")
    again = load_model(WarningSVM, tmp_path / "svm")
    np.testing.assert_array_equal(again.predict(test), model.predict(test))
    assert set(model.predict_labels(test)) <= {"within", "after", "none"}
    with pytest.raises(ModelError):
        WarningSVM().predict(test)


def test_max_train_caps_the_support_vectors_and_keeps_the_classes():
    """A stratified, seeded subsample of max_train windows: the SVM's support vectors (its
    prediction cost) stop growing with the training windows, the skill stays."""
    train, test = _windows(6000, 0), _windows(600, 1)
    full = WarningSVM(WarningSVMConfig(max_train=None)).fit(train)
    capped = WarningSVM(WarningSVMConfig(max_train=1000)).fit(train)
    again = WarningSVM(WarningSVMConfig(max_train=1000)).fit(train)
    assert full.n_train_ == 6000 and capped.n_train_ == 1000
    n_sv = {m: int(m.pipeline_[-1].n_support_.sum()) for m in (full, capped)}
    assert n_sv[capped] < n_sv[full] / 3
    np.testing.assert_array_equal(capped.predict(test), again.predict(test))  # seeded
    y, known = warning_labels(train["time_to_event_h"].to_numpy(), train["event"].to_numpy(),
                              lead_h=24.0)
    share = np.bincount(y[known], minlength=3) / known.sum()
    cls = capped.pipeline_[-1]
    assert cls.classes_.tolist() == [0, 1, 2]
    assert capped.score(test)["micro"] > full.score(test)["micro"] - 0.05
    assert share.min() > 0.05  # every class is present in the synthetic windows
    with pytest.raises(ConfigError, match="max_train"):
        WarningSVMConfig(max_train=3)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_rbf_predict_gives_the_labels_of_scikit_learn(n_classes, monkeypatch):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from flare_core.models import warning

    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 2)) * [0.5, 30.0] + [0.0, 80.0]
    y = (np.digitize(x[:, 0] + rng.normal(0, 0.4, 600), [-0.3, 0.3]) % n_classes)
    pipe = make_pipeline(StandardScaler(), SVC(class_weight="balanced",
                                               decision_function_shape="ovo")).fit(x, y)
    test = rng.normal(size=(2000, 2)) * [0.6, 35.0] + [0.0, 80.0]
    expected = pipe.predict(test)
    np.testing.assert_array_equal(warning.rbf_svc_predict(pipe, test), expected)
    # blocks of another size (the minimum rows, a block larger than the data): the same
    for cells in (1, 10**7):
        monkeypatch.setattr(warning, "_KERNEL_CELLS", cells)
        np.testing.assert_array_equal(warning.rbf_svc_predict(pipe, test), expected)
    monkeypatch.undo()
    for bad in (np.nan, np.inf):  # refused as scikit-learn refuses it
        with pytest.raises(ValueError, match="NaN|infinity"):
            warning.rbf_svc_predict(pipe, np.r_[test[:3], [[bad, 1.0]]])
    # every row a tie: all predicted by scikit-learn itself, the same labels
    monkeypatch.setattr(warning, "_TIE_MARGIN", 10.0)
    np.testing.assert_array_equal(warning.rbf_svc_predict(pipe, test), expected)
    # another kernel: scikit-learn's own predict
    linear = make_pipeline(StandardScaler(), SVC(kernel="linear")).fit(x, y)
    np.testing.assert_array_equal(warning.rbf_svc_predict(linear, test),
                                  linear.predict(test))
