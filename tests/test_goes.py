import pytest

from flare_core.errors import ParseError
from flare_core.goes import class_letter, class_to_flux, flux_to_class


@pytest.mark.parametrize(
    ("cls", "flux"),
    [("M1.5", 1.5e-5), ("X22", 2.2e-3), ("C1.0", 1e-6), ("B6.0", 6e-7), ("A9.9", 9.9e-8), ("m2", 2e-5), ("X", 1e-4)],
)
def test_class_to_flux(cls, flux):
    assert class_to_flux(cls) == pytest.approx(flux, rel=1e-12)


@pytest.mark.parametrize("bad", ["", "Q1.0", "M1.5x", "M-1", "M0", "1.5", "MM1", None, 1.5])
def test_class_to_flux_rejects_malformed(bad):
    with pytest.raises(ParseError):
        class_to_flux(bad)


@pytest.mark.parametrize(("flux", "cls"), [(1.5e-5, "M1.5"), (2.2e-3, "X22.0"), (1e-6, "C1.0"), (9.99e-6, "C10.0")])
def test_flux_to_class(flux, cls):
    assert flux_to_class(flux) == cls


def test_round_trip_and_letter():
    for c in ["B1.2", "C9.9", "M5.0", "X1.4"]:
        assert flux_to_class(class_to_flux(c)) == c
    assert class_letter(" x2.1 ") == "X"
    with pytest.raises(ParseError):
        flux_to_class(float("nan"))


@pytest.mark.parametrize("spelling", ["M1.5", "M1.50", "M 1.5", "m1.5", " m 1.50 "])
def test_canonical_class_one_spelling(spelling):
    from flare_core.goes import canonical_class

    assert canonical_class(spelling) == "M1.5"


def test_canonical_class_other_cases():
    from flare_core.goes import canonical_class

    assert [canonical_class(c) for c in ["X22", "M", "C1.25", "x10"]] == \
        ["X22.0", "M1.0", "C1.25", "X10.0"]
    with pytest.raises(ParseError):
        canonical_class("Q1.0")
