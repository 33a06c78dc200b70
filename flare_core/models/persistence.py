"""Saving and loading fitted models without unpickling arbitrary objects.

Three kinds of file make up a model directory:

* torch weights: a ``state_dict`` written by `torch.save` and read back with
  ``torch.load(..., weights_only=True)``, which refuses anything but tensors and primitive
  containers;
* scikit-learn (and scikit-survival) estimators: `skops.io` files, loaded only when every type
  that skops does not trust by itself is on an explicit allow-list (`TRUSTED_SKLEARN_TYPES`);
* metadata: plain JSON (hyper-parameters, feature names, thresholds, fit summaries).

`save_estimator_dir` / `load_estimator_dir` combine the last two for the common layout of one
skops estimator plus a ``model.json`` tagged with the model's ``kind`` and ``format_version``.

Every write is atomic (`flare_core.io.atomic_write`): the bytes go to a temporary file in
the target directory, which then replaces the target, so a reader never sees a half-written
file.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_json({"threshold": "M1.0", "horizon_h": 24.0}, d / "meta.json")
>>> read_json(d / "meta.json")["horizon_h"]
24.0
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..io import atomic_write

__all__ = [
    "TRUSTED_SKLEARN_TYPES",
    "save_torch",
    "load_torch",
    "save_sklearn",
    "load_sklearn",
    "write_json",
    "read_json",
    "save_estimator_dir",
    "load_estimator_dir",
    "MODEL_JSON_SCHEMA",
    "validate_model_json",
    "resolve_inside",
]

logger = logging.getLogger(__name__)

#: Types, beyond those `skops.io` trusts by default, that flareflow estimators contain and that
#: `load_sklearn` accepts. Exact qualified names; anything else found in a file is refused.
TRUSTED_SKLEARN_TYPES: frozenset[str] = frozenset(
    {
        # numpy dtypes (e.g. SimpleImputer._fit_dtype)
        "numpy.dtype",
        # scikit-learn internals
        "sklearn.tree._tree.Tree",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.link.LogitLink",
        # scikit-survival (a flareflow dependency; used by the survival models)
        "sksurv.ensemble.forest.RandomSurvivalForest",
        "sksurv.ensemble.forest.ExtraSurvivalTrees",
        "sksurv.ensemble.boosting.GradientBoostingSurvivalAnalysis",
        "sksurv.ensemble.boosting.ComponentwiseGradientBoostingSurvivalAnalysis",
        "sksurv.ensemble.survival_loss.CoxPH",
        "sksurv.tree.tree.SurvivalTree",
        "sksurv.functions.StepFunction",
        "sksurv.linear_model.coxph.BreslowEstimator",
        "sksurv.linear_model.coxph.CoxPHSurvivalAnalysis",
        "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
        "sksurv.nonparametric.SurvivalFunctionEstimator",
        "sksurv.nonparametric.CensoringDistributionEstimator",
    }
)


def _atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it onto ``path``
    (`flare_core.io.atomic_write`)."""
    target = atomic_write(path, write)
    logger.debug("wrote %s", target)
    return target


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ModelError(f"{what} file not found: {path}")


# --------------------------------------------------------------------------------------- torch


