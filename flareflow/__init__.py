"""flareflow: the user-facing application (the ``flareflow`` command).

The science lives in `flare_core`; Prefect tasks in `tasks`, flows in `flows`.
"""

from flare_core import __version__

__all__ = ["__version__"]
