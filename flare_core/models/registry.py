"""The model registry: one entry per model that `flare_core.training.train_all` knows."""

from __future__ import annotations

__all__ = ["ALL_MODELS", "LABEL_M", "LABEL_C"]

#: Every model `train_all` knows, in training order (the survival chain first: the warning
#: SVM reads the Cox-Time and forest outputs).
ALL_MODELS: tuple[str, ...] = (
    "flare_class_forest",
    "cox_time",
    "warning_svm",
    "defn_m",
    "defn_c",
    "climatology",
    "persistence",
    "logistic",
    "lstm",
)

#: Binary label columns (`flare_core.labels.label_columns`).
LABEL_M = "m_within_24h"
LABEL_C = "c_within_24h"
