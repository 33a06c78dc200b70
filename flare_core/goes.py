"""GOES X-ray class strings <-> 1-8 Angstrom peak flux in W m^-2.

The class letter sets the decade (A = 1e-8, B = 1e-7, C = 1e-6, M = 1e-5, X = 1e-4 W m^-2)
and the number multiplies it: ``M1.5`` is 1.5e-5 W m^-2, ``X22`` is 2.2e-3 W m^-2.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .errors import ParseError

__all__ = ["CLASS_DECADE_WM2", "canonical_class", "class_to_flux", "flux_to_class", "class_letter",
           "classes_to_flux"]

CLASS_DECADE_WM2: dict[str, float] = {"A": 1e-8, "B": 1e-7, "C": 1e-6, "M": 1e-5, "X": 1e-4}
_CLASS_RE = re.compile(r"^\s*([ABCMX])\s*(\d+(?:\.\d*)?|\.\d+)?\s*$", re.IGNORECASE)


def class_to_flux(goes_class: str) -> float:
    """Peak flux in W m^-2 of a GOES class string such as ``"M1.5"``.

    A bare letter (``"M"``) means 1.0 of that decade. Raises `ParseError` for anything
    else (empty strings, unknown letters, negative or zero multipliers, trailing text).

    Examples
    --------
    >>> class_to_flux("M1.5")
    1.5e-05
    """
    if not isinstance(goes_class, str):
        raise ParseError(f"GOES class must be a string, got {goes_class!r}")
    m = _CLASS_RE.match(goes_class)
    if m is None:
        raise ParseError(f"malformed GOES class {goes_class!r} (expected e.g. 'M1.5')")
    letter, number = m.group(1).upper(), m.group(2)
    value = float(number) if number else 1.0
    if not value > 0:
        raise ParseError(f"GOES class {goes_class!r} has a non-positive multiplier")
    return float(f"{value * CLASS_DECADE_WM2[letter]:.6g}")


def canonical_class(goes_class: str) -> str:
    """The one spelling of a GOES class: upper-case letter, multiplier with at least one
    decimal and no trailing zeros beyond it.

    ``"M1.5"``, ``"M1.50"``, ``"M 1.5"``, ``"m1.5"`` -> ``"M1.5"``; ``"X22"`` -> ``"X22.0"``;
    ``"M"`` -> ``"M1.0"``; ``"C1.25"`` -> ``"C1.25"``. Every flare reader uses it, so one
    flare has one class string and duplicates are found. Raises `ParseError` like
    `class_to_flux`.

    Examples
    --------
    >>> canonical_class(" m 1.50 ")
    'M1.5'
    """
    class_to_flux(goes_class)  # validates, raises ParseError naming the string
    m = _CLASS_RE.match(goes_class)
    letter, number = m.group(1).upper(), m.group(2)
    text = f"{float(number) if number else 1.0:.6g}"
    if "e" in text:  # a multiplier >= 1e6 is not a GOES class anyone writes
        raise ParseError(f"GOES class {goes_class!r} has an absurd multiplier")
    return f"{letter}{text if '.' in text else text + '.0'}"


def flux_to_class(flux_wm2: float, *, digits: int = 1) -> str:
    """GOES class string of a peak flux in W m^-2 (``1.5e-5`` -> ``"M1.5"``).

    Fluxes of X10 and above stay in the X decade (``2.2e-3`` -> ``"X22.0"``).
    """
    if not (isinstance(flux_wm2, int | float) and math.isfinite(flux_wm2) and flux_wm2 > 0):
        raise ParseError(f"flux must be a positive finite number in W m^-2, got {flux_wm2!r}")
    for letter in ("X", "M", "C", "B", "A"):
        decade = CLASS_DECADE_WM2[letter]
        if flux_wm2 >= decade * (1 - 1e-9) or letter == "A":
            return f"{letter}{flux_wm2 / decade:.{digits}f}"
    raise AssertionError("unreachable")


def class_letter(goes_class: str) -> str:
    """The validated class letter of a GOES class string (``"m1.5"`` -> ``"M"``)."""
    class_to_flux(goes_class)
    return goes_class.strip()[0].upper()


def classes_to_flux(classes, *, where: str = "input") -> np.ndarray:
    """Vector form of `class_to_flux`; the error names ``where`` and the row index."""
    out = np.empty(len(classes), dtype=np.float64)
    for i, c in enumerate(classes):
        try:
            out[i] = class_to_flux(c)
        except ParseError as e:
            raise ParseError(f"{where}, row {i}: {e}") from e
    return out
