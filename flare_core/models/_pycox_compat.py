"""Import pycox on a current SciPy: the one place that restores ``scipy.integrate.simps``.

pycox 0.3.0 is unmaintained and does ``from scipy.integrate import simps``; SciPy 1.14 removed
``simps`` in favour of ``simpson`` (same composite Simpson's rule). Import pycox only through
`import_pycox` (or import this module first) so the alias is in place before pycox loads.
"""

from __future__ import annotations

import logging
from types import ModuleType

import scipy.integrate as si

__all__ = ["import_pycox"]

logger = logging.getLogger(__name__)

if not hasattr(si, "simps"):
    si.simps = si.simpson  # pycox.evaluation calls simps(y, x); simpson accepts the same


def import_pycox() -> ModuleType:
    """Return the ``pycox`` package, imported after the ``simps`` alias is set.

    Examples
    --------
    >>> pycox = import_pycox()
    >>> from pycox.evaluation import EvalSurv  # safe once import_pycox() has run
    """
    import pycox

    return pycox
