"""Every flareflow exception, in one place.

``FlareflowError`` is the base. Callers that only know the stdlib can still catch the
``ValueError``/``OSError`` subclasses generically.
"""

from __future__ import annotations

__all__ = [
    "FlareflowError",
    "ConfigError",
    "ParseError",
    "FormatError",
    "SourceUnavailable",
    "SourceRateLimited",
    "SourceError",
    "DataGapError",
    "StoreError",
    "ModelError",
    "DataQualityWarning",
]


class FlareflowError(Exception):
    """Base class of every flareflow error."""


class ConfigError(FlareflowError, ValueError):
    """A setting or argument has a value that cannot be used; the message quotes it."""


class ParseError(FlareflowError, ValueError):
    """Malformed input: the message names the file or record and the bad value."""


class FormatError(ParseError):
    """No file format (or more than one) claims a file, or a format name is unknown; the
    message names the file and the formats tried."""


class SourceUnavailable(FlareflowError, OSError):
    """An archive could not be reached or answered with a transient error (retry may help)."""


class SourceRateLimited(SourceUnavailable):
    """The archive asks this client to slow down (JSOC's ``STOP - Use of JSOC ...`` reply).

    Transient like its base, but a retry should wait longer (`flare_core.sources.retry`).
    """


class SourceError(FlareflowError):
    """An archive answered, but with an error status or an unusable payload (no retry)."""


class DataGapError(FlareflowError):
    """The data needed for a result is absent (e.g. no SHARP record before an issue time)."""


class StoreError(FlareflowError, OSError):
    """The local store is missing, corrupt, or a write could not complete."""


class ModelError(FlareflowError):
    """A model is used before fitting, or a model directory is incomplete or incompatible."""


class DataQualityWarning(UserWarning):
    """The result is degraded but usable (dropped rows, imputed values, short windows)."""
