"""flare_core: the plain scientific library of flareflow.

Sources, the local store, features, labels, sampling, metrics, models and publishing.
This package never imports Prefect or the ``tasks``/``flows`` packages.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
