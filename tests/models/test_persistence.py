"""Tests for flare_core.models.persistence: round trips and refusal of untrusted content."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from flare_core.errors import ModelError
from flare_core.models.persistence import (
    load_sklearn,
    load_torch,
    read_json,
    save_sklearn,
    save_torch,
    write_json,
)


class _NotAStateDict:
    """A user class: loading it would need pickle to run arbitrary code."""

    def __init__(self) -> None:
        self.x = 1


def test_torch_round_trip(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    path = save_torch(net.state_dict(), tmp_path / "sub" / "w.pt")
    state = load_torch(path)
    assert set(state) == set(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(state[k], v)
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    other.load_state_dict(state)
    x = torch.randn(5, 3)
    net.eval()
    other.eval()
    assert torch.allclose(net(x), other(x))
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]  # no temp file left


def test_torch_refuses_pickled_object(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": _NotAStateDict()}, path)
    with pytest.raises(ModelError, match="evil.pt"):
        load_torch(path)


def test_torch_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_torch(tmp_path / "nope.pt")


def test_save_torch_requires_mapping(tmp_path):
    with pytest.raises(ModelError):
        save_torch(torch.nn.Linear(2, 2), tmp_path / "m.pt")  # a module, not a state_dict


@pytest.mark.parametrize(
    "estimator",
    [
        make_pipeline(StandardScaler(), LogisticRegression()),
        make_pipeline(StandardScaler(), ExtraTreesClassifier(n_estimators=5, random_state=0)),
    ],
)
def test_sklearn_round_trip(tmp_path, estimator):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(int)
    estimator.fit(x, y)
    path = save_sklearn(estimator, tmp_path / "est.skops")
    loaded = load_sklearn(path)
    np.testing.assert_array_equal(loaded.predict_proba(x), estimator.predict_proba(x))


def test_sklearn_refuses_disallowed_type(tmp_path):
    path = tmp_path / "crafted.skops"
    sio.dump({"payload": os.system, "model": LogisticRegression()}, path)
    assert sio.get_untrusted_types(file=path)  # skops itself flags it ...
    with pytest.raises(ModelError, match="untrusted types"):
        load_sklearn(path)  # ... and the allow-list refuses it
    untrusted = sio.get_untrusted_types(file=path)
    assert load_sklearn(path, extra_trusted=untrusted)["payload"] is os.system


def test_sklearn_unreadable_file(tmp_path):
    path = tmp_path / "garbage.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="garbage.skops"):
        load_sklearn(path)


def test_json_round_trip_and_atomic(tmp_path):
    obj = {
        "n": np.int64(3),
        "x": np.float32(0.5),
        "arr": np.arange(3),
        "t": dt.datetime(2014, 1, 7, 18, 0, tzinfo=dt.UTC),
        "names": ("a", "b"),
    }
    path = write_json(obj, tmp_path / "meta.json")
    assert read_json(path) == {
        "n": 3,
        "x": 0.5,
        "arr": [0, 1, 2],
        "t": "2014-01-07T18:00:00+00:00",
        "names": ["a", "b"],
    }
    write_json({"v": 2}, path)  # overwrite in place
    assert read_json(path) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_json_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(ModelError, match="bad.json"):
        read_json(bad)
    with pytest.raises(TypeError):
        write_json({"f": object()}, tmp_path / "x.json")
    assert not list(tmp_path.glob(".x.json*"))  # temp file removed after the failure


# ------------------------------------------------------------------- the model state protocol


class _Wrapper:
    """A model holding a nested model, a frame and a torch state: every kind of state."""

    from flare_core.models.baselines import ClimatologyForecaster as _Inner
    from flare_core.models.persistence import StateLayout as _Layout

    state_layout = _Layout(meta_file="inputs.json", header={"kind": "wrapper"},
                           what="wrapper directory", torch=("w.pt",),
                           frames=("rows.parquet",), models={"inner": _Inner})

    def __init__(self, inner=None, rows=None, weights=None, scale=1.0):
        self.inner, self.rows, self.weights, self.scale = inner, rows, weights, scale

    def _get_state(self):
        from flare_core.models.persistence import ModelState

        return ModelState(meta={"scale": self.scale}, torch={"w.pt": self.weights},
                          frames={"rows.parquet": self.rows}, models={"inner": self.inner})

    @classmethod
    def _from_state(cls, state):
        return cls(state.models["inner"], state.frames["rows.parquet"], state.torch["w.pt"],
                   state.meta["scale"])


def test_save_model_load_model_round_trip_every_kind(tmp_path):
    import polars as pl

    from flare_core.models.baselines import ClimatologyForecaster
    from flare_core.models.persistence import load_model, save_model

    inner = ClimatologyForecaster().fit(np.zeros((4, 1)), [0, 1, 1, 0])
    rows = pl.DataFrame({"harpnum": [1, 2], "v": [0.5, 1.5]})
    model = _Wrapper(inner, rows, torch.nn.Linear(2, 1).state_dict(), scale=2.5)
    d = save_model(model, tmp_path / "m")
    assert sorted(p.name for p in d.iterdir()) == ["inner", "inputs.json", "rows.parquet",
                                                   "w.pt"]
    assert read_json(d / "inputs.json") == {"kind": "wrapper", "scale": 2.5}
    again = load_model(_Wrapper, d)
    assert again.scale == 2.5 and again.inner.event_rate_ == pytest.approx(0.5)
    assert again.rows.equals(rows)
    assert torch.equal(again.weights["weight"], model.weights["weight"])
    # the header is checked, and the nested model's own header too
    write_json({"kind": "other", "scale": 1.0}, tmp_path / "o" / "inputs.json")
    with pytest.raises(ModelError, match="not a wrapper directory.*kind='other'"):
        load_model(_Wrapper, tmp_path / "o")
    from flare_core.models.defn import DeepFlareNet

    with pytest.raises(ModelError, match="ClimatologyForecaster"):
        load_model(DeepFlareNet, d / "inner")


def test_save_model_refuses_state_not_matching_layout(tmp_path):
    from flare_core.models.persistence import save_model

    model = _Wrapper(None, None, {}, 1.0)
    model._get_state = lambda: __import__(
        "flare_core.models.persistence", fromlist=["ModelState"]).ModelState(meta={})
    with pytest.raises(ModelError, match="does not match its layout"):
        save_model(model, tmp_path / "x")
    with pytest.raises(ModelError, match="declares no state_layout"):
        save_model(object(), tmp_path / "y")