def save_torch(state_dict: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a torch ``state_dict`` (tensors and primitive containers only), atomically.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor (or nested dicts/lists of tensors and numbers)
        Typically ``module.state_dict()``; never a whole module (that would need pickle).
    path : path-like
        Target file (conventionally ``*.pt``); parent directories are created.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    import torch

    if not isinstance(state_dict, Mapping):
        raise ModelError(
            f"save_torch expects a state_dict mapping, got {type(state_dict).__name__}"
        )
    return _atomic_write(path, lambda tmp: torch.save(dict(state_dict), tmp))


def load_torch(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``state_dict`` written by `save_torch` onto the CPU, refusing pickled objects.

    Uses ``torch.load(path, weights_only=True, map_location="cpu")``; move the module to a
    device after ``load_state_dict``.

    Raises
    ------
    ModelError
        If the file is missing or holds anything but tensors and primitive containers.
    """
    import torch

    p = Path(path)
    _require_file(p, "torch weights")
    try:
        state = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as e:  # UnpicklingError (disallowed global), RuntimeError (corrupt zip)
        raise ModelError(f"cannot load torch weights from {p}: {e}") from e
    if not isinstance(state, dict):
        raise ModelError(f"{p} does not hold a state_dict (found {type(state).__name__})")
    return state


# ------------------------------------------------------------------------------------- sklearn


def save_sklearn(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a scikit-learn / scikit-survival estimator with `skops.io.dump`, atomically.

    Parameters
    ----------
    estimator : object
        A fitted (or unfitted) estimator or pipeline.
    path : path-like
        Target file (conventionally ``*.skops``); parent directories are created.
    """
    import skops.io as sio

    return _atomic_write(path, lambda tmp: sio.dump(estimator, tmp))


def load_sklearn(
    path: str | os.PathLike[str], *, extra_trusted: Iterable[str] = ()
) -> Any:
    """Read an estimator written by `save_sklearn`, refusing types not on the allow-list.

    skops trusts built-in, numpy and scikit-learn estimator types by itself; every other type
    named in the file (`skops.io.get_untrusted_types`) must be in `TRUSTED_SKLEARN_TYPES` or
    in ``extra_trusted``.

    Parameters
    ----------
    path : path-like
        A ``.skops`` file.
    extra_trusted : iterable of str, optional
        Further fully qualified type names the caller vouches for.

    Raises
    ------
    ModelError
        If the file is missing, unreadable, or names a type that is not allowed; the message
        lists the refused types.
    """
    import skops.io as sio

    p = Path(path)
    _require_file(p, "scikit-learn estimator")
    allowed = TRUSTED_SKLEARN_TYPES | frozenset(extra_trusted)
    try:
        untrusted = sio.get_untrusted_types(file=p)
    except Exception as e:
        raise ModelError(f"cannot read skops file {p}: {e}") from e
    refused = sorted(set(untrusted) - allowed)
    if refused:
        raise ModelError(f"refusing to load {p}: untrusted types {refused}")
    try:
        return sio.load(p, trusted=list(untrusted))
    except Exception as e:
        raise ModelError(f"cannot load estimator from {p}: {e}") from e


# ---------------------------------------------------------------------------------------- json


def _json_default(obj: Any) -> Any:
    """Make numpy scalars/arrays, paths and datetimes JSON-serialisable."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON (UTF-8, sorted keys), atomically.

    numpy scalars and arrays become numbers and lists, paths strings, datetimes ISO 8601
    strings (keep them tz-aware UTC so they read back unambiguously).
    """
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by `write_json`.

    Raises
    ------
    ModelError
        If the file is missing or not valid JSON (the message names the file).
    """
    p = Path(path)
    _require_file(p, "JSON")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"invalid JSON in {p}: {e}") from e


# ---------------------------------------------------------------------- estimator directories


def save_estimator_dir(
    estimator: Any,
    meta: Mapping[str, Any],
    directory: str | os.PathLike[str],
    *,
    filename: str,
    kind: str,
    format_version: int,
) -> Path:
    """Write one skops estimator and its ``model.json`` into ``directory`` (created if needed).

    Parameters
    ----------
    estimator : object
        The fitted estimator, written to ``directory / filename`` with `save_sklearn`.
    meta : mapping
        JSON-serialisable metadata (config, sizes, class names); ``kind`` and
        ``format_version`` are added to it in ``model.json``.
    directory : path-like
        The model directory.
    filename : str
        Name of the estimator file, e.g. ``"forest.skops"``.
    kind : str
        Model kind that `load_estimator_dir` checks, e.g. ``"flare_class_forest"``.
    format_version : int
        Version of the directory layout that `load_estimator_dir` checks.

    Returns
    -------
    Path
        ``directory``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_sklearn(estimator, d / filename)
    write_json({"format_version": format_version, "kind": kind, **meta}, d / "model.json")
    return d


def load_estimator_dir(
    directory: str | os.PathLike[str],
    *,
    filename: str,
    kind: str,
    format_version: int,
    what: str,
) -> tuple[Any, dict[str, Any]]:
    """Read a directory written by `save_estimator_dir`: ``(estimator, meta)``.

    Parameters
    ----------
    directory : path-like
        The model directory.
    filename, kind, format_version
        As given to `save_estimator_dir`.
    what : str
        How the error names the expected directory, e.g. ``"flare-class forest directory"``.

    Raises
    ------
    ModelError
        If ``model.json`` is missing or invalid, names another kind or format version
        ("<directory> is not a <what>"), or the estimator file cannot be loaded safely.
    """
    d = Path(directory)
    meta = read_json(d / "model.json")
    if meta.get("kind") != kind or meta.get("format_version") != format_version:
        raise ModelError(f"{d} is not a {what}")
    return load_sklearn(d / filename), meta


# ------------------------------------------------------------------------ MODEL_DIR integrity

#: The structure ``model.json`` of a MODEL_DIR must have (JSON Schema, draft 2020-12). Only
#: what `flare_core.forecasting.ModelBundle` relies on is required; other keys may be added.
MODEL_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format_version", "config", "models", "features"],
    "properties": {
        "format_version": {"type": "integer"},
        "code_version": {"type": "string"},
        "config": {"type": "object"},
        "features": {"type": "array", "items": {"type": "string"}},
        "models": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["dir"],
                "properties": {
                    "dir": {"type": "string", "minLength": 1},
                    "threshold": {"type": "number"},
                },
            },
        },
    },
}


def _field_name(path: Iterable[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def validate_model_json(meta: Any, file: str | os.PathLike[str]) -> None:
    """Check ``meta`` (the parsed ``model.json``) against `MODEL_JSON_SCHEMA`.

    Raises
    ------
    ModelError
        Naming ``file`` and the first offending field, e.g.
        ``.../model.json: field models.logistic.dir: 3 is not of type 'string'``.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(MODEL_JSON_SCHEMA)
    errors = sorted(validator.iter_errors(meta), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ModelError(f"{file}: field {_field_name(e.absolute_path)}: {e.message}")


def resolve_inside(
    root: str | os.PathLike[str], relative: str, *, file: str | os.PathLike[str], field: str
) -> Path:
    """``root / relative`` resolved, refused unless it and everything under it stay in ``root``.

    Refused: an absolute ``relative``, any ``..`` component, and a path that leaves ``root``
    once symbolic links are followed, including a link anywhere inside the target directory
    (a model file linked to ``/etc/...`` is as bad as a linked directory).

    Parameters
    ----------
    root : path-like
        The MODEL_DIR.
    relative : str
        The value read from ``model.json``.
    file, field : str
        Where the value came from, for the error message.

    Raises
    ------
    ModelError
        Naming ``file``, ``field`` and the value.
    """
    base = Path(root).resolve()
    rel = Path(relative)
    where = f"{file}: field {field}: {relative!r}"
    if rel.is_absolute() or rel.anchor:
        raise ModelError(f"{where} is an absolute path; it must be relative to {base}")
    if ".." in rel.parts:
        raise ModelError(f"{where} contains '..'; it must stay inside {base}")
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        raise ModelError(f"{where} leads outside {base} (to {target})")
    if target.is_dir():
        for sub in target.rglob("*"):
            real = sub.resolve()
            if not real.is_relative_to(base):
                raise ModelError(
                    f"{where}: {sub} is a link leading outside {base} (to {real})")
    return target
