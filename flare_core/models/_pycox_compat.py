"""Import pycox on a current SciPy: the one place that restores ``scipy.integrate.simps``.

pycox 0.3.0 is unmaintained and does ``from scipy.integrate import simps``; SciPy 1.14 removed
``simps`` in favour of ``simpson`` (same composite Simpson's rule). Import pycox only through
`import_pycox` (or import this module first) so the alias is in place before pycox loads.
"""

from __future__ import annotations

import logging
import warnings
from types import ModuleType

import scipy.integrate as si

__all__ = ["import_pycox"]

logger = logging.getLogger(__name__)

if not hasattr(si, "simps"):
    si.simps = si.simpson  # pycox.evaluation calls simps(y, x); simpson accepts the same

# torchtuples 0.2.2 (unmaintained) indexes tensors with lists and calls a deprecated overload
# of Tensor.add on every Cox-Time epoch: the same two UserWarnings, many times per training
# run, about code that is not ours and behaves as intended on torch 2.13. Silence exactly
# those, from that package only.
warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional "
                        "indexing", category=UserWarning, module="torchtuples")
warnings.filterwarnings("ignore", message="This overload of add is deprecated",
                        category=UserWarning, module="torchtuples")
warnings.filterwarnings("ignore", message="The given NumPy array is not writable",
                        category=UserWarning, module="torchtuples")


def import_pycox() -> ModuleType:
    """Return the ``pycox`` package, imported after the ``simps`` alias is set.

    Examples
    --------
    >>> pycox = import_pycox()
    >>> from pycox.evaluation import EvalSurv  # safe once import_pycox() has run
    """
    import pycox

    return pycox
