"""MODEL_DIR integrity (issue 12): every path in model.json stays inside MODEL_DIR and a
structurally wrong model.json is a `ModelError` naming the file and the field.

A tiny real model (logistic, persistence, climatology; `TrainConfig.quick`) is trained once
on 15 regions of the bundled sun2022 fold 1; each test tampers with a copy of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flare_core.errors import ModelError
from flare_core.forecasting import ModelBundle
from tests.support import train_tiny_model


@pytest.fixture(scope="module")
def model_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_model(data_dir, tmp_path_factory.mktemp("model"))


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models" / "m"
    shutil.copytree(model_dir, copy)
    return copy


def _edit(d: Path, change) -> Path:
    meta = json.loads((d / "model.json").read_text())
    change(meta)
    (d / "model.json").write_text(json.dumps(meta))
    return d


def test_the_untampered_model_loads(model_dir: Path, tmp_path: Path) -> None:
    bundle = ModelBundle.load(_copy(model_dir, tmp_path))
    assert "logistic" in bundle.models


@pytest.mark.parametrize("value", ["../../etc", "/etc", "../sibling", "logistic/../../sibling"])
def test_a_model_dir_outside_model_dir_is_refused(model_dir: Path, tmp_path: Path,
                                                   value: str) -> None:
    d = _copy(model_dir, tmp_path)
    # a sibling holding a genuine model copy: loading it would succeed if it were followed
    shutil.copytree(d / "logistic", d.parent / "sibling")
    _edit(d, lambda m: m["models"]["logistic"].__setitem__("dir", value))
    with pytest.raises(ModelError, match=r"model\.json: field models\.logistic\.dir") as e:
        ModelBundle.load(d)
    assert str(d / "model.json") in str(e.value)


def test_a_symlinked_model_dir_leading_out_is_refused(model_dir: Path, tmp_path: Path) -> None:
    d = _copy(model_dir, tmp_path)
    shutil.move(d / "logistic", d.parent / "sibling")
    (d / "logistic").symlink_to(d.parent / "sibling", target_is_directory=True)
    with pytest.raises(ModelError, match=r"field models\.logistic\.dir.*leads outside"):
        ModelBundle.load(d)


def test_a_symlinked_file_leading_out_is_refused(model_dir: Path, tmp_path: Path) -> None:
    d = _copy(model_dir, tmp_path)
    outside = d.parent / "pipeline.skops"
    shutil.move(d / "logistic" / "pipeline.skops", outside)
    (d / "logistic" / "pipeline.skops").symlink_to(outside)
    with pytest.raises(ModelError, match=r"field models\.logistic\.dir.*link leading outside"):
        ModelBundle.load(d)


def test_a_symlink_that_stays_inside_is_accepted(model_dir: Path, tmp_path: Path) -> None:
    d = _copy(model_dir, tmp_path)
    shutil.move(d / "logistic", d / "logistic_v1")
    (d / "logistic").symlink_to(d / "logistic_v1", target_is_directory=True)
    assert "logistic" in ModelBundle.load(d).models


@pytest.mark.parametrize(("change", "field"), [
    (lambda m: m.pop("models"), r"\(top level\): 'models' is a required property"),
    (lambda m: m.__setitem__("models", ["logistic"]), r"models: \['logistic'\] is not of type"),
    (lambda m: m["models"].__setitem__("logistic", "logistic"), r"models\.logistic: "),
    (lambda m: m["models"]["logistic"].pop("dir"), r"models\.logistic: 'dir' is a required"),
    (lambda m: m["models"]["logistic"].__setitem__("dir", 3), r"models\.logistic\.dir: 3 is"),
    (lambda m: m["models"]["logistic"].__setitem__("threshold", "high"),
     r"models\.logistic\.threshold: 'high' is not of type 'number'"),
    (lambda m: m.__setitem__("config", None), r"config: None is not of type 'object'"),
    (lambda m: m.__setitem__("features", "usflux"), r"features: 'usflux' is not of type"),
    (lambda m: m["config"].__setitem__("horizon_h", "soon"), r"config: horizon_h must be"),
], ids=["no-models", "models-list", "entry-str", "no-dir", "dir-int", "threshold-str",
        "config-null", "features-str", "config-value"])
def test_a_structurally_wrong_model_json_names_file_and_field(
        model_dir: Path, tmp_path: Path, change, field: str) -> None:
    d = _edit(_copy(model_dir, tmp_path), change)
    with pytest.raises(ModelError, match=r"model\.json: field " + field) as e:
        ModelBundle.load(d)
    assert str(d / "model.json") in str(e.value)


def test_a_model_json_that_is_not_an_object(model_dir: Path, tmp_path: Path) -> None:
    d = _copy(model_dir, tmp_path)
    (d / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match=r"model\.json: field \(top level\): \[1, 2\] is not"):
        ModelBundle.load(d)
