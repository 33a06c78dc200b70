"""Saving and loading fitted models without unpickling arbitrary objects.

Three kinds of file make up a model directory:

* torch weights: a ``state_dict`` written by `torch.save` and read back with
  ``torch.load(..., weights_only=True)``, which refuses anything but tensors and primitive
  containers;
* scikit-learn (and scikit-survival) estimators: `skops.io` files, loaded only when every type
  that skops does not trust by itself is on an explicit allow-list (`TRUSTED_SKLEARN_TYPES`);
* metadata: plain JSON (hyper-parameters, feature names, thresholds, fit summaries).

Models hold no file I/O. A model class declares what its directory holds (`StateLayout`),
hands its fitted state over as a `ModelState` (``_get_state``) and is rebuilt from one
(``_from_state``); `save_model` and `load_model` do every read and write, through the safe
loaders above (the `PersistentModel` protocol). Optional Parquet frames and nested models
(sub-directories) complete the state.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from ..errors import ModelError
from ..io import atomic_write

__all__ = [
    "ModelState",
    "PersistentModel",
    "StateLayout",
    "save_model",
    "save_stages",
    "load_stages",
    "load_model",
    "TRUSTED_SKLEARN_TYPES",
    "save_torch",
    "load_torch",
    "save_sklearn",
    "load_sklearn",
    "write_json",
    "read_json",
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


# ------------------------------------------------------------------- the model state protocol


@dataclass(frozen=True)
class StateLayout:
    """What a model class's directory holds: the one declaration `save_model`/`load_model` read.

    Parameters
    ----------
    meta_file : str
        Name of the JSON metadata file (``"model.json"``, ``"meta.json"``, ...).
    header : mapping
        Keys and values the metadata must carry (``{"kind": "cox_time", "format_version": 1}``
        or ``{"class": "DeepFlareNet"}``); written by `save_model`, checked by `load_model`.
    what : str
        How a refusal names the expected directory, e.g. ``"Cox-Time model directory"``.
    sklearn : tuple of str
        ``.skops`` files (`save_sklearn` / `load_sklearn`, the skops allow-list).
    torch : tuple of str
        ``.pt`` files of state_dicts (`save_torch` / `load_torch`, ``weights_only=True``).
    frames : tuple of str
        ``.parquet`` files of polars frames.
    models : mapping of str to type
        Sub-directories holding nested models, each of a class following `PersistentModel`.
    optional : tuple of str
        Names among the above that a directory may lack (older layouts); absent ones are
        left out of the loaded `ModelState`.
    """

    meta_file: str = "model.json"
    header: Mapping[str, Any] = field(default_factory=dict)
    what: str = "model directory"
    sklearn: tuple[str, ...] = ()
    torch: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()
    models: Mapping[str, type] = field(default_factory=dict)
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [self.meta_file, *self.sklearn, *self.torch, *self.frames, *self.models]
        for name in names:
            if not name or Path(name).name != name or name in (".", ".."):
                raise ModelError(f"state file names must be plain names, got {name!r}")
        if len(set(names)) != len(names):
            raise ModelError(f"state file names repeat: {names}")


@dataclass(frozen=True)
class ModelState:
    """A fitted model as data: what `save_model` writes and `load_model` hands back.

    Parameters
    ----------
    meta : mapping
        JSON-serialisable metadata (settings, fitted scalars and arrays as lists, names).
        On loading it also holds the layout's header keys.
    sklearn : mapping of str to object
        File name -> scikit-learn / scikit-survival object (written with skops).
    torch : mapping of str to mapping
        File name -> torch ``state_dict`` (tensors only).
    frames : mapping of str to polars.DataFrame
        File name -> frame (written as Parquet).
    models : mapping of str to object
        Sub-directory name -> nested model (itself saved with `save_model`).
    """

    meta: Mapping[str, Any]
    sklearn: Mapping[str, Any] = field(default_factory=dict)
    torch: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    frames: Mapping[str, Any] = field(default_factory=dict)
    models: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class PersistentModel(Protocol):
    """A model `save_model` can write and `load_model` can rebuild.

    ``state_layout`` names the files; ``_get_state`` returns the fitted state (raising
    `ModelError` when unfitted) and ``_from_state`` rebuilds a fitted model from it. Neither
    touches a file.
    """

    state_layout: ClassVar[StateLayout]

    def _get_state(self) -> ModelState: ...

    @classmethod
    def _from_state(cls, state: ModelState) -> Self: ...


def _layout_of(cls: type) -> StateLayout:
    layout = getattr(cls, "state_layout", None)
    if not isinstance(layout, StateLayout):
        raise ModelError(f"{cls.__name__} declares no state_layout; it cannot be saved")
    return layout


def _check_state(state: ModelState, layout: StateLayout, owner: str) -> None:
    for kind in ("sklearn", "torch", "frames", "models"):
        given, declared = set(getattr(state, kind)), set(getattr(layout, kind))
        missing = declared - given - set(layout.optional)
        if given - declared or missing:
            raise ModelError(
                f"{owner} state {kind} {sorted(given)} does not match its layout "
                f"{sorted(declared)}")


def save_model(model: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a fitted model into ``directory`` (created if needed) and return it.

    The files are those of ``type(model).state_layout``: skops, torch and Parquet files and
    nested model sub-directories first, each written atomically, then the metadata file (the
    layout's header plus the state's metadata). A reader thus finds the metadata only after
    everything it describes is in place.

    Raises
    ------
    ModelError
        If the model is not fitted or its state does not match its layout.
    """
    cls = type(model)
    return _write_state(_layout_of(cls), model._get_state(), directory, cls.__name__)


def save_stages(model: Any, directories: Mapping[str, str | os.PathLike[str]]) -> None:
    """Write a model made of stages, one directory per stage (``{stage: directory}``).

    The model declares ``stage_layouts`` (``{stage: StateLayout}``) and returns
    ``{stage: ModelState}`` of its fitted stages from ``_get_stage_states``; each is written
    as `save_model` writes one model (the survival chain,
    `flare_core.models.survival_chain.SurvivalChain`).
    """
    cls = type(model)
    layouts = cls.stage_layouts
    for stage, state in model._get_stage_states().items():
        _write_state(layouts[stage], state, directories[stage], f"{cls.__name__}.{stage}")


def _write_state(layout: StateLayout, state: ModelState, directory: str | os.PathLike[str],
                 owner: str) -> Path:
    _check_state(state, layout, owner)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, estimator in state.sklearn.items():
        save_sklearn(estimator, d / name)
    for name, weights in state.torch.items():
        save_torch(_on_cpu(weights), d / name)
    for name, frame in state.frames.items():
        _atomic_write(d / name, lambda tmp, f=frame: f.write_parquet(tmp))
    for name, child in state.models.items():
        save_model(child, d / name)
    write_json({**state.meta, **layout.header}, d / layout.meta_file)
    return d


def _on_cpu(weights: Any) -> Any:
    """A state_dict with detached CPU tensors (other mappings' values as they are)."""
    if not isinstance(weights, Mapping):
        return weights  # save_torch refuses it with a ModelError
    return {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in weights.items()}


def load_model(cls: type, directory: str | os.PathLike[str]) -> Any:
    """Rebuild a model of class ``cls`` from a directory written by `save_model`.

    skops files are read through the allow-list (`load_sklearn`), torch weights with
    ``weights_only=True`` (`load_torch`); nothing is unpickled.

    Raises
    ------
    ModelError
        If the metadata is missing or invalid, lacks the layout's header values ("<dir> is
        not a <what>: ..."), or a file cannot be read safely.
    """
    return cls._from_state(_read_state(_layout_of(cls), directory))


def load_stages(cls: type, directories: Mapping[str, str | os.PathLike[str]]) -> Any:
    """Rebuild a model of stages written by `save_stages` (``{stage: directory}``, only the
    stages present); ``cls._from_stage_states({stage: ModelState})`` assembles it."""
    layouts = cls.stage_layouts
    return cls._from_stage_states({stage: _read_state(layouts[stage], d)
                                   for stage, d in directories.items()})


def _read_state(layout: StateLayout, directory: str | os.PathLike[str]) -> ModelState:
    import polars as pl

    d = Path(directory)
    meta = read_json(d / layout.meta_file)
    if not isinstance(meta, dict):
        raise ModelError(f"{d / layout.meta_file} does not hold a JSON object")
    for key, value in layout.header.items():
        if meta.get(key) != value:
            raise ModelError(f"{d} is not a {layout.what}: {layout.meta_file} has "
                             f"{key}={meta.get(key)!r}, expected {value!r}")

    def present(name: str) -> bool:
        return name not in layout.optional or (d / name).exists()

    return ModelState(
        meta=meta,
        sklearn={n: load_sklearn(d / n) for n in layout.sklearn if present(n)},
        torch={n: load_torch(d / n) for n in layout.torch if present(n)},
        frames={n: _read_parquet(pl, d / n) for n in layout.frames if present(n)},
        models={n: load_model(c, d / n) for n, c in layout.models.items() if present(n)},
    )


def _read_parquet(pl: Any, path: Path) -> Any:
    _require_file(path, "Parquet")
    try:
        return pl.read_parquet(path)
    except Exception as e:  # polars ComputeError on a corrupt file
        raise ModelError(f"cannot read Parquet frame {path}: {e}") from e


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
